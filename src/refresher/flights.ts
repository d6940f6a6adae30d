/**
 * The refresher's flights: one per key at a time, the process-wide singleflight, and
 * what happens to it. An ask for a key in flight joins it; a new key beyond
 * `maxInFlight` is refused with HS_ERR_QUEUE_FULL.
 *
 * - Reads go through the ReadBatcher (one pipeline per master per event-loop turn); a
 *   counter's total through the counter flusher. A landed value is written into L1
 *   (entry-store.ts), then one `done` wakes every asker.
 * - Read-through: when Redis has no value (or cannot be reached) and some asker has a
 *   loader, the first such asker gets a lease and runs it; everybody else keeps waiting
 *   for the lessee's `store`, which is written to Redis and L1 like a set. A lessee that
 *   never answers loses its lease after loaderTimeout (plus a margin for messaging).
 * - Writes (set/delete) go to Redis first, then L1, then are acknowledged. A write that
 *   arrives while a read of the same key is in flight marks that flight superseded: its
 *   result is still handed to its waiters (it was a valid read) but not stored over the
 *   write. So does an invalidation from Redis (coherence.ts) or a flush: the read may
 *   have been answered before the change it announces.
 * - A read is stored for the full soft TTL only if Redis tracked it from start to landing
 *   (Coherence.token / coherent); else, and for our own writes, which Redis does not
 *   track, for the short untracked soft TTL (entry-store.ts).
 */

import { HotshieldError } from '../errors.ts';
import { counterOfTotalKey } from '../keys/reserved-keys.ts';
import type { L1Table } from '../l1/index.ts';
import type { ClientChannels } from './client-channels.ts';
import type { RefresherConfig } from './config.ts';
import type { Control } from './control.ts';
import type { CounterFlusher } from './counter-flusher.ts';
import type { EntryStore } from './entry-store.ts';
import type { L2Client, L2Read } from './l2-client.ts';
import { type Ask, CODEC_ID, FLAG_ABSENT, FLAG_GONE, type Reply } from './protocol.ts';
import type { ReadBatcher } from './read-batcher.ts';
import { exactBytes } from './turn-batch.ts';

/** The clients that asked for a flight's key, each with the seq of its last ask. */
type Askers = Map<string, number | undefined>;

interface Flight {
  readonly key: string;
  /** Askers that have a loader, in arrival order; the first gets the lease. */
  readonly loaders: string[];
  /**
   * Every client that asked (with or without a loader), with the seq of its last ask:
   * each gets the outcome, under that seq.
   */
  readonly askers: Askers;
  lessee?: string;
  leaseTimer?: NodeJS.Timeout;
  /** Why the key is being loaded: Redis failed with this (undefined: Redis has no value). */
  why?: HotshieldError;
  superseded: boolean;
  /**
   * A write of ours superseded this flight, and the read back it would have made waits
   * for this flight to end (one flight per key).
   */
  readBack?: boolean;
  /**
   * Askers that came after the flight was superseded: its read may hold the value from
   * before the change, which they must not get. A new flight serves them once it ends.
   */
  late?: { askers: Askers; loaders: string[] };
  /** Coherence.token() when the flight started. */
  readonly token: number;
}

/** What the flights ask of coherence.ts (absent: coherence off, every read is trusted). */
export interface ReadTracking {
  token(): number;
  coherent(token: number): boolean;
  /** Set once Redis refused coherence: everything is then trusted for its soft TTL. */
  readonly refused: string | undefined;
}

/** How much longer than loaderTimeout the refresher waits for a lessee's answer. */
const LEASE_MARGIN_MS = 1000;

/** What the flights work with: the refresher's L1 views, Redis, and the clients' channels. */
export interface FlightDeps {
  readonly config: RefresherConfig;
  readonly control: Control;
  /** To see whether another ask refreshed a key a moment ago. */
  readonly table: L1Table;
  readonly entries: EntryStore;
  readonly l2: L2Client;
  readonly batcher: ReadBatcher;
  readonly counters: CounterFlusher;
  readonly clients: ClientChannels;
  readonly tracking?: ReadTracking;
}

export class Flights {
  readonly #config: RefresherConfig;
  readonly #control: Control;
  readonly #table: L1Table;
  readonly #entries: EntryStore;
  readonly #l2: L2Client;
  readonly #batcher: ReadBatcher;
  readonly #counters: CounterFlusher;
  readonly #clients: ClientChannels;
  readonly #tracking: ReadTracking | undefined;
  readonly #flights = new Map<string, Flight>();
  #closed = false;

