/**
 * Tier: one thread's handle on the read-through tier. Reads are served from the shared
 * L1 without I/O; a miss (or a stale hit) asks the refresher, which does the Redis work
 * once for the whole process and writes the result into L1 (protocol.ts).
 *
 * In this thread, callers waiting for the same key share one ask (`#pending`); across
 * threads the refresher's flight does the coalescing. Every wait has a timer and every
 * queue a bound (`maxWaiting` callers per thread), so a dead refresher or a hung Redis
 * makes callers fail with a typed error, never hang.
 */

import { BroadcastChannel } from 'node:worker_threads';
import { Counter, type CounterPort } from '../counters/counter.ts';
import { isCounterShardKey } from '../counters/shard-keys.ts';
import { HotshieldError, isTierErrorCode, type TierErrorCode } from '../errors.ts';
import { L1Error, type L1Handle, type L1Stats, L1Table } from '../l1/index.ts';
import { Control, type ControlStats, type RefresherState } from '../refresher/control.ts';
import { raceTimeout } from '../refresher/deadline.ts';
import {
  type Ask,
  type Control as ControlMessage,
  clientChannel,
  controlChannel,
  FLAG_ABSENT,
  FLAG_GONE,
  type Reply,
} from '../refresher/protocol.ts';
import { type CodecName, codecId, decode, encode } from './codec.ts';
import { counterOfTotalKey, counterTotalKey, isInternalKey } from './internal-keys.ts';
import { callDuration, type TierConfig } from './options.ts';

export const HANDLE_KIND = 'hotshield.tier/1';

/** What createTier hands out and attachTier takes: plain data and two SharedArrayBuffers. */
export interface TierHandle {
  readonly kind: typeof HANDLE_KIND;
  readonly l1: L1Handle;
  readonly control: SharedArrayBuffer;
  readonly config: TierConfig;
}

export type Loader = (key: string) => unknown | Promise<unknown>;

/** What only the thread that created the tier can do (create.ts). */
export interface TierOwner {
  close(): Promise<void>;
  metrics(): Promise<object[]>;
  status(): Promise<RefresherStatus>;
}

/** The refresher's view of Redis (tier.refresherStatus()). */
export interface RefresherStatus {
  state: RefresherState;
  /** The last connection error Redis or ioredis reported (e.g. WRONGPASS), cleared once connected. */
  lastError?: string;
}

export interface GetOptions {
  /** Called on a full miss (not in L1, not in Redis); its result is stored in Redis and L1. */
  loader?: Loader;
  /** Redis TTL of a loaded value (default: none). */
  ttl?: number | string;
  /** How long to wait for the value (default: requestTimeout). */
  timeout?: number | string;
}

export interface Lookup {
  value: unknown;
  /** 'hit': fresh in L1; 'stale': past softTtl in L1 (a refresh was asked for); 'miss': fetched now. */
  cache: 'hit' | 'stale' | 'miss';
  /** Milliseconds since the value was stored in L1 (0 on a miss). */
  ageMs: number;
  /**
   * The L1 entry's version: changes whenever the entry is rewritten in this process (0 on
   * a miss). Lets a caller cache something derived from the value, like an ETag.
   */
  version: number;
}

export interface SetOptions {
  /** Redis TTL of the value (default: none); L1 never keeps it longer. */
  ttl?: number | string;
  /** How long to wait for Redis to acknowledge (default: requestTimeout). */
  timeout?: number | string;
}

export interface TierStats {
  l1: L1Stats;
  /** Process-wide counters (control.ts), summed over every thread and refresher life. */
  tier: ControlStats;
  refresher: { state: RefresherState; generation: number };
  /** This thread only. */
  thread: { waiting: number; pendingKeys: number };
}

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  loader?: Loader;
  ttlMs: number;
}

interface Pending {
  readonly key: string;
  readonly waiters: Waiter[];
  /** An ask with `load: true` went out for the current flight. */
  askedLoad: boolean;
  /** This thread holds the lease and its loader is running. */
  loading: boolean;
  loaderError?: unknown;
}

