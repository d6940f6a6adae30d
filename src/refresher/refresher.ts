/**
 * The refresher: the one thread of a process that talks to Redis and the only writer of
 * L1 entries. Each attached thread joins on the tier's control channel and then asks,
 * and is answered, on a channel of its own (protocol.ts).
 *
 * - Flights: one per key at a time (the process-wide singleflight). An ask for a key in
 *   flight joins it. A new key beyond `maxInFlight` is refused with HS_ERR_QUEUE_FULL.
 * - Reads go through the ReadBatcher: the keys asked for in one event-loop turn leave as
 *   one pipeline per master (L2Client.getMany), each with its own deadline and breaker.
 * - A landed value is written into L1 (soft TTL, then serve-stale until soft + stale),
 *   an absent key as a short negative entry, then one `done` wakes every waiter.
 * - Read-through: when Redis has no value (or cannot be reached) and some asker has a
 *   loader, the first such asker gets a lease and runs it; everybody else keeps waiting
 *   for the lessee's `store`, which is written to Redis and L1 like a set. A lessee that
 *   never answers loses its lease after loaderTimeout (plus a margin for messaging).
 * - Writes (set/delete) go to Redis first, then L1, then are acknowledged. A write that
 *   arrives while a read of the same key is in flight marks that flight superseded: its
 *   result is still handed to its waiters (it was a valid read) but not stored over the
 *   write.
 */

import { BroadcastChannel } from 'node:worker_threads';
import { CounterFlusher, type Unflushed } from '../counters/flusher.ts';
import { HotshieldError } from '../errors.ts';
import { type L1Handle, L1Table, L1Writer } from '../l1/index.ts';
import { counterOfTotalKey } from '../tier/internal-keys.ts';
import type { Control } from './control.ts';
import { L2Client, type L2Read } from './l2-client.ts';
import { RefresherMetrics } from './metrics.ts';
import {
  type Ask,
  CODEC_ID,
  type Control as ControlMessage,
  clientChannel,
  controlChannel,
  FLAG_ABSENT,
  FLAG_GONE,
  parseAsk,
  parseControl,
  type Reply,
} from './protocol.ts';
import { ReadBatcher } from './read-batcher.ts';
import type { RedisTarget } from './redis-target.ts';

export interface RefresherConfig {
  tierId: string;
  maxKeyBytes: number;
  /** Threads that may attach (bounds the private channels kept for clients). */
  maxThreads: number;
  redis: RedisTarget;
  softTtlMs: number;
  staleTtlMs: number;
  negativeTtlMs: number;
  loaderTimeoutMs: number;
  maxInFlight: number;
  l2TimeoutMs: number;
  connectTimeoutMs: number;
  slotsRefreshIntervalMs: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
  counterShards: number;
  flushIntervalMs: number;
  counterMarkTtlMs: number;
}

interface Flight {
  readonly key: string;
  /** Askers that have a loader, in arrival order; the first gets the lease. */
  readonly loaders: string[];
  /** Every client that asked (with or without a loader): each gets the outcome. */
  readonly askers: Set<string>;
  lessee?: string;
  leaseTimer?: NodeJS.Timeout;
  /** Why the key is being loaded: Redis failed with this (undefined: Redis has no value). */
  why?: HotshieldError;
  superseded: boolean;
}

const noop = (): void => {};

/** How much longer than loaderTimeout the refresher waits for a lessee's answer. */
const LEASE_MARGIN_MS = 1000;
const SWEEP_EVERY_MS = 500;
/** How long close() keeps flushing counters (create.ts gives close 5 s in all). */
const FINAL_FLUSH_MS = 3000;
/**
 * Longest wait between re-sends of a failed counter flush: about a breaker cooldown, so
 * that flushes resume within a second of a failover or an outage ending.
 */
const FLUSH_RETRY_MAX_MS = 1000;

export class Refresher {
  readonly #config: RefresherConfig;
  readonly #control: Control;
  readonly #writer: L1Writer;
  readonly #table: L1Table;
  readonly #l2: L2Client;
  readonly #batcher: ReadBatcher;
  readonly #counters: CounterFlusher;
  /** The tier's control channel: join/leave in, hello/closed out. */
  readonly #bus: BroadcastChannel;
  /** Each joined client's private channel (protocol.ts), most recently joined last. */
  readonly #clients = new Map<string, BroadcastChannel>();
  readonly #flights = new Map<string, Flight>();
  readonly #metrics = new RefresherMetrics(() => this.#flights.size);
  readonly #sweep: NodeJS.Timeout;
  #mirrored = { rejected: 0, opened: 0, resets: 0 };
  #closed = false;

