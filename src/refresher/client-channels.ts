/**
 * The refresher's side of the channels to the threads of its tier (protocol.ts): the
 * tier's control channel (join and leave in; hello and closed out) and one private
 * channel per joined client (asks in, replies out).
 *
 * Clients that died without leaving (a terminated worker) are forgotten oldest first
 * once more than `maxClients` are known, so the channels kept stay bounded.
 */

import { BroadcastChannel } from 'node:worker_threads';
import {
  type Control as ControlMessage,
  clientChannel,
  controlChannel,
  parseControl,
  type Reply,
} from './protocol.ts';
import { TurnBatch } from './turn-batch.ts';

/** A joined client's private channel and the replies of this turn not yet posted on it. */
interface Client {
  readonly channel: BroadcastChannel;
  readonly replies: TurnBatch<Reply>;
}

export interface ClientEvents {
  /** Something arrived on `clientId`'s channel (unparsed: it may come from a thread with a bug). */
  ask(clientId: string, data: unknown): void;
  /** `clientId` left: it neither waits nor loads any more. */
  left(clientId: string): void;
}

export class ClientChannels {
  readonly #tierId: string;
  readonly #maxClients: number;
  readonly #events: ClientEvents;
  readonly #bus: BroadcastChannel;
  /** Each joined client, most recently joined last. */
  readonly #clients = new Map<string, Client>();
  #stopped = false;

  constructor(tierId: string, maxClients: number, events: ClientEvents) {
    this.#tierId = tierId;
    this.#maxClients = maxClients;
    this.#events = events;
    this.#bus = new BroadcastChannel(controlChannel(tierId));
    this.#bus.onmessage = (event) => this.#onControl((event as MessageEvent).data);
  }

  /** Tell every thread that a refresher of `generation` listens: they join again. */
  announce(generation: number): void {
    this.#bus.postMessage({ t: 'hello', generation } satisfies ControlMessage);
  }

  /**
   * A reply to one client, on its private channel (dropped if it has left), posted with
   * the others of this event-loop turn (turn-batch.ts).
   */
  send(clientId: string, reply: Reply): void {
    if (!this.#stopped) this.#clients.get(clientId)?.replies.add(reply);
  }

  /**
   * Hear no more joins, leaves or asks, and send no more replies (the refresher is
   * closing); what was answered already goes out now (an ack of a write Redis applied).
   */
  stop(): void {
    this.#stopped = true;
    for (const client of this.#clients.values()) client.replies.flush();
  }

  /** Tell every thread the tier is closed (they fail what they wait for) and close every channel. */
  close(): void {
    this.#stopped = true;
    this.#bus.postMessage({ t: 'closed' } satisfies ControlMessage);
    this.#bus.close();
    for (const client of this.#clients.values()) drop(client);
    this.#clients.clear();
  }

  #onControl(data: unknown): void {
    if (this.#stopped) return;
    const m = parseControl(data);
    if (m === undefined) return;
    const known = this.#clients.get(m.from);
    this.#clients.delete(m.from);
    if (m.t === 'leave') {
      if (known !== undefined) drop(known);
      this.#events.left(m.from);
      return;
    }
    const client = known ?? this.#open(m.from);
    this.#clients.set(m.from, client);
    while (this.#clients.size > this.#maxClients) {
      const [oldest, stale] = this.#clients.entries().next().value as [string, Client];
      drop(stale);
      this.#clients.delete(oldest);
    }
    // In the same batch as the replies: a welcome never overtakes an earlier reply.
    client.replies.add({ t: 'welcome' });
  }

  #open(clientId: string): Client {
    const channel = new BroadcastChannel(clientChannel(this.#tierId, clientId));
    channel.onmessage = (event) => {
      if (!this.#stopped) this.#events.ask(clientId, (event as MessageEvent).data);
    };
    return { channel, replies: new TurnBatch((replies) => channel.postMessage(replies)) };
  }
}

function drop(client: Client): void {
  client.replies.discard();
  client.channel.close();
}