interface AckWaiter {
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** Bound on the Counter objects a thread keeps for reuse (cleared when reached). */
const COUNTER_HANDLES_LIMIT = 10_000;

/** Bound on the keys a thread remembers as being refreshed (cleared when reached). */
const PENDING_REFRESH_LIMIT = 10_000;

/**
 * Attachments still open in this thread. When the thread ends normally their L1 reader
 * lines are released (a `terminate()`d worker runs no exit hook: the owner can call
 * `releaseThread(tier.handle.l1, threadId)` from the Worker's 'exit' event instead).
 */
const openTiers = new Set<() => void>();
process.once('exit', () => {
  for (const release of openTiers) release();
});

export class Tier {
  readonly #handle: TierHandle;
  readonly #config: TierConfig;
  readonly #l1: L1Table;
  readonly #control: Control;
  readonly #codec: CodecName;
  readonly #codecId: number;
  readonly #clientId = crypto.randomUUID();
  /** The tier's control channel (join/leave out, hello/closed in). */
  readonly #bus: BroadcastChannel;
  /** This client's private channel to the refresher: asks out, replies in. */
  readonly #channel: BroadcastChannel;
  /** Asks held until the refresher has opened its end of #channel (protocol.ts). */
  #outbox: Ask[] = [];
  #welcomed = false;
  readonly #pending = new Map<string, Pending>();
  readonly #acks = new Map<number, AckWaiter>();
  /** Keys whose background refresh was asked for, and when this thread may ask again. */
  readonly #refreshing = new Map<string, number>();
  readonly #owner: TierOwner | undefined;
  #generation: number;
  #nextAck = 1;
  #waiting = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #counters = new Map<string, Counter>();
  readonly #counterPort: CounterPort;