  constructor(l1: L1Handle, control: Control, config: RefresherConfig) {
    this.#config = config;
    this.#control = control;
    control.setState('starting');
    // The pool runs at most one refresher, so whoever held the writer role is dead (maybe
    // before it could announce itself): take it over rather than crash-loop on it.
    this.#writer = L1Writer.open(l1, { takeover: true });
    this.#table = L1Table.attach(l1);
    this.#l2 = new L2Client({
      redis: config.redis,
      l2TimeoutMs: config.l2TimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      slotsRefreshIntervalMs: config.slotsRefreshIntervalMs,
      breakerThreshold: config.breakerThreshold,
      breakerCooldownMs: config.breakerCooldownMs,
      onCall: (call) => this.#metrics.call(call),
    });
    this.#batcher = new ReadBatcher(this.#l2, 512, (keys) => {
      control.add('l2Batches');
      this.#metrics.batch(keys);
    });
    this.#counters = new CounterFlusher(this.#writer, this.#l2, control, {
      shards: config.counterShards,
      flushIntervalMs: config.flushIntervalMs,
      markTtlMs: config.counterMarkTtlMs,
      retryMaxMs: FLUSH_RETRY_MAX_MS,
    });
    this.#bus = new BroadcastChannel(controlChannel(config.tierId));
    this.#bus.onmessage = (event) => this.#onControl((event as MessageEvent).data);
    this.#sweep = setInterval(() => this.#housekeeping(), SWEEP_EVERY_MS);
    const generation = control.announceRefresher();
    if (generation > 1) control.add('respawns');
    this.#broadcast({ t: 'hello', generation });
    this.#l2.ready(config.connectTimeoutMs).then(
      () => this.#housekeeping(),
      () => this.#housekeeping(),
    );
  }

  /**
   * Stop: flush the counters (for up to FINAL_FLUSH_MS), fail what is in flight, leave
   * the channels, close Redis and the writer. Resolves with what could not be flushed.
   */
  async close(): Promise<Unflushed[]> {
    if (this.#closed) return [];
    this.#closed = true;
    const unflushed = await this.#counters.close(FINAL_FLUSH_MS);
    clearInterval(this.#sweep);
    for (const f of this.#flights.values()) clearTimeout(f.leaseTimer);
    this.#flights.clear();
    // Every attachment fails what it still waits for (reads, leases, unacknowledged writes).
    this.#broadcast({ t: 'closed' });
    this.#bus.close();
    for (const channel of this.#clients.values()) channel.close();
    this.#clients.clear();
    this.#control.setState('down');
    await this.#l2.close();
    this.#writer.close();
    this.#table.close();
    return unflushed;
  }

  /** The refresher's view of Redis, with ioredis' last connection error (no secrets in it). */
  status(): { state: string; lastError: string | undefined } {
    return { state: this.#control.state, lastError: this.#l2.lastError };
  }

  /** ioredis failed inside its reply handling (see worker.ts): start its connections anew. */
  resetL2(): void {
    this.#l2.resetConnections();
  }

  /** This thread's Prometheus metrics, as prom-client JSON. */
  metrics(): Promise<object[]> {
    return this.#metrics.registry.getMetricsAsJSON();
  }

  #housekeeping(): void {
    if (this.#closed) return;
    this.#control.setState(this.#l2.isReady ? 'l2Ready' : 'l2Down');
    this.#writer.sweepExpired();
    // The breaker lives in this thread; its counts are mirrored for every thread to read.
    const b = this.#l2.breakerState();
    this.#control.add('breakerRejected', b.rejected - this.#mirrored.rejected);
    this.#control.add('breakerOpened', b.opened - this.#mirrored.opened);
    this.#control.add('l2Resets', b.resets - this.#mirrored.resets);
    this.#mirrored = { rejected: b.rejected, opened: b.opened, resets: b.resets };
  }

  #broadcast(message: ControlMessage): void {
    this.#bus.postMessage(message);
  }

  /** A reply to one client, on its private channel (dropped if it has left). */
  #send(clientId: string, reply: Reply): void {
    if (!this.#closed) this.#clients.get(clientId)?.postMessage(reply);
  }

  #onControl(data: unknown): void {
    if (this.#closed) return;
    const m = parseControl(data);
    if (m === undefined) return;
    const known = this.#clients.get(m.from);
    this.#clients.delete(m.from);
    if (m.t === 'leave') {
      known?.close();
      this.#forget(m.from);
      return;
    }
    const channel = known ?? new BroadcastChannel(clientChannel(this.#config.tierId, m.from));
    channel.onmessage = (event) => this.#onAsk(m.from, (event as MessageEvent).data);
    this.#clients.set(m.from, channel);
    // Clients that died without leaving (a terminated worker) are forgotten oldest first.
    while (this.#clients.size > this.#config.maxThreads * 4) {
      const [oldest, stale] = this.#clients.entries().next().value as [string, BroadcastChannel];
      stale.close();
      this.#clients.delete(oldest);
    }
    channel.postMessage({ t: 'welcome' } satisfies Reply);
  }

  #onAsk(clientId: string, data: unknown): void {
    if (this.#closed) return;
    const ask = parseAsk(data, this.#config.maxKeyBytes);
    // A client speaks for itself only.
    if (ask === undefined || ask.from !== clientId) return;
    // Nothing an ask carries may take the refresher down (a respawn loses every flight):
    // a failure here leaves the asker to its own timer.
    try {
      if (ask.t === 'fetch') this.#fetch(ask);
      else if (ask.t === 'store') this.#loaded(ask).catch(noop);
      else if (ask.t === 'release') this.#released(ask.key, ask.from);
      else if (ask.t === 'gone' || ask.t === 'loadFailed') this.#loadEnded(ask);
      else this.#write(ask).catch(noop);
    } catch {
      // Dropped, as above.
    }
  }

  #fetch(ask: Extract<Ask, { t: 'fetch' }>): void {
    const { key, from } = ask;
    let f = this.#flights.get(key);
    if (f !== undefined) {
      this.#control.add('joined');
      f.askers.add(from);
      if (ask.load && !f.loaders.includes(from)) f.loaders.push(from);
      return;
    }
    // Another thread's ask refreshed the key a moment ago (asks cross in flight): L1 has
    // it, fresh, so this one costs no Redis call.
    const entry = this.#table.get(key);
    if (
      entry?.state === 'fresh' &&
      (!ask.load || (entry.flags & FLAG_ABSENT) === 0 || (entry.flags & FLAG_GONE) !== 0)
    ) {
      this.#control.add('alreadyFresh');
      const status =
        (entry.flags & FLAG_ABSENT) === 0
          ? 'ok'
          : (entry.flags & FLAG_GONE) !== 0
            ? 'gone'
            : 'absent';
      this.#send(from, { t: 'done', key, to: from, status });
      return;
    }
    if (this.#flights.size >= this.#config.maxInFlight) {
      this.#control.add('queueFull');
      this.#send(from, {
        t: 'done',
        key,
        to: from,
        status: 'error',
        code: 'HS_ERR_QUEUE_FULL',
        message: `${this.#config.maxInFlight} keys are already being fetched (maxInFlight)`,
      });
      return;
    }
    f = { key, askers: new Set([from]), loaders: ask.load ? [from] : [], superseded: false };
    this.#flights.set(key, f);
    this.#control.add('fetches');
    const flight = f;
    const counter = counterOfTotalKey(key);
    if (counter === undefined) this.#batcher.read(key).then((read) => this.#landed(flight, read));
    else
      this.#counters.read(counter).then(
        (base) => this.#counted(flight, base),
        (error: HotshieldError) => this.#counted(flight, error),
      );
  }

  /** A counter total was read (counters/flusher.ts): cache its base like a value. */
  #counted(f: Flight, base: bigint | HotshieldError): void {
    if (this.#closed || this.#flights.get(f.key) !== f) return;
    if (base instanceof HotshieldError) {
      this.#control.add('l2Errors');
      this.#finish(f, { status: 'error', code: base.code, message: base.message });
      return;
    }
    this.#finishStored(f, Buffer.from(base.toString()), CODEC_ID.unknown, 0);
  }

  #landed(f: Flight, read: L2Read): void {
    if (this.#closed || this.#flights.get(f.key) !== f) return;
    // With Redis failing or empty, a loader may still answer: the origin is the truth.
    if (read instanceof HotshieldError || read === null) {
      if (read !== null) this.#control.add('l2Errors');
      f.why = read ?? undefined;
      if (f.superseded) this.#unloaded(f);
      else this.#lease(f);
    } else if (f.superseded) {
      this.#finish(f, { status: 'ok', value: read, flags: CODEC_ID.unknown });
    } else {
      this.#finishStored(f, read, CODEC_ID.unknown, 0);
    }
  }

  /** Lease the key to the first asker with a loader; with none left, answer what Redis said. */
  #lease(f: Flight): void {
    const to = f.loaders[0];
    if (to === undefined) {
      this.#unloaded(f);
      return;
    }
    f.lessee = to;
    this.#control.add('leases');
    f.leaseTimer = setTimeout(() => {
      if (this.#flights.get(f.key) !== f) return;
      this.#control.add('loaderTimeouts');
      this.#finish(f, {
        status: 'error',
        code: 'HS_ERR_LOADER_TIMEOUT',
        message: `the loader for this key did not answer within ${this.#config.loaderTimeoutMs} ms (loaderTimeout)`,
      });
    }, this.#config.loaderTimeoutMs + LEASE_MARGIN_MS);
    // Every asker hears of the lease: callers without a loader are answered (with Redis's
    // error, not a false "absent", when Redis failed); only `to` runs its loader.
    const lease: Reply = {
      t: 'done',
      key: f.key,
      status: 'lease',
      to,
      code: f.why?.code,
      message: f.why?.message,
    };
    for (const asker of f.askers) this.#send(asker, lease);
  }

  /** Nobody will load the key: answer with what Redis said (absent, or its error). */
  #unloaded(f: Flight): void {
    if (f.why !== undefined) {
      this.#finish(f, { status: 'error', code: f.why.code, message: f.why.message });
      return;
    }
    if (!f.superseded) this.#storeNegative(f.key, FLAG_ABSENT);
    this.#finish(f, { status: 'absent' });
  }

  /** An asker with a loader will not load after all (its callers left, it closed): next one. */
  #released(key: string, from: string): void {
    const f = this.#flights.get(key);
    if (f === undefined) return;
    const i = f.loaders.indexOf(from);
    if (i !== -1) f.loaders.splice(i, 1);
    if (f.lessee !== from) return;
    clearTimeout(f.leaseTimer);
    f.lessee = undefined;
    this.#lease(f);
  }

  /**
   * A client left: it neither waits nor loads any more. Its 'release' asks, sent on its
   * own channel just before the 'leave' on the control bus, may arrive after it or not
   * at all (two channels, no order between them, and its channel is closed here), so the
   * leave itself passes on whatever lease it held.
   */
  #forget(clientId: string): void {
    for (const f of [...this.#flights.values()]) {
      f.askers.delete(clientId);
      this.#released(f.key, clientId);
    }
  }

  /** The flight `ask` answers, if its sender holds that flight's lease. */
  #leaseOf(ask: { key: string; from: string }): Flight | undefined {
    const f = this.#flights.get(ask.key);
    return f !== undefined && f.lessee === ask.from ? f : undefined;
  }

  async #loaded(ask: Extract<Ask, { t: 'store' }>): Promise<void> {
    const f = this.#leaseOf(ask);
    if (f === undefined) return;
    clearTimeout(f.leaseTimer);
    f.lessee = undefined;
    // A write acknowledged while the loader ran wins: the loaded value answers this
    // flight's callers but is stored nowhere.
    if (f.superseded) {
      this.#finish(f, { status: 'ok', value: ask.value, flags: ask.flags });
      return;
    }
    await this.#writeRedis(() => this.#l2.set(ask.key, ask.value, ask.ttlMs));
    if (this.#closed || this.#flights.get(f.key) !== f) return;
    this.#finishStored(f, ask.value, ask.flags, ask.ttlMs);
  }

  #loadEnded(ask: Extract<Ask, { t: 'gone' | 'loadFailed' }>): void {
    const f = this.#leaseOf(ask);
    if (f === undefined) return;
    if (ask.t === 'gone') {
      if (!f.superseded) this.#storeNegative(f.key, FLAG_ABSENT | FLAG_GONE);
      this.#finish(f, { status: 'gone' });
      return;
    }
    const timedOut = ask.code === 'HS_ERR_LOADER_TIMEOUT';
    this.#control.add(timedOut ? 'loaderTimeouts' : 'loaderFailures');
    this.#finish(f, {
      status: 'error',
      code: timedOut ? 'HS_ERR_LOADER_TIMEOUT' : 'HS_ERR_LOADER_FAILED',
      message: ask.message,
    });
  }

  async #write(ask: Extract<Ask, { t: 'set' | 'delete' }>): Promise<void> {
    const { key } = ask;
    const f = this.#flights.get(key);
    if (f !== undefined) f.superseded = true;
    const error = await this.#writeRedis(() =>
      ask.t === 'set' ? this.#l2.set(key, ask.value, ask.ttlMs) : this.#l2.del(key),
    );
    if (this.#closed) return;
    // A failed SET may or may not have been applied: drop the L1 copy either way, so the
    // next read asks Redis rather than serving a value Redis may not hold. So does a
    // value L1 could not take: the old one must not outlive the write.
    const stored =
      ask.t === 'set' && error === undefined && this.#store(key, ask.value, ask.flags, ask.ttlMs);
    if (!stored) this.#writer.delete(key);
    this.#send(ask.from, {
      t: 'ack',
      id: ask.id,
      to: ask.from,
      code: error?.code,
      message: error?.message,
    });
  }

  /** Run a Redis write, counting it; its typed error, or undefined on success. */
  async #writeRedis(write: () => Promise<unknown>): Promise<HotshieldError | undefined> {
    this.#control.add('writes');
    try {
      await write();
      return undefined;
    } catch (error) {
      this.#control.add('writeErrors');
      return error instanceof HotshieldError
        ? error
        : new HotshieldError('HS_ERR_L2_UNAVAILABLE', String(error), { cause: error });
    }
  }

  #finishStored(f: Flight, value: Uint8Array, flags: number, ttlMs: number): void {
    if (this.#store(f.key, value, flags, ttlMs)) {
      this.#finish(f, { status: 'ok' });
      return;
    }
    // L1 could not take it: drop the older copy, and hand the value over in the reply.
    this.#writer.delete(f.key);
    this.#finish(f, { status: 'ok', value, flags });
  }

  #finish(f: Flight, outcome: Omit<Extract<Reply, { t: 'done' }>, 't' | 'key'>): void {
    clearTimeout(f.leaseTimer);
    this.#flights.delete(f.key);
    const reply: Reply = { t: 'done', key: f.key, ...outcome };
    for (const asker of f.askers) this.#send(asker, reply);
  }

  /**
   * Write a value into L1: fresh for softTtl, then served stale until softTtl + staleTtl,
   * both capped by the value's own Redis TTL when it has one. False if L1 refused it.
   */
  #store(key: string, value: Uint8Array, flags: number, ttlMs: number): boolean {
    const c = this.#config;
    const soft = ttlMs > 0 ? Math.min(c.softTtlMs, ttlMs) : c.softTtlMs;
    const hard =
      ttlMs > 0 ? Math.min(c.softTtlMs + c.staleTtlMs, ttlMs) : c.softTtlMs + c.staleTtlMs;
    return this.#put(key, value, { softTtlMs: soft, hardTtlMs: hard, flags });
  }

  #storeNegative(key: string, flags: number): void {
    const ttl = this.#config.negativeTtlMs;
    if (ttl === 0) return;
    if (this.#put(key, new Uint8Array(0), { softTtlMs: ttl, hardTtlMs: ttl, flags }))
      this.#control.add('negativeStores');
  }

  #put(
    key: string,
    value: Uint8Array,
    options: { softTtlMs: number; hardTtlMs: number; flags: number },
  ): boolean {
    let version = 0;
    try {
      version = this.#writer.set(key, value, options);
    } catch {
      // Too large for L1 (or a key L1 cannot hold): served uncached, counted below.
    }
    if (version === 0) this.#control.add('l1Refused');
    return version !== 0;
  }
}
