/**
 * L1Table: a thread's attachment to the shared table, for reading entries, adding to
 * counters and reading statistics. Any number of threads attach; none takes a lock.
 *
 * A read (`get`) is one read section (registry.ts): RMW its own `seq` to odd, probe the
 * index, check hash and key bytes in the entry, copy the value out into a fresh Buffer,
 * RMW `seq` back to even. The writer reuses no byte a read section can reach until the
 * section has closed, so the copy is never torn or mixed. Nothing is awaited and no view
 * of shared memory escapes: callers may keep and send the returned Buffer freely.
 */

import { threadId } from 'node:worker_threads';
import { committedBytesUsed } from './arena.ts';
import { SharedClock } from './clock.ts';
import {
  addedTo,
  addToCounter,
  cellsNamed,
  counterCells,
  counterName,
  counterState,
  findOrCreateCounter,
  MAX_COUNTER_DELTA,
  waitForAck,
} from './counters.ts';
import { bump, readCount } from './counts.ts';
import type { L1Handle } from './create.ts';
import { L1Error } from './errors.ts';
import { halfSipHash } from './hash.ts';
import {
  type CounterCount,
  counterWindow,
  type HeatEvent,
  type HeatTable,
  type HotKeyCount,
  type NodeCount,
  readHotKeys,
  readNodes,
  recordHeat,
} from './heat.ts';
import { findKey, type ProbeResult, ptrToOffset } from './index-table.ts';
import { encodeKey, type KeyBytes, keyScratch } from './key-bytes.ts';
import {
  C,
  E,
  H,
  HEAT_KEY_BYTES,
  type HeatKind,
  type Layout,
  MAX_ACCESS,
  MAX_COUNTER_NAME_BYTES,
  R,
  READER_STAT_NAMES,
  READER_STAT_WORD,
  REGISTRY_LINE_WORDS,
  type ReaderStatName,
  readLayout,
  SLOT_PTR,
  SLOT_WORDS,
  WRITER_STAT_NAMES,
  type WriterStatName,
  WS,
} from './layout.ts';
import { claimReaderLine, releaseLine } from './registry.ts';
import { markedStale } from './stale-mark.ts';
import { makeViews, type Views } from './views.ts';

export type EntryState = 'fresh' | 'stale';

/**
 * Where a read found its entry, filled in by `get(key, ref)`: enough for `freshAge(ref)`
 * to tell later, with two loads and no copy, whether that very entry is still the one
 * published for its key. Entries are immutable once published and every write is a new
 * entry with a new version, so "same slot, same pointer, same version" means "same value".
 */
export interface L1Ref {
  slot: number;
  ptr: number;
  version: number;
  /** Table-clock milliseconds (see now()). */
  storedAt: number;
  softExpiresAt: number;
}

/** An empty L1Ref to pass to get(). */
export function newRef(): L1Ref {
  return { slot: 0, ptr: 0, version: 0, storedAt: 0, softExpiresAt: 0 };
}

export interface L1Entry {
  value: Buffer;
  state: EntryState;
  flags: number;
  version: number;
  /** Whole milliseconds since the value was stored (for an HTTP `age` header, say). */
  ageMs: number;
}

/** Which add of which counter cell: what waitCounterAck waits for. */
export interface CounterTicket {
  readonly cell: number;
  readonly op: number;
}

export type L1Stats = Record<ReaderStatName | WriterStatName, number> & {
  entries: number;
  bytesUsed: number;
  counters: number;
  /** Sum over counters of what was added and Redis has not acknowledged yet. */
  counterUnflushed: number;
  budgetBytes: number;
  totalBytes: number;
  slotCount: number;
  maxLiveEntries: number;
};

/** What the statistics exported as metrics count (the gateway's hotshield_l1_* and counter gauges). */
export const L1_STAT_HELP = {
  hits: 'L1 reads that found a fresh value',
  staleHits: 'L1 reads that found a stale value',
  misses: 'L1 reads that found nothing',
  evictions: 'L1 entries evicted',
  bytesUsed: 'Bytes of L1 entries',
  entries: 'Entries in L1',
  budgetBytes: 'L1 byte budget',
  counterAdds: 'Counter increments accepted (in shared memory)',
  counterUnflushed:
    'Counter increments accepted and not yet acknowledged by Redis (lost if the process is killed)',
} as const satisfies Partial<Record<keyof L1Stats, string>>;

export class L1Table {
  readonly #v: Views;
  readonly #layout: Layout;
  readonly #clock: SharedClock;
  readonly #scratch: KeyBytes;
  readonly #probe: ProbeResult = { slot: 0, ptr: 0 };
  readonly #line: number;
  readonly #reg: Int32Array;
  /** The key bytes (in #scratch) and hash of the last get: for heatLast. */
  #lastLen = 0;
  #lastHash = 0;
  /** The one heat event this thread fills and counts (heat.ts: no allocation per event). */
  readonly #event: HeatEvent;
  /** Counter cells never move, so a thread remembers where each name lives. */
  readonly #counterCells = new Map<string, number>();
  #closed = false;