  constructor(deps: FlightDeps) {
    this.#config = deps.config;
    this.#control = deps.control;
    this.#table = deps.table;
    this.#entries = deps.entries;
    this.#l2 = deps.l2;
    this.#batcher = deps.batcher;
    this.#counters = deps.counters;
    this.#clients = deps.clients;
    this.#tracking = deps.tracking;
  }

  /** Keys being fetched or loaded right now. */
  get size(): number {
    return this.#flights.size;
  }

  /** Drop every flight: nothing in flight is answered any more (the refresher is closing). */
  close(): void {
    this.#closed = true;
    for (const f of this.#flights.values()) clearTimeout(f.leaseTimer);
    this.#flights.clear();
  }

  fetch(ask: Extract<Ask, { t: 'fetch' }>): void {
    const { key, from } = ask;
    const f = this.#flights.get(key);
    if (f !== undefined) {
      this.#control.add('joined');
      // A superseded read may hold the value from before the change (a refresh-ahead of a
      // hot key is often in flight when it is written): late askers wait for a new read.
      if (f.superseded && f.late === undefined) f.late = { askers: new Map(), loaders: [] };
      const joined = f.superseded && f.late !== undefined ? f.late : f;
      joined.askers.set(from, ask.seq);
      if (ask.load && !joined.loaders.includes(from)) joined.loaders.push(from);
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
      const reply: Reply = { t: 'done', key, to: from, status, seq: ask.seq };
      if (status === 'ok') {
        reply.value = exactBytes(entry.value);
        reply.flags = entry.flags;
        reply.version = entry.version;
      }
      this.#clients.send(from, reply);
      return;
    }
    if (this.#flights.size >= this.#config.maxInFlight) {
      this.#control.add('queueFull');
      this.#clients.send(from, {
        t: 'done',
        key,
        to: from,
        status: 'error',
        code: 'HS_ERR_QUEUE_FULL',
        message: `${this.#config.maxInFlight} keys are already being fetched (maxInFlight)`,
        seq: ask.seq,
      });
      return;
    }
    this.#start(key, new Map([[from, ask.seq]]), ask.load ? [from] : []);
  }

  /**
   * Refresh `key` although L1 still has it fresh (a hot key about to turn stale:
   * refresh-ahead.ts): a flight with no asker, stored like any read. False if the key is
   * in flight already or maxInFlight keys are.
   */
  refreshAhead(key: string): boolean {
    if (this.#closed || this.#flights.has(key) || this.#flights.size >= this.#config.maxInFlight)
      return false;
    this.#control.add('refreshesAhead');
    this.#start(key, new Map(), []);
    return true;
  }

  #start(key: string, askers: Askers, loaders: string[]): void {
    const f: Flight = {
      key,
      askers,
      loaders,
      superseded: false,
      token: this.#tracking?.token() ?? 0,
    };
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
    // Not tracked (flushes change its shard keys, not this one): a total keeps the plain
    // soft TTL, the staleness counters document.
    this.#finishStored(f, Buffer.from(base.toString()), CODEC_ID.unknown, 0, true);
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
      this.#finish(f, { status: 'ok', value: exactBytes(read), flags: CODEC_ID.unknown });
    } else {
      this.#finishStored(f, read, CODEC_ID.unknown, 0, this.#coherent(f));
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
    for (const [asker, seq] of f.askers) this.#clients.send(asker, { ...lease, seq });
  }

  /** Nobody will load the key: answer with what Redis said (absent, or its error). */
  #unloaded(f: Flight): void {
    if (f.why !== undefined) {
      this.#finish(f, { status: 'error', code: f.why.code, message: f.why.message });
      return;
    }
    if (!f.superseded) this.#entries.storeNegative(f.key, FLAG_ABSENT, this.#coherent(f));
    this.#finish(f, { status: 'absent' });
  }

  /** An asker with a loader will not load after all (its callers left, it closed): next one. */
  released(key: string, from: string): void {
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
  forget(clientId: string): void {
    for (const f of [...this.#flights.values()]) {
      f.askers.delete(clientId);
      this.released(f.key, clientId);
    }
  }

  /** The flight `ask` answers, if its sender holds that flight's lease. */
  #leaseOf(ask: { key: string; from: string }): Flight | undefined {
    const f = this.#flights.get(ask.key);
    return f !== undefined && f.lessee === ask.from ? f : undefined;
  }

  async loaded(ask: Extract<Ask, { t: 'store' }>): Promise<void> {
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
    this.#finishStored(f, ask.value, ask.flags, ask.ttlMs, this.#ownWritesTracked());
    this.#readBack(f.key);
  }

  loadEnded(ask: Extract<Ask, { t: 'gone' | 'loadFailed' }>): void {
    const f = this.#leaseOf(ask);
    if (f === undefined) return;
    if (ask.t === 'gone') {
      if (!f.superseded)
        this.#entries.storeNegative(f.key, FLAG_ABSENT | FLAG_GONE, this.#coherent(f));
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

  /**
   * Redis says `key` changed: a read of it in flight may hold the old value, so it is
   * answered but not stored (and a loader's value is not written over the change).
   */
  invalidated(key: string): void {
    const f = this.#flights.get(key);
    if (f !== undefined) f.superseded = true;
  }

  /** Every key may have changed (a flush): nothing in flight is stored. */
  invalidatedAll(): void {
    for (const f of this.#flights.values()) f.superseded = true;
  }

  async write(ask: Extract<Ask, { t: 'set' | 'delete' }>): Promise<void> {
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
      ask.t === 'set' &&
      error === undefined &&
      this.#entries.store(key, ask.value, ask.flags, ask.ttlMs, this.#ownWritesTracked()) !== 0;
    if (!stored) this.#entries.delete(key);
    else this.#readBack(key);
    this.#clients.send(ask.from, {
      t: 'ack',
      id: ask.id,
      to: ask.from,
      code: error?.code,
      message: error?.message,
    });
  }

  /** Will Redis tell us when `f`'s key changes (or is coherence off)? */
  #coherent(f: Flight): boolean {
    return this.#tracking === undefined || this.#tracking.coherent(f.token);
  }

  /**
   * Redis tracks reads, not writes: what we wrote ourselves is not watched for us, so it
   * gets the short untracked soft TTL while coherence works (as before without it).
   */
  #ownWritesTracked(): boolean {
    return this.#tracking === undefined || this.#tracking.refused !== undefined;
  }

  /**
   * Read `key` back after a write of ours, in a flight of its own with nobody waiting:
   * Redis tracks what a connection reads, so without it a later write by anyone else
   * would not be announced to this process, which would serve its own value for the
   * untracked soft TTL. One GET per write; the value read (ours, or a newer one) is
   * stored as tracked. When a read of the key is already on its way, that one does it
   * (or, superseded by this write, this waits for it to end).
   */
  #readBack(key: string): void {
    if (this.#ownWritesTracked() || this.#closed) return;
    const current = this.#flights.get(key);
    if (current !== undefined) {
      // A superseded read stores nothing, so it would leave the key untracked: read back
      // once it ends. One still valid will store what it reads, tracked.
      if (current.superseded) current.readBack = true;
      return;
    }
    if (this.#flights.size >= this.#config.maxInFlight) return;
    const flight: Flight = {
      key,
      askers: new Map(),
      loaders: [],
      superseded: false,
      token: this.#tracking?.token() ?? 0,
    };
    this.#flights.set(key, flight);
    this.#control.add('fetches');
    this.#batcher.read(key).then((read) => this.#landed(flight, read));
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

  /**
   * Store a landed value in L1 and hand it to the askers in the reply itself: a waiting
   * thread then needs no second L1 read (a probe and a copy), and gets its value even if
   * the entry was evicted or expired in between (a soft TTL shorter than the round trip).
   */
  #finishStored(
    f: Flight,
    value: Uint8Array,
    flags: number,
    ttlMs: number,
    tracked: boolean,
  ): void {
    // L1 could not take it: drop the older copy, so it cannot outlive this read.
    const version = this.#entries.store(f.key, value, flags, ttlMs, tracked);
    if (version === 0) this.#entries.delete(f.key);
    this.#finish(f, { status: 'ok', value: exactBytes(value), flags, version });
  }

  #finish(f: Flight, outcome: Omit<Extract<Reply, { t: 'done' }>, 't' | 'key'>): void {
    clearTimeout(f.leaseTimer);
    this.#flights.delete(f.key);
    const reply: Reply = { t: 'done', key: f.key, ...outcome };
    for (const [asker, seq] of f.askers) this.#clients.send(asker, { ...reply, seq });
    // A new read for those who asked after the change (it stores what it reads, tracked:
    // it does the read-back too).
    if (f.late !== undefined && !this.#closed) this.#start(f.key, f.late.askers, f.late.loaders);
    else if (f.readBack) this.#readBack(f.key);
  }
}