  /** Use createTier / attachTier. */
  constructor(handle: TierHandle, owner?: TierOwner) {
    this.#handle = handle;
    this.#config = handle.config;
    this.#control = new Control(handle.control);
    if (this.#control.closed) throw closedError();
    this.#l1 = L1Table.attach(handle.l1);
    this.#codec = this.#config.codec;
    this.#codecId = codecId(this.#codec);
    this.#owner = owner;
    this.#generation = this.#control.generation;
    this.#bus = new BroadcastChannel(controlChannel(this.#config.tierId));
    this.#bus.onmessage = (event) =>
      this.#onControl((event as MessageEvent).data as ControlMessage);
    this.#channel = new BroadcastChannel(clientChannel(this.#config.tierId, this.#clientId));
    this.#channel.onmessage = (event) => this.#onReply((event as MessageEvent).data as Reply);
    // Pending work keeps the thread alive through its timers; an idle tier must not.
    this.#bus.unref();
    this.#channel.unref();
    this.#join();
    openTiers.add(this.#release);
    this.#counterPort = {
      table: this.#l1,
      requestTimeoutMs: this.#config.requestTimeoutMs,
      assertOpen: () => this.#assertOpen(),
      adding: (add) => {
        if (this.#closed || !this.#control.enterAdd()) throw closedError();
        try {
          return add();
        } finally {
          this.#control.leaveAdd();
        }
      },
      base: (name, timeoutMs) => this.#counterBase(name, timeoutMs),
      timeoutOf: (value) => callDuration('timeout', value, this.#config.requestTimeoutMs, 1),
    };
  }

  readonly #release = (): void => this.#l1.close();

  /** Pass this to another thread (workerData) and call attachTier there. */
  get handle(): TierHandle {
    return this.#handle;
  }

  /**
   * The value of `key`, or undefined if Redis (and the loader, if given) has none.
   * A fresh L1 hit returns at once; a stale one returns at once and refreshes in the
   * background; a miss waits for the refresher (at most `timeout`).
   */
  async get(key: string, options: GetOptions = {}): Promise<unknown> {
    return (await this.lookup(key, options))?.value;
  }

  /** Like get, with where the value came from and its age (for HTTP `x-cache` and `age`). */
  async lookup(key: string, options: GetOptions = {}): Promise<Lookup | undefined> {
    this.#assertOpen();
    const loader = options.loader;
    if (loader !== undefined && typeof loader !== 'function')
      throw new HotshieldError('HS_ERR_OPTION', 'loader must be a function (key) => value');
    const known = this.#fromL1(checkReadKey(key), loader !== undefined);
    if (known !== undefined) return known ?? undefined;
    // A loader's value is written to Redis: the key must be writable (checked here, past
    // the L1 hit, where nothing is written and the check would cost every hit).
    if (loader !== undefined) this.#checkWritable(key);
    const timeoutMs = callDuration('timeout', options.timeout, this.#config.requestTimeoutMs, 1);
    const ttlMs = callDuration('ttl', options.ttl, 0, 0);
    const value = await this.#wait(key, loader, ttlMs, timeoutMs);
    return value === undefined ? undefined : { value, cache: 'miss', ageMs: 0, version: 0 };
  }

  /**
   * What L1 alone can say about `key`, synchronously: its value (a stale one also asks
   * for a background refresh), null if L1 knows Redis has no such key, or undefined
   * when only Redis can answer (then call lookup). No promise, no I/O: for servers that
   * answer hits on the spot.
   */
  peek(key: string): Lookup | null | undefined {
    this.#assertOpen();
    return this.#fromL1(checkReadKey(key), false);
  }

  /** The L1 answer for `key` (see peek); `withLoader`: a loader may overrule a negative entry. */
  #fromL1(key: string, withLoader: boolean): Lookup | null | undefined {
    const entry = this.#l1.get(key);
    if (entry === undefined) return undefined;
    const absent = (entry.flags & FLAG_ABSENT) !== 0;
    // A negative entry stops a caller with a loader only if a loader put it there.
    if (absent && withLoader && (entry.flags & FLAG_GONE) === 0) return undefined;
    const stale = entry.state === 'stale';
    if (stale) this.#refresh(key);
    if (absent) return null;
    const value = decode(this.#codec, entry.value, entry.flags);
    return { value, cache: stale ? 'stale' : 'hit', ageMs: entry.ageMs, version: entry.version };
  }

  /** Write `value` to Redis (with `ttl` if given), then to L1; resolves once Redis acknowledged. */
  async set(key: string, value: unknown, options: SetOptions = {}): Promise<void> {
    this.#assertOpen();
    this.#checkWritable(checkKey(key, this.#config.maxKeyBytes));
    const ttlMs = callDuration('ttl', options.ttl, 0, 0);
    const timeoutMs = callDuration('timeout', options.timeout, this.#config.requestTimeoutMs, 1);
    const bytes = encode(this.#codec, value);
    if (bytes.byteLength > this.#config.maxValueBytes) {
      throw new L1Error(
        'HS_ERR_VALUE_TOO_LARGE',
        `the encoded value is ${bytes.byteLength} bytes; the limit is ${this.#config.maxValueBytes} (maxValueBytes)`,
      );
    }
    const id = this.#nextAck++;
    await this.#request(id, timeoutMs, {
      t: 'set',
      id,
      key,
      from: this.#clientId,
      value: bytes,
      flags: this.#codecId,
      ttlMs,
    });
  }

  /** Delete `key` from Redis, then from L1. */
  async delete(key: string, options: { timeout?: number | string } = {}): Promise<void> {
    this.#assertOpen();
    this.#checkWritable(checkKey(key, this.#config.maxKeyBytes));
    const timeoutMs = callDuration('timeout', options.timeout, this.#config.requestTimeoutMs, 1);
    const id = this.#nextAck++;
    await this.#request(id, timeoutMs, { t: 'delete', id, key, from: this.#clientId });
  }

  /**
   * The write-hot counter `name` (counters/counter.ts): `incr(by)` adds in shared memory
   * and is flushed to Redis in batches; `read()` sums its shards. The name must not hold
   * `{` or `}` (every shard would land in one slot) or be longer than 120 UTF-8 bytes.
   */
  counter(name: string): Counter {
    this.#assertOpen();
    let counter = this.#counters.get(name);
    if (counter === undefined) {
      counter = new Counter(name, this.#counterPort);
      const totalBytes = Buffer.byteLength(counterTotalKey(name));
      if (totalBytes > this.#config.maxKeyBytes) {
        throw new HotshieldError(
          'HS_ERR_COUNTER_NAME',
          `counter name is too long for maxKeyBytes ${this.#config.maxKeyBytes} (its cached total needs ${totalBytes} bytes)`,
        );
      }
      if (this.#counters.size >= COUNTER_HANDLES_LIMIT) this.#counters.clear();
      this.#counters.set(name, counter);
    }
    return counter;
  }

  /** A counter's base (flusher.ts): from L1 if cached (refreshing a stale one), else asked for. */
  async #counterBase(name: string, timeoutMs: number): Promise<bigint> {
    const key = counterTotalKey(name);
    const entry = this.#l1.get(key);
    if (entry !== undefined && (entry.flags & FLAG_ABSENT) === 0) {
      if (entry.state === 'stale') this.#refresh(key);
      return BigInt(entry.value.toString());
    }
    const bytes = await this.#wait(key, undefined, 0, timeoutMs);
    if (!(bytes instanceof Uint8Array))
      throw new HotshieldError('HS_ERR_L2_UNAVAILABLE', `no total for counter ${name}`);
    return BigInt(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString());
  }

  /**
   * The refresher thread's own Prometheus metrics (Redis latency and errors per node,
   * batch sizes, keys in flight) as prom-client JSON, for merging with a registry of
   * yours (`AggregatorRegistry.aggregate`). Only in the thread that created the tier;
   * elsewhere, and if the refresher does not answer within a second, an empty list.
   */
  async refresherMetrics(): Promise<object[]> {
    if (this.#owner === undefined || this.#closed) return [];
    return this.#owner.metrics().catch(() => []);
  }

  /**
   * The refresher's view of Redis and the last connection error it saw (say, WRONGPASS:
   * refused credentials look like a timeout otherwise). The error only in the thread
   * that created the tier; elsewhere, and if the refresher does not answer, the state.
   */
  async refresherStatus(): Promise<RefresherStatus> {
    const state = this.#control.state;
    if (this.#owner === undefined || this.#closed) return { state };
    return this.#owner.status().catch(() => ({ state }));
  }

  stats(): TierStats {
    return {
      l1: this.#l1.stats(),
      tier: this.#control.stats(),
      refresher: { state: this.#control.state, generation: this.#control.generation },
      thread: { waiting: this.#waiting, pendingKeys: this.#pending.size },
    };
  }

  /**
   * Detach this thread: pending calls fail with HS_ERR_CLOSED. In the thread that
   * created the tier it also stops the refresher, after which every thread's calls
   * fail with HS_ERR_CLOSED. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    // A flight must not wait for a loader of ours that will never report.
    for (const p of this.#pending.values()) {
      if (p.askedLoad || p.loading) this.#post({ t: 'release', key: p.key, from: this.#clientId });
    }
    this.#failAll(closedError());
    this.#bus.postMessage({ t: 'leave', from: this.#clientId } satisfies ControlMessage);
    this.#bus.close();
    this.#channel.close();
    openTiers.delete(this.#release);
    this.#l1.close();
    await this.#owner?.close();
  }

  /** Refuse a write to a counter's shard key (shard-keys.ts, isCounterShardKey). */
  #checkWritable(key: string): void {
    if (typeof key === 'string' && isCounterShardKey(key, this.#config.counterShards)) {
      throw new L1Error(
        'HS_ERR_KEY_INVALID',
        `${key} is a shard of counter ${key.slice(0, key.lastIndexOf('#'))} (counterShards ${this.#config.counterShards}): writing it would corrupt the counter`,
      );
    }
  }

  #assertOpen(): void {
    if (this.#closed || this.#control.closed) throw closedError();
  }

  #post(ask: Ask): void {
    if (this.#welcomed) this.#channel.postMessage(ask);
    // Bounded: every held ask belongs to a waiting caller (≤ maxWaiting) or a refresh.
    else if (this.#outbox.length < this.#config.maxWaiting) this.#outbox.push(ask);
  }

  /** Ask the refresher to open its end of this client's channel; it answers `welcome`. */
  #join(): void {
    this.#welcomed = false;
    this.#bus.postMessage({ t: 'join', from: this.#clientId } satisfies ControlMessage);
  }

  #onControl(message: ControlMessage): void {
    if (this.#closed) return;
    if (message.t === 'hello') this.#onRefresherStart(message.generation);
    else if (message.t === 'closed') this.#failAll(closedError());
  }

  /** Ask for one background refresh (never a load: a caller with a loader has a value). */
  #refresh(key: string): void {
    const now = performance.now();
    const notBefore = this.#refreshing.get(key);
    if (notBefore !== undefined && now < notBefore) return;
    if (this.#refreshing.size >= PENDING_REFRESH_LIMIT) this.#refreshing.clear();
    // Until the refresher answers (or an L2 deadline and then some pass), one ask is enough.
    this.#refreshing.set(key, now + this.#config.l2TimeoutMs * 4);
    this.#control.add('refreshes');
    this.#post({ t: 'fetch', key, from: this.#clientId, load: false });
  }

  #wait(
    key: string,
    loader: Loader | undefined,
    ttlMs: number,
    timeoutMs: number,
  ): Promise<unknown> {
    if (this.#waiting >= this.#config.maxWaiting) {
      return Promise.reject(
        new HotshieldError(
          'HS_ERR_QUEUE_FULL',
          `${this.#waiting} callers are already waiting in this thread (maxWaiting)`,
        ),
      );
    }
    let p = this.#pending.get(key);
    if (p === undefined) {
      p = { key, waiters: [], askedLoad: loader !== undefined, loading: false };
      this.#pending.set(key, p);
      this.#control.add('waits');
      this.#post({ t: 'fetch', key, from: this.#clientId, load: p.askedLoad });
    } else {
      this.#control.add('localJoins');
      if (loader !== undefined && !p.askedLoad) {
        p.askedLoad = true;
        this.#post({ t: 'fetch', key, from: this.#clientId, load: true });
      }
    }
    const pending = p;
    this.#waiting++;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        loader,
        ttlMs,
        timer: setTimeout(() => {
          this.#control.add('timeouts');
          this.#settle(pending, waiter, undefined, timeoutError(key, timeoutMs));
        }, timeoutMs),
      };
      pending.waiters.push(waiter);
    });
  }

  /** Settle one waiter (with `error` if given) and forget the key once nobody waits. */
  #settle(p: Pending, w: Waiter, value: unknown, error?: Error): void {
    const i = p.waiters.indexOf(w);
    if (i === -1) return;
    p.waiters.splice(i, 1);
    clearTimeout(w.timer);
    this.#waiting--;
    if (error === undefined) w.resolve(value);
    else w.reject(error);
    if (p.waiters.length === 0 && !p.loading && this.#pending.get(p.key) === p)
      this.#pending.delete(p.key);
  }

  #settleAll(
    p: Pending,
    pick: (w: Waiter) => { value?: unknown; error?: Error } | undefined,
  ): void {
    for (const w of [...p.waiters]) {
      const outcome = pick(w);
      if (outcome !== undefined) this.#settle(p, w, outcome.value, outcome.error);
    }
  }

  #onReply(reply: Reply): void {
    if (this.#closed) return;
    if (reply.t === 'welcome') {
      this.#welcomed = true;
      const held = this.#outbox;
      this.#outbox = [];
      for (const ask of held) this.#channel.postMessage(ask);
      return;
    }
    if (reply.t === 'ack') {
      if (reply.to !== this.#clientId) return;
      const a = this.#acks.get(reply.id);
      if (a === undefined) return;
      this.#acks.delete(reply.id);
      this.#waiting--;
      clearTimeout(a.timer);
      if (reply.code === undefined) a.resolve();
      else a.reject(replyError(reply.code, reply.message));
      return;
    }
    const { key } = reply;
    // A lease tells every thread that Redis has no value (or failed: `code`): callers
    // without a loader are answered now; only the addressee runs its loader, and one that
    // cannot (its loader callers left) hands the lease back at once.
    if (reply.status === 'lease') {
      const p = this.#pending.get(key);
      if (p !== undefined) {
        const why = reply.code === undefined ? undefined : replyError(reply.code, reply.message);
        this.#settleAll(p, (w) =>
          w.loader !== undefined
            ? undefined
            : why === undefined
              ? { value: undefined }
              : { error: why },
        );
      }
      if (reply.to === this.#clientId && (p === undefined || !this.#startLoader(p))) {
        this.#post({ t: 'release', key, from: this.#clientId });
      }
      return;
    }
    if (reply.to !== undefined && reply.to !== this.#clientId) return;
    if (reply.status === 'error')
      this.#refreshing.set(key, performance.now() + this.#config.breakerCooldownMs);
    else this.#refreshing.delete(key);
    const p = this.#pending.get(key);
    if (p === undefined) return;
    switch (reply.status) {
      case 'ok':
        this.#delivered(p, reply.value, reply.flags ?? 0);
        return;
      case 'absent':
        // Callers with a loader keep waiting and ask again, with `load`: their first ask
        // joined a flight that was not leased (it came too late, or a write superseded
        // it). The refresher coalesces a duplicate.
        this.#settleAll(p, (w) => (w.loader === undefined ? { value: undefined } : undefined));
        if (p.waiters.length > 0) {
          p.askedLoad = true;
          this.#post({ t: 'fetch', key, from: this.#clientId, load: true });
        }
        return;
      case 'gone':
        this.#settleAll(p, () => ({ value: undefined }));
        return;
      case 'error': {
        const error = replyError(reply.code, reply.message, p.loaderError);
        p.loaderError = undefined;
        this.#settleAll(p, () => ({ error }));
        return;
      }
    }
  }

  #delivered(p: Pending, value: Uint8Array | undefined, flags: number): void {
    let bytes: Uint8Array | undefined = value;
    let entryFlags = flags;
    if (bytes === undefined) {
      const entry = this.#l1.get(p.key);
      if (entry === undefined || (entry.flags & FLAG_ABSENT) !== 0) {
        // Evicted between the refresher's write and this read (rare): ask again; the
        // waiters' own timers still bound the wait.
        this.#post({ t: 'fetch', key: p.key, from: this.#clientId, load: p.askedLoad });
        return;
      }
      bytes = entry.value;
      entryFlags = entry.flags;
    }
    const data = bytes;
    // A counter's cached total is a decimal, read by #counterBase, not a value of the codec.
    if (counterOfTotalKey(p.key) !== undefined) {
      this.#settleAll(p, () => ({ value: data }));
      return;
    }
    this.#settleAll(p, () => {
      try {
        return { value: decode(this.#codec, data, entryFlags) };
      } catch (error) {
        return { error: error as Error };
      }
    });
  }

  /** Run a waiting caller's loader for the lease on `p`; false if nobody here has one. */
  #startLoader(p: Pending): boolean {
    if (p.loading) return true;
    const w = p.waiters.find((x) => x.loader !== undefined);
    if (w?.loader === undefined) return false;
    p.loading = true;
    this.#runLoader(p, w.loader, w.ttlMs).catch(() => {});
    return true;
  }

  async #runLoader(p: Pending, loader: Loader, ttlMs: number): Promise<void> {
    const from = this.#clientId;
    const key = p.key;
    const generation = this.#generation;
    let ask: Ask;
    try {
      const value = await withLoaderTimeout(loader, key, this.#config.loaderTimeoutMs);
      ask =
        value === undefined
          ? { t: 'gone', key, from }
          : {
              t: 'store',
              key,
              from,
              value: this.#encodeLoaded(value),
              flags: this.#codecId,
              ttlMs,
            };
    } catch (error) {
      const timedOut = error instanceof HotshieldError && error.code === 'HS_ERR_LOADER_TIMEOUT';
      p.loaderError = error;
      ask = {
        t: 'loadFailed',
        key,
        from,
        code: timedOut ? 'HS_ERR_LOADER_TIMEOUT' : 'HS_ERR_LOADER_FAILED',
        message: `the loader for "${key}" failed: ${(error as Error)?.message ?? String(error)}`,
      };
    }
    p.loading = false;
    if (this.#closed) return;
    if (generation !== this.#generation) {
      // The refresher that leased this key died meanwhile; its successor knows nothing of
      // the lease. Answer this thread's callers here; other threads asked the successor.
      this.#settleLocally(p, ask);
    } else {
      this.#post(ask);
    }
    if (p.waiters.length === 0 && this.#pending.get(key) === p) this.#pending.delete(key);
  }

  #settleLocally(p: Pending, ask: Ask): void {
    if (ask.t === 'store') {
      const bytes = ask.value;
      this.#settleAll(p, () => {
        try {
          return { value: decode(this.#codec, bytes, ask.flags) };
        } catch (error) {
          return { error: error as Error };
        }
      });
    } else if (ask.t === 'gone') {
      this.#settleAll(p, () => ({ value: undefined }));
    } else if (ask.t === 'loadFailed') {
      const error = replyError(ask.code, ask.message, p.loaderError);
      this.#settleAll(p, () => ({ error }));
    }
  }

  #encodeLoaded(value: unknown): Uint8Array {
    const bytes = encode(this.#codec, value);
    if (bytes.byteLength > this.#config.maxValueBytes) {
      throw new HotshieldError(
        'HS_ERR_CODEC',
        `the loaded value is ${bytes.byteLength} bytes encoded; the limit is ${this.#config.maxValueBytes} (maxValueBytes)`,
      );
    }
    return bytes;
  }

  /** A new refresher knows nothing of the old one's flights: ask again, fail unacknowledged writes. */
  #onRefresherStart(generation: number): void {
    if (generation <= this.#generation) return;
    this.#generation = generation;
    this.#join();
    for (const p of this.#pending.values()) {
      if (!p.loading)
        this.#post({ t: 'fetch', key: p.key, from: this.#clientId, load: p.askedLoad });
    }
    const lost = new HotshieldError(
      'HS_ERR_L2_UNAVAILABLE',
      'the refresher restarted before acknowledging this write; it may or may not have been applied',
    );
    for (const [id, a] of this.#acks) {
      this.#acks.delete(id);
      this.#waiting--;
      clearTimeout(a.timer);
      a.reject(lost);
    }
  }

  #request(id: number, timeoutMs: number, ask: Ask): Promise<void> {
    if (this.#waiting >= this.#config.maxWaiting) {
      return Promise.reject(
        new HotshieldError(
          'HS_ERR_QUEUE_FULL',
          `${this.#waiting} callers are already waiting in this thread (maxWaiting)`,
        ),
      );
    }
    this.#waiting++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.#acks.delete(id)) return;
        this.#waiting--;
        this.#control.add('timeouts');
        reject(
          new HotshieldError(
            'HS_ERR_TIMEOUT',
            `no acknowledgement for the write of "${ask.key}" within ${timeoutMs} ms (requestTimeout); it may still be applied`,
          ),
        );
      }, timeoutMs);
      this.#acks.set(id, { resolve, reject, timer });
      this.#post(ask);
    });
  }

