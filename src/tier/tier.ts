/**
 * Tier: one thread's handle on the read-through tier. Reads are served from the shared
 * L1 without I/O; a miss (or a stale hit) is asked of the refresher (asks.ts), which
 * does the Redis work once for the whole process and writes the result into L1.
 *
 * In this thread, callers waiting for the same key share one ask (waiters.ts); across
 * threads the refresher's flight does the coalescing. A key Redis does not have is
 * loaded by one caller's loader for the whole process (loader-lease.ts).
 */

import { closedError, HotshieldError } from '../errors.ts';
import { counterTotalKey } from '../keys/reserved-keys.ts';
import { HEAT_KIND, L1Error, L1Table, newRef, ReadMemo, releaseThread } from '../l1/index.ts';
import { Control } from '../refresher/control.ts';
import {
  type HotKeysOptions,
  type HotKeysReport,
  hotKeysReport,
  hotLimitOf,
  hotScopeOf,
} from '../refresher/hot-report.ts';
import { FLAG_ABSENT, FLAG_GONE } from '../refresher/protocol.ts';
import { exactBytes } from '../refresher/turn-batch.ts';
import { Asks } from './asks.ts';
import { type CodecName, codecId, decode, encode } from './codec.ts';
import { Counter, type CounterPort } from './counter.ts';
import { HeatCounts, type Tally } from './heat-counts.ts';
import { checkKey, checkReadKey, checkWritable } from './key-checks.ts';
import { callDuration, type TierConfig } from './options.ts';
import type {
  GetOptions,
  Lookup,
  RefresherStatus,
  SetOptions,
  TierHandle,
  TierOwner,
  TierStats,
} from './types.ts';
import type { Fetched } from './waiters.ts';

/** The options of a call that passed none (one object, not one per call). */
const NO_OPTIONS: GetOptions = Object.freeze({});

/** What a thread remembers of an entry it read (ReadMemo): the decoded value and its flags. */
interface Known {
  readonly value: unknown;
  readonly flags: number;
  readonly version: number;
  /** Its memo hits not yet counted as heat (heat-counts.ts); undefined: hot keys off. */
  readonly tally: Tally | undefined;
}

/** Bound on the Counter objects a thread keeps for reuse (cleared when reached). */
const COUNTER_HANDLES_LIMIT = 10_000;

/**
 * Attachments still open in this thread. When the thread ends normally their L1 reader
 * lines are released (a `terminate()`d worker runs no exit hook: the owner calls
 * `tier.releaseThread(threadId)` from the Worker's 'exit' event instead).
 */
const openTiers = new Set<() => void>();
process.once('exit', () => {
  for (const release of openTiers) release();
});

export class Tier {
  readonly #handle: TierHandle;
  readonly #config: TierConfig;
  readonly #l1: L1Table;
  /** Decoded values of entries read lately, re-validated on every read; undefined: memoBytes 0. */
  readonly #memo: ReadMemo<Known> | undefined;
  readonly #control: Control;
  /** Hot-key counting (heat-counts.ts); undefined with hotKeys off. */
  readonly #heat: HeatCounts | undefined;
  readonly #codec: CodecName;
  readonly #codecId: number;
  readonly #asks: Asks;
  readonly #owner: TierOwner | undefined;
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
    this.#memo =
      this.#config.memoBytes > 0 ? new ReadMemo(this.#l1, this.#config.memoBytes) : undefined;
    this.#heat = this.#l1.heatOn ? new HeatCounts(this.#l1) : undefined;
    this.#codec = this.#config.codec;
    this.#codecId = codecId(this.#codec);
    this.#owner = owner;
    this.#asks = new Asks(this.#config, this.#control, this.#l1);
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

