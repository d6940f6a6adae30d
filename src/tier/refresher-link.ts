/**
 * One thread's link to its tier's refresher (protocol.ts): the tier's control channel
 * (join and leave out, hello and closed in) and this client's private channel (asks out,
 * replies in).
 *
 * Nothing posted on the private channel before the refresher has opened its end is
 * delivered, so asks are held until its `welcome` (bounded: every held ask belongs to a
 * waiting caller or a refresh). A refresher that (re)starts says `hello` with its
 * generation: the link joins again and tells its owner, whose asks in flight went to a
 * refresher that is gone.
 */

import { BroadcastChannel } from 'node:worker_threads';
import { HotshieldError, isTierErrorCode, type TierErrorCode } from '../errors.ts';
import {
  type Ask,
  type Control as ControlMessage,
  clientChannel,
  controlChannel,
  type Reply,
} from '../refresher/protocol.ts';
import { exactBytes, itemsOf, TurnBatch } from '../refresher/turn-batch.ts';

/** An ask as its sender writes it: the link adds who it is from. */
export type Outgoing = Without<Ask, 'from'>;

/** Omit<A, K> of each member of the union A. */
export type Without<A, K extends PropertyKey> = A extends unknown ? Omit<A, K> : never;

export interface LinkEvents {
  /** A reply on this client's channel (`done` or `ack`; `welcome` is the link's own). */
  reply(reply: Exclude<Reply, { t: 'welcome' }>): void;
  /** A refresher of a later generation started: nothing asked before reached it. */
  restarted(): void;
  /** The tier was closed by its owner. */
  closed(): void;
}

export class RefresherLink {
  readonly clientId = crypto.randomUUID();
  readonly #bus: BroadcastChannel;
  readonly #channel: BroadcastChannel;
  readonly #maxHeld: number;
  readonly #events: LinkEvents;
  /** Asks of this event-loop turn, posted as one message (turn-batch.ts). */
  readonly #batch: TurnBatch<Ask>;
  #outbox: Ask[] = [];
  #welcomed = false;
  #generation: number;
  #closed = false;

  constructor(tierId: string, generation: number, maxHeld: number, events: LinkEvents) {
    this.#generation = generation;
    this.#maxHeld = maxHeld;
    this.#events = events;
    this.#bus = new BroadcastChannel(controlChannel(tierId));
    this.#bus.onmessage = (event) =>
      this.#onControl((event as MessageEvent).data as ControlMessage);
    this.#channel = new BroadcastChannel(clientChannel(tierId, this.clientId));
    this.#channel.onmessage = (event) => {
      for (const reply of itemsOf((event as MessageEvent).data)) this.#onReply(reply as Reply);
    };
    const channel = this.#channel;
    this.#batch = new TurnBatch((asks) => channel.postMessage(asks));
    // Pending work keeps the thread alive through its timers; an idle tier must not.
    this.#bus.unref();
    this.#channel.unref();
    this.#join();
  }

  /** The generation of the refresher this link has joined. */
  get generation(): number {
    return this.#generation;
  }

  post(ask: Outgoing): void {
    // A closed channel throws on postMessage, and the batch posts later, outside any
    // caller's try: after close nothing is sent (close flushed what came before).
    if (this.#closed) return;
    // The bytes as they are now, exactly: the batch is cloned later in the turn, and a
    // caller may reuse (or transfer) its buffer once set() has returned its promise.
    const full = (
      'value' in ask
        ? { ...ask, value: exactBytes(ask.value, true), from: this.clientId }
        : { ...ask, from: this.clientId }
    ) as Ask;
    if (this.#welcomed) this.#batch.add(full);
    // Bounded: every held ask belongs to a waiting caller (≤ maxWaiting) or a refresh.
    else if (this.#outbox.length < this.#maxHeld) this.#outbox.push(full);
  }

  /** Say goodbye to the refresher and close both channels (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // What was asked this turn (releases of leases above all) goes before the channel does.
    this.#batch.flush();
    this.#bus.postMessage({ t: 'leave', from: this.clientId } satisfies ControlMessage);
    this.#bus.close();
    this.#channel.close();
  }

  /** Ask the refresher to open its end of this client's channel; it answers `welcome`. */
  #join(): void {
    this.#welcomed = false;
    // Asks of this turn were meant for the refresher that is gone: the owner asks the new
    // one again (restarted) and fails the writes it cannot vouch for.
    this.#batch.discard();
    this.#bus.postMessage({ t: 'join', from: this.clientId } satisfies ControlMessage);
  }

  #onControl(message: ControlMessage): void {
    if (this.#closed) return;
    if (message.t === 'hello') {
      if (message.generation <= this.#generation) return;
      this.#generation = message.generation;
      this.#join();
      this.#events.restarted();
    } else if (message.t === 'closed') this.#events.closed();
  }

  #onReply(reply: Reply): void {
    if (this.#closed) return;
    if (reply.t !== 'welcome') {
      this.#events.reply(reply);
      return;
    }
    this.#welcomed = true;
    const held = this.#outbox;
    this.#outbox = [];
    for (const ask of held) this.#batch.add(ask);
  }
}

/** The typed error a reply carries (a code the tier does not know is L2_UNAVAILABLE). */
export function replyError(
  code: string | undefined,
  message: string | undefined,
  cause?: unknown,
): HotshieldError {
  const c: TierErrorCode = isTierErrorCode(code) ? code : 'HS_ERR_L2_UNAVAILABLE';
  return new HotshieldError(c, message ?? c, cause === undefined ? undefined : { cause });
}