  #failAll(error: Error): void {
    for (const p of [...this.#pending.values()]) this.#settleAll(p, () => ({ error }));
    this.#pending.clear();
    for (const a of this.#acks.values()) {
      clearTimeout(a.timer);
      a.reject(error);
    }
    this.#acks.clear();
    this.#waiting = 0;
  }
}

function closedError(): HotshieldError {
  return new HotshieldError('HS_ERR_CLOSED', 'the tier is closed');
}

function timeoutError(key: string, ms: number): HotshieldError {
  return new HotshieldError(
    'HS_ERR_TIMEOUT',
    `no value for "${key}" within ${ms} ms (requestTimeout); Redis or the refresher is slow or down`,
  );
}

function replyError(
  code: string | undefined,
  message: string | undefined,
  cause?: unknown,
): HotshieldError {
  const c: TierErrorCode = isTierErrorCode(code) ? code : 'HS_ERR_L2_UNAVAILABLE';
  return new HotshieldError(c, message ?? c, cause === undefined ? undefined : { cause });
}

/**
 * A key about to be read: what L1's own check (empty, over maxKeyBytes) cannot see — a
 * non-string, or a lone surrogate, which UTF-8 encoding would silently turn into U+FFFD
 * and so into another key. Reads skip checkKey's length pass: L1 measures while encoding.
 */
function checkReadKey(key: string): string {
  if (typeof key !== 'string') throw new L1Error('HS_ERR_KEY_INVALID', 'key must be a string');
  if (!key.isWellFormed())
    throw new L1Error('HS_ERR_KEY_INVALID', 'key is not well-formed UTF-16 (lone surrogate)');
  if (isInternalKey(key)) throw reservedKey();
  return key;
}

function reservedKey(): L1Error {
  return new L1Error(
    'HS_ERR_KEY_INVALID',
    'keys containing :__hotshield are reserved for hotshield (counter totals and flush marks)',
  );
}

/** A key about to be written (it never passes through L1's check): the full check. */
function checkKey(key: string, maxKeyBytes: number): string {
  if (typeof key !== 'string') throw new L1Error('HS_ERR_KEY_INVALID', 'key must be a string');
  if (key.length === 0) throw new L1Error('HS_ERR_KEY_EMPTY', 'key must not be empty');
  if (!key.isWellFormed())
    throw new L1Error('HS_ERR_KEY_INVALID', 'key is not well-formed UTF-16 (lone surrogate)');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > maxKeyBytes)
    throw new L1Error(
      'HS_ERR_KEY_TOO_LONG',
      `key is ${bytes} UTF-8 bytes; the limit is ${maxKeyBytes} (maxKeyBytes)`,
    );
  if (isInternalKey(key)) throw reservedKey();
  return key;
}

function withLoaderTimeout(loader: Loader, key: string, ms: number): Promise<unknown> {
  return raceTimeout(
    Promise.resolve().then(() => loader(key)),
    ms,
    () =>
      new HotshieldError(
        'HS_ERR_LOADER_TIMEOUT',
        `the loader for "${key}" took longer than ${ms} ms (loaderTimeout)`,
      ),
  );
}