  readonly #release = (): void => {
    this.#heat?.close();
    this.#memo?.clear();
    this.#l1.close();
  };

  /** Pass this to another thread (workerData) and call attachTier there. */
  get handle(): TierHandle {
    return this.#handle;
  }

  /**
   * The value of `key`, or undefined if Redis (and the loader, if given) has none.
   * A fresh L1 hit returns at once; a stale one returns at once and refreshes in the
   * background; a miss waits for the refresher (at most `timeout`).
   */
  get(key: string, options: GetOptions = NO_OPTIONS): Promise<unknown> {
    // Not async: a hit settles one promise, without a second async layer (lookup's).
    try {
      const known = this.#known(key, options);
      if (known !== undefined) return Promise.resolve(known === null ? undefined : known.value);
      return this.#miss(key, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Like get, with where the value came from and its age (for HTTP `x-cache` and `age`). */
  async lookup(key: string, options: GetOptions = NO_OPTIONS): Promise<Lookup | undefined> {
    const known = this.#known(key, options);
    if (known !== undefined) return known ?? undefined;
    const fetched = (await this.#miss(key, options, true)) as Fetched | undefined;
    if (fetched === undefined) return undefined;
    return { value: fetched.value, cache: 'miss', ageMs: 0, version: fetched.version };
  }

  /** What L1 says for a get or lookup (see #fromL1), after the call's checks. */
  #known(key: string, options: GetOptions): Lookup | null | undefined {
    this.#assertOpen();
    const loader = options.loader;
    if (loader !== undefined && typeof loader !== 'function')
      throw new HotshieldError('HS_ERR_OPTION', 'loader must be a function (key) => value');
    return this.#fromL1(key, loader !== undefined, true);
  }

  /** Ask the refresher (and the loader, if any) for a key L1 could not answer. */
  #miss(key: string, options: GetOptions, versioned = false): Promise<unknown> {
    const loader = options.loader;
    // A loader's value is written to Redis: the key must be writable (checked here, past
    // the L1 hit, where nothing is written and the check would cost every hit).
    if (loader !== undefined) checkWritable(key, this.#config.counterShards);
    const timeoutMs = callDuration('timeout', options.timeout, this.#config.requestTimeoutMs, 1);
    const ttlMs = callDuration('ttl', options.ttl, 0, 0);
    return this.#asks.fetch(key, loader, ttlMs, timeoutMs, versioned);
  }

  /**
   * What L1 alone can say about `key`, synchronously: its value (a stale one also asks
   * for a background refresh), null if L1 knows Redis has no such key, or undefined
   * when only Redis can answer (then call lookup). No promise, no I/O: for servers that
   * answer hits on the spot.
   */
  peek(key: string): Lookup | null | undefined {
    this.#assertOpen();
    return this.#fromL1(key, false, false);
  }

  /**
   * The L1 answer for `key` (see peek); `withLoader`: a loader may overrule a negative
   * entry. A remembered fresh entry is the whole of a hot key's hit: a Map lookup and the
   * L1 re-validation (its key was checked when it was remembered). `countMiss`: a miss is
   * counted as heat here (get, lookup), not by peek, whose caller looks up next.
   */
  #fromL1(key: string, withLoader: boolean, countMiss: boolean): Lookup | null | undefined {
    const memo = this.#memo;
    const remembered = memo?.fresh(key);
    if (remembered !== undefined && memo !== undefined) {
      if (remembered.tally !== undefined) this.#heat?.memoHit(remembered.tally);
      return this.#answer(remembered, withLoader, 'hit', memo.ageMs);
    }
    const ref = memo === undefined ? undefined : newRef();
    const entry = this.#l1.get(checkReadKey(key), ref);
    const heat = this.#heat;
    if (entry === undefined) {
      if (countMiss) heat?.afterRead(key, HEAT_KIND.MISS);
      return undefined;
    }
    heat?.afterRead(key, entry.state === 'stale' ? HEAT_KIND.STALE : HEAT_KIND.HIT);
    const absent = (entry.flags & FLAG_ABSENT) !== 0;
    // The caller's loader will ask for this key itself: no background refresh as well.
    const overruled = absent && withLoader && (entry.flags & FLAG_GONE) === 0;
    const stale = entry.state === 'stale';
    if (stale && !overruled) this.#asks.refresh(key);
    const kept = memo !== undefined && ref !== undefined && !stale;
    // What the memo keeps must own its bytes: a copy-out under 4 KiB is a slice of Node's
    // shared 8 KiB pool, and keeping it (or a view a decoder made of it) would keep the
    // whole block alive, past memoBytes.
    const bytes = kept ? exactBytes(entry.value) : entry.value;
    const known: Known = {
      value: absent ? undefined : decode(this.#codec, bytes, entry.flags),
      flags: entry.flags,
      version: entry.version,
      tally: kept ? heat?.tally(key) : undefined,
    };
    if (kept) memo.keep(key, ref, known, bytes.byteLength);
    return this.#answer(known, withLoader, stale ? 'stale' : 'hit', entry.ageMs);
  }

  #answer(
    known: Known,
    withLoader: boolean,
    cache: 'hit' | 'stale',
    ageMs: number,
  ): Lookup | null | undefined {
    if ((known.flags & FLAG_ABSENT) !== 0) {
      // A negative entry stops a caller with a loader only if a loader put it there.
      return withLoader && (known.flags & FLAG_GONE) === 0 ? undefined : null;
    }
    return { value: known.value, cache, ageMs, version: known.version };
  }

  /** Write `value` to Redis (with `ttl` if given), then to L1; resolves once Redis acknowledged. */
  async set(key: string, value: unknown, options: SetOptions = {}): Promise<void> {
    this.#assertOpen();
    checkWritable(checkKey(key, this.#config.maxKeyBytes), this.#config.counterShards);
    const ttlMs = callDuration('ttl', options.ttl, 0, 0);
    const timeoutMs = callDuration('timeout', options.timeout, this.#config.requestTimeoutMs, 1);
    const bytes = encode(this.#codec, value);
    if (bytes.byteLength > this.#config.maxValueBytes) {
      throw new L1Error(
        'HS_ERR_VALUE_TOO_LARGE',
        `the encoded value is ${bytes.byteLength} bytes; the limit is ${this.#config.maxValueBytes} (maxValueBytes)`,
      );
    }
    this.#heat?.write(key);
    await this.#asks.write({ t: 'set', key, value: bytes, flags: this.#codecId, ttlMs }, timeoutMs);
  }

  /** Delete `key` from Redis, then from L1. */
  async delete(key: string, options: { timeout?: number | string } = {}): Promise<void> {
    this.#assertOpen();
    checkWritable(checkKey(key, this.#config.maxKeyBytes), this.#config.counterShards);
    const timeoutMs = callDuration('timeout', options.timeout, this.#config.requestTimeoutMs, 1);
    this.#heat?.write(key);
    await this.#asks.write({ t: 'delete', key }, timeoutMs);
  }

  /**
   * The write-hot counter `name` (counter.ts): `incr(by)` adds in shared memory and is
   * flushed to Redis in batches; `read()` sums its shards. The name must not hold `{` or
   * `}` (every shard would land in one slot) or be longer than 120 UTF-8 bytes.
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

  /** A counter's base (counter-flusher.ts): from L1 if cached (refreshing a stale one), else asked for. */
  async #counterBase(name: string, timeoutMs: number): Promise<bigint> {
    const key = counterTotalKey(name);
    const entry = this.#l1.get(key);
    if (entry !== undefined && (entry.flags & FLAG_ABSENT) === 0) {
      if (entry.state === 'stale') this.#asks.refresh(key);
      return BigInt(entry.value.toString());
    }
    const bytes = await this.#asks.fetch(key, undefined, 0, timeoutMs);
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

  /**
   * Free what a worker thread that was `terminate()`d while attached still holds of the
   * L1 (its reader slot: a terminated worker runs no exit hook). Call it from the
   * Worker's 'exit' event with the `threadId` read while the worker ran (an exited
   * worker reports -1). Returns how many reader slots were freed.
   */
  releaseThread(threadId: number): number {
    return releaseThread(this.#handle.l1, threadId);
  }

  /**
   * The hot set this process counted over the last window (about 10 s): the `limit`
   * hottest keys by reads a second, with their writes, hit ratio, slot and master; every
   * counter's increments a second; every master's reads and misses a second. Empty with
   * hotKeys off. Rates count what this process answered (hits and misses alike). With
   * `scope: 'cluster'`, every live process's published hot set, merged (hot-fleet.ts):
   * asked of the refresher, which reads them from Redis (within `timeout`).
   */
  async hotKeys(options: HotKeysOptions = {}): Promise<HotKeysReport> {
    this.#assertOpen();
    if (options === null || typeof options !== 'object')
      throw new HotshieldError(
        'HS_ERR_OPTION',
        'hotKeys options must be an object: { limit, scope }',
      );
    const limit = hotLimitOf(options.limit);
    const scope = hotScopeOf(options.scope);
    // What this thread has not flushed yet belongs in the answer.
    this.#heat?.flush();
    if (scope === 'process') return hotKeysReport(this.#l1.hotKeys(), limit);
    const timeoutMs = callDuration('timeout', options.timeout, this.#config.requestTimeoutMs, 1);
    return this.#asks.hotReport(limit, timeoutMs);
  }

  stats(): TierStats {
    return {
      l1: this.#l1.stats(),
      tier: this.#control.stats(),
      refresher: {
        state: this.#control.state,
        generation: this.#control.generation,
        coherence: this.#control.coherence,
      },
      thread: this.#asks.waiting,
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
    this.#asks.close();
    openTiers.delete(this.#release);
    this.#release();
    await this.#owner?.close();
  }

  #assertOpen(): void {
    if (this.#closed || this.#control.closed) throw closedError();
  }
}