  constructor(handle: L1Handle) {
    this.#layout = readLayout(handle?.sab);
    this.#v = makeViews(handle.sab, this.#layout);
    this.#clock = new SharedClock(this.#v.epochMs);
    this.#scratch = keyScratch(Math.max(this.#layout.maxKeyBytes, MAX_COUNTER_NAME_BYTES));
    this.#reg = this.#v.registry;
    this.#line = claimReaderLine(this.#v, threadId);
    this.#event = { key: this.#scratch, len: 0, hash: 0, slot: 0, kind: 0, n: 0, nowMs: 0 };
  }

  /** Attach to a table created by `createL1` (in this or any other thread). */
  static attach(handle: L1Handle): L1Table {
    return new L1Table(handle);
  }

  get layout(): Layout {
    return this.#layout;
  }

  /** The table clock: monotonic milliseconds since the table was created. */
  now(): number {
    return this.#clock.precise();
  }

  /**
   * Look `key` up. Returns a copy of the value with its metadata, or undefined when
   * the key is absent or past its hard expiry. Never blocks, never awaits.
   */
  get(key: string | Uint8Array, ref?: L1Ref): L1Entry | undefined {
    if (this.#closed) throw new L1Error('HS_ERR_L1_CLOSED', 'this L1Table is closed');
    const v = this.#v;
    const len = encodeKey(key, this.#scratch, this.#layout.maxKeyBytes, 'key');
    const hash = halfSipHash(this.#scratch, len, v.seed0, v.seed1);
    this.#lastLen = len;
    this.#lastHash = hash;
    for (let attempt = 0; attempt < 2; attempt++) {
      const reg = this.#reg;
      const seqIdx = this.#line + R.SEQ;
      // enter: pairs with the writer's Atomics.load snapshot in GracePeriod.wait.
      const seq = Atomics.add(reg, seqIdx, 1) + 1;
      let entry: L1Entry | undefined;
      if (findKey(v, this.#scratch, len, hash, this.#probe))
        entry = this.#readEntry(this.#probe.ptr, len, ref);
      // leave: pairs with GracePeriod.wait; fails only if the writer revoked this section.
      if (Atomics.compareExchange(reg, seqIdx, seq, seq + 1) !== seq) continue;
      if (entry === undefined) {
        bump(reg, this.#line + R.MISSES);
        return undefined;
      }
      if (entry.state === 'fresh') bump(reg, this.#line + R.HITS);
      else bump(reg, this.#line + R.STALE_HITS);
      if (ref !== undefined) ref.slot = this.#probe.slot;
      return entry;
    }
    // Revoked twice in a row: the writer thinks this thread is stuck; report a miss.
    bump(this.#reg, this.#line + R.MISSES);
    return undefined;
  }

  /**
   * The age in whole milliseconds of the entry `ref` was filled from, if that entry is
   * still the one published for its key and still fresh; -1 otherwise (then `get` again).
   * Counted as a hit, and bumps the entry's access count like a read: a hot key served
   * this way stays hot for eviction.
   *
   * Nothing is copied, so the check needs no read section: the index slot pointing at
   * `ptr` (load 1) and `ptr` still holding `version` (load 2) mean the slot pointed at
   * this entry at load 1, since a version's bytes are written only while it is current.
   * (Its caveats, the 32-bit version wrap and load 2 racing a reuse of the memory, are in
   * docs/ARCHITECTURE.md.) Only the access-count write takes a section (#countAccess).
   */
  freshAge(ref: L1Ref): number {
    if (this.#closed) throw new L1Error('HS_ERR_L1_CLOSED', 'this L1Table is closed');
    const v = this.#v;
    // acquire: pairs with publish()/unlink() of the writer, as in findKey.
    if (Atomics.load(v.index, SLOT_WORDS * ref.slot + SLOT_PTR) !== ref.ptr) return -1;
    const w = ptrToOffset(ref.ptr) >>> 2;
    if (Atomics.load(v.arenaU32, w + E.VERSION / 4) !== ref.version) return -1;
    const now = this.#clock.now();
    if (now >= ref.softExpiresAt || markedStale(v.header, ref.version)) return -1;
    // A saturated count (a hot key after three reads) needs no write at all.
    if ((v.arenaU32[w + E.ACCESS / 4] & MAX_ACCESS) < MAX_ACCESS) this.#countAccess(ref, w);
    bump(this.#reg, this.#line + R.HITS);
    return Math.floor(now - ref.storedAt);
  }

  /**
   * Bump the access count of the entry `ref` names, as a read does, inside a read section:
   * outside one, the entry could be unlinked and its memory reused between the check and
   * the compare-exchange, which would then write into another entry's bytes if they
   * happened to hold the old access word. Inside, memory the slot still points at cannot
   * be reused before the section ends.
   */
  #countAccess(ref: L1Ref, w: number): void {
    const v = this.#v;
    const reg = this.#reg;
    const seqIdx = this.#line + R.SEQ;
    const seq = Atomics.add(reg, seqIdx, 1) + 1;
    if (Atomics.load(v.index, SLOT_WORDS * ref.slot + SLOT_PTR) === ref.ptr) {
      const access = v.arenaU32[w + E.ACCESS / 4];
      if ((access & MAX_ACCESS) < MAX_ACCESS && access >>> 2 === (ref.version & 0x3fffffff))
        Atomics.compareExchange(v.arenaU32, w + E.ACCESS / 4, access, access + 1);
    }
    // Revoked meanwhile (a writer took this thread for stuck): the count is all it missed.
    Atomics.compareExchange(reg, seqIdx, seq, seq + 1);
  }

  #readEntry(ptr: number, keyLen: number, ref: L1Ref | undefined): L1Entry | undefined {
    const v = this.#v;
    const off = ptrToOffset(ptr);
    const w = off >>> 2;
    const d = off >>> 3;
    const hardExpiresAt = v.arenaF64[d + E.HARD_EXPIRES_AT / 8];
    const now = this.#clock.now();
    if (now >= hardExpiresAt) return undefined;
    const valueLen = v.arenaU32[w + E.VALUE_LEN / 4];
    const start = off + E.KEY + keyLen;
    if (start + valueLen > this.#layout.arenaBytes) return undefined;
    // S3-FIFO access count, kept in the entry's own header (already in cache) and bumped
    // only while below its cap, so a hot entry stops dirtying the line after three hits.
    // A compare-exchange, not a store: should this section have been revoked and the
    // memory reused, the word no longer holds this entry's version and nothing is written.
    const version = v.arenaU32[w + E.VERSION / 4];
    const access = v.arenaU32[w + E.ACCESS / 4];
    if ((access & MAX_ACCESS) < MAX_ACCESS && access >>> 2 === (version & 0x3fffffff)) {
      Atomics.compareExchange(v.arenaU32, w + E.ACCESS / 4, access, access + 1);
    }
    const value = Buffer.allocUnsafe(valueLen);
    v.arenaBuf.copy(value, 0, start, start + valueLen);
    if (ref !== undefined) {
      ref.ptr = ptr;
      ref.version = version;
      ref.storedAt = v.arenaF64[d + E.STORED_AT / 8];
      ref.softExpiresAt = v.arenaF64[d + E.SOFT_EXPIRES_AT / 8];
    }
    // Only small integers in the result: a double field would be one more heap allocation.
    return {
      value,
      state:
        now < v.arenaF64[d + E.SOFT_EXPIRES_AT / 8] && !markedStale(v.header, version)
          ? 'fresh'
          : 'stale',
      flags: v.arenaU32[w + E.FLAGS / 4],
      version,
      ageMs: Math.floor(now - v.arenaF64[d + E.STORED_AT / 8]),
    };
  }

  /** Whether this table counts heat (hot-key detection is on). */
  get heatOn(): boolean {
    return this.#v.heat !== undefined;
  }

  /**
   * Count `n` events of `kind` for `key` in the hot-key table (heat.ts); `slot` is the
   * key's Redis Cluster slot, which says which master the heat lands on. No-op with
   * hotKeys off.
   */
  heat(key: string, slot: number, kind: HeatKind, n = 1): void {
    if (this.#v.heat === undefined) return;
    if (this.#closed) throw new L1Error('HS_ERR_L1_CLOSED', 'this L1Table is closed');
    const len = encodeKey(key, this.#scratch, this.#layout.maxKeyBytes, 'key');
    this.#count(len, halfSipHash(this.#scratch, len, this.#v.seed0, this.#v.seed1), slot, kind, n);
  }

  /**
   * `heat` for the key of this thread's last `get`, whose bytes and hash are still at
   * hand: call it right after that get, before any other call on this table.
   */
  heatLast(slot: number, kind: HeatKind): void {
    if (this.#v.heat === undefined || this.#lastLen === 0) return;
    this.#count(this.#lastLen, this.#lastHash, slot, kind, 1);
  }

  #count(len: number, hash: number, slot: number, kind: HeatKind, n: number): void {
    const e = this.#event;
    e.len = len;
    e.hash = hash;
    e.slot = slot;
    e.kind = kind;
    e.n = n;
    e.nowMs = this.#clock.now();
    recordHeat(this.#v as HeatTable, e);
  }

  /**
   * The hot set as this process counted it over the last window (heat.ts): every key
   * with a record, every named Redis master and every counter, with raw counts and the
   * window each covers. Empty lists with hotKeys off. Allocates: for reports, not per request.
   */
  hotKeys(): { keys: HotKeyCount[]; nodes: NodeCount[]; counters: CounterCount[] } {
    const h = this.#v.heat;
    if (h === undefined) return { keys: [], nodes: [], counters: [] };
    const v = this.#v;
    const now = this.#clock.precise();
    const keys = readHotKeys(h, now, v.seed0, v.seed1, keyScratch(HEAT_KEY_BYTES));
    const counters: CounterCount[] = [];
    for (const cell of counterCells(v)) {
      const window = counterWindow(v.counters32, v.counters64, cell, C.OPS_I64, now);
      if (window !== undefined) counters.push({ name: counterName(v, cell), ...window });
    }
    return { keys, nodes: readNodes(h, now), counters };
  }

  /**
   * Add `delta` to the counter `name`, creating it if needed. `delta` is a non-zero
   * safe integer with |delta| ≤ 2^40.
   */
  addCounter(name: string, delta: number): void {
    this.addCounterTicket(name, delta);
  }

  /** addCounter, returning which add this was: wait for its flush with waitCounterAck. */
  addCounterTicket(name: string, delta: number): CounterTicket {
    if (this.#closed) throw new L1Error('HS_ERR_L1_CLOSED', 'this L1Table is closed');
    if (!Number.isSafeInteger(delta) || delta === 0 || Math.abs(delta) > MAX_COUNTER_DELTA) {
      throw new L1Error(
        'HS_ERR_COUNTER_DELTA',
        `counter delta must be a non-zero integer with |delta| <= 2^40 (got ${delta})`,
      );
    }
    let cell = this.#counterCells.get(name);
    if (cell === undefined) {
      const len = encodeKey(name, this.#scratch, MAX_COUNTER_NAME_BYTES, 'counter name');
      cell = findOrCreateCounter(this.#v, this.#scratch, len, this.#clock.now());
      if (this.#counterCells.size < this.#layout.maxCounters) this.#counterCells.set(name, cell);
    }
    const op = addToCounter(this.#v, cell, delta);
    bump(this.#reg, this.#line + R.COUNTER_ADDS);
    return { cell, op };
  }

  /** True once the add behind `ticket` is acknowledged by Redis; false after `timeoutMs`. */
  waitCounterAck(ticket: CounterTicket, timeoutMs: number): Promise<boolean> {
    return waitForAck(this.#v, ticket.cell, ticket.op, timeoutMs);
  }

  /** Everything ever added to counter `name` in this table (0n if it does not exist). */
  counterAdded(name: string): bigint {
    const len = encodeKey(name, this.#scratch, MAX_COUNTER_NAME_BYTES, 'counter name');
    let sum = 0n;
    for (const cell of cellsNamed(this.#v, this.#scratch, len)) sum += addedTo(this.#v, cell);
    return sum;
  }

  /** The not-yet-acknowledged part of counter `name`: added minus acknowledged by Redis. */
  pendingCounter(name: string): bigint {
    const len = encodeKey(name, this.#scratch, MAX_COUNTER_NAME_BYTES, 'counter name');
    let sum = 0n;
    for (const cell of cellsNamed(this.#v, this.#scratch, len)) {
      const st = counterState(this.#v, cell);
      sum += st.added - st.ackedUpTo;
    }
    return sum;
  }

  /** Table-wide statistics, summed over every thread; readable from any thread. */
  stats(): L1Stats {
    const v = this.#v;
    const out = {} as L1Stats;
    for (const name of READER_STAT_NAMES) {
      let sum = 0;
      for (let i = 0; i < this.#layout.maxThreads; i++) {
        sum += readCount(v.registry, i * REGISTRY_LINE_WORDS + READER_STAT_WORD[name]);
      }
      out[name] = sum;
    }
    for (const name of WRITER_STAT_NAMES) out[name] = readCount(v.header, WS[name]);
    out.entries = v.header[H.LIVE_ENTRIES];
    out.bytesUsed = committedBytesUsed(v);
    out.counters = 0;
    let unflushed = 0n;
    for (const cell of counterCells(v)) {
      const st = counterState(v, cell);
      out.counters++;
      unflushed += st.added - st.ackedUpTo;
    }
    out.counterUnflushed = Number(unflushed);
    out.budgetBytes = this.#layout.budgetBytes;
    out.totalBytes = this.#layout.totalBytes;
    out.slotCount = this.#layout.slotCount;
    out.maxLiveEntries = this.#layout.maxLiveEntries;
    return out;
  }

  /** Detach this thread (idempotent); the thread's statistics stay in the totals. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    releaseLine(this.#v, this.#line);
  }
}
