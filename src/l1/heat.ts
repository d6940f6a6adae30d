/**
 * Hot-key detection in shared memory, the readers' side: every thread counts its reads
 * (hit, stale, miss) and writes here, with atomic adds and no lock; any thread reads the
 * hot set back. The keeper (heat-keeper.ts, the writer's thread) turns counts into
 * windows once a second, decays the sketch, evicts cold records and sets the bar.
 *
 * Two tiers, as in a Count-Min "cold filter" in front of exact counters:
 * - A key with a **record** (up to HEAT.RECORDS of them) has exact counts per kind from
 *   the moment it got it. A record is found through a dense tag array (one cache line
 *   for a key's whole probe window), so a hot key's event is a few loads and one add.
 * - Any other key adds to a **sketch** (Count-Min, 2 rows, halved every keeper tick).
 *   Once its estimate reaches the bar (HW.ADMIT) the thread claims an empty record for
 *   it: EMPTY → CLAIMING by compare-exchange, key and metadata written, counts zeroed,
 *   READY by compare-exchange, then the tag published. A claimer that dies mid-claim
 *   leaves a CLAIMING record, which the keeper frees two ticks later; one that was only
 *   slow finds its READY exchange failing and stops there.
 *
 * Error bounds: a record's counts are exact from its claim on (events before it, while
 * the key was in the sketch, are not in its rate: under the bar's worth); a sketch
 * estimate only ever overstates (collisions), which can admit a cold key, never keep a
 * hot one out. Two threads may claim the same key at once: the keeper keeps one. An add
 * that races a record's eviction can land on the record's next key (one add, rarely).
 * Nothing here can tear a value: counts are single words moved by atomics, keys are
 * written before READY and re-checked against their hash when read.
 *
 * Every event also adds to its Redis master's row (slot → node, published by the
 * keeper from the cluster's slot map), which is what makes a hot master visible
 * whatever its keys' heat.
 */

import { halfSipHash } from './hash.ts';
import type { KeyBytes } from './key-bytes.ts';
import {
  C_HEAT,
  COUNTER_CELL_BYTES,
  HEAT,
  HEAT_KEY_BYTES,
  HEAT_KIND,
  HEAT_KINDS,
  HEAT_NODE_NAME_BYTES,
  type HeatKind,
  HN,
  HR,
  HR_KEY_BYTE,
  HW,
  RECORD_STATE,
} from './layout.ts';
import type { HeatViews } from './views.ts';

export const RECORD_WORDS = HEAT.RECORD_BYTES / 4;
export const NODE_WORDS = HEAT.NODE_BYTES / 4;
const RECORD_MASK = HEAT.RECORDS - 1;
const SKETCH_MASK = HEAT.SKETCH_WIDTH - 1;
const SKETCH_SHIFT = 32 - Math.log2(HEAT.SKETCH_WIDTH);

/** The window rates are computed over: the last WINDOW_MS (to WINDOW_MS + one tick). */
export const HEAT_WINDOW_MS = 10_000;
/** The bar before any keeper has run, and its floor: a sketch estimate of this many events. */
export const ADMIT_FLOOR = 8;

/** A record's tag: its key's hash, never 0 (0 is "no record here"). */
export const tagOf = (hash: number): number => hash | 1;
/** Where a key's probe window of records starts (bits the sketch rows do not use first). */
export const recordBase = (hash: number): number => (hash >>> 13) & RECORD_MASK;
export const recordAt = (base: number, i: number): number => (base + i) & RECORD_MASK;
const sketchIndex0 = (hash: number): number => hash & SKETCH_MASK;
const sketchIndex1 = (hash: number): number =>
  HEAT.SKETCH_WIDTH + (Math.imul(hash, 0x9e3779b1) >>> SKETCH_SHIFT);

export const stateOf = (word: number): number => word & 3;
/** The EMPTY word of the next generation: what the keeper stores when it frees a record. */
export const nextEmpty = (word: number): number => ((word >>> 2) + 1) << 2;

/** The record holding `hash`'s key, or -1. */
export function findRecord(h: HeatViews, hash: number): number {
  const tag = tagOf(hash);
  const base = recordBase(hash);
  for (let i = 0; i < HEAT.PROBE; i++) {
    const r = recordAt(base, i);
    if (Atomics.load(h.tags, r) === tag) return r;
  }
  return -1;
}

/**
 * One event to count: `n` of `kind` for the key in `key` (its first `len` bytes; `hash`
 * is its table hash) whose Redis Cluster slot is `slot`, at `nowMs` on the table clock.
 * A thread fills one and reuses it: counting allocates nothing.
 */
export interface HeatEvent {
  key: KeyBytes;
  len: number;
  hash: number;
  slot: number;
  kind: HeatKind;
  n: number;
  nowMs: number;
}

/** The table's heat views and hash seeds. */
export interface HeatTable {
  readonly heat: HeatViews;
  readonly seed0: number;
  readonly seed1: number;
}

/** Count one event (see HeatEvent). */
export function recordHeat(t: HeatTable, e: HeatEvent): void {
  const h = t.heat;
  const { hash, n, kind } = e;
  if (kind !== HEAT_KIND.WRITE) {
    const row = h.slotMap[e.slot & (HEAT.SLOTS - 1)] * NODE_WORDS;
    Atomics.add(h.nodes, row + HN.READS, n);
    if (kind === HEAT_KIND.MISS) Atomics.add(h.nodes, row + HN.MISSES, n);
  }
  const r = findRecord(h, hash);
  if (r >= 0) {
    Atomics.add(h.records, r * RECORD_WORDS + HR.COUNTS + kind, n);
    return;
  }
  const a = Atomics.add(h.sketch, sketchIndex0(hash), n) + n;
  const b = Atomics.add(h.sketch, sketchIndex1(hash), n) + n;
  if (Math.min(a, b) >= Atomics.load(h.header, HW.ADMIT)) claimRecord(t, e);
}

function claimRecord(t: HeatTable, e: HeatEvent): void {
  const h = t.heat;
  const { key, len, hash, slot, kind, n, nowMs } = e;
  const rec = h.records;
  const base = recordBase(hash);
  for (let i = 0; i < HEAT.PROBE; i++) {
    const r = recordAt(base, i);
    const w = r * RECORD_WORDS;
    const st = Atomics.load(rec, w + HR.STATE);
    if (stateOf(st) !== RECORD_STATE.EMPTY) continue;
    const claiming = st | RECORD_STATE.CLAIMING;
    if (Atomics.compareExchange(rec, w + HR.STATE, st, claiming) !== st) continue;
    const stored = Math.min(len, HEAT_KEY_BYTES);
    rec[w + HR.HASH] = hash;
    rec[w + HR.KEY_LEN] = len;
    rec[w + HR.STORED_LEN] = stored;
    rec[w + HR.SLOT] = slot;
    rec[w + HR.CLAIMED_AT] = nowMs | 0;
    rec[w + HR.STORED_HASH] = stored === len ? hash : halfSipHash(key, stored, t.seed0, t.seed1);
    h.recordsU8.set(key.bytes.subarray(0, stored), r * HEAT.RECORD_BYTES + HR_KEY_BYTE);
    // The claim is its window's start: counts from zero, at the claim.
    rec[w + HR.FLIP] = 0;
    for (let k = 0; k < HEAT_KINDS; k++) rec[w + HR.BASE + k] = 0;
    rec[w + HR.BASE + HEAT_KINDS] = nowMs | 0;
    for (let k = 0; k < HEAT_KINDS; k++) Atomics.store(rec, w + HR.COUNTS + k, 0);
    Atomics.add(rec, w + HR.COUNTS + kind, n);
    // publish: pairs with the Atomics.load of STATE by the keeper and by readHotKeys.
    const ready = st | RECORD_STATE.READY;
    if (Atomics.compareExchange(rec, w + HR.STATE, claiming, ready) !== claiming) return;
    const tag = tagOf(hash);
    Atomics.store(h.tags, r, tag);
    // The keeper may have freed the record between the exchange and the tag (a duplicate
    // claim): a tag left on a freed record would send the key's events nowhere. (The
    // keeper also clears tags of records that are not READY, for a claimer that died here.)
    if (Atomics.load(rec, w + HR.STATE) !== ready) Atomics.compareExchange(h.tags, r, tag, 0);
    return;
  }
}

/** One key of the hot set, as counted by this process over the window. */
export interface HotKeyCount {
  key: string;
  /** The key was longer than a record keeps (HEAT_KEY_BYTES): `key` is its first bytes. */
  truncated: boolean;
  slot: number;
  /** The Redis master owning the slot (`host:port`), if known. */
  node: string | undefined;
  hits: number;
  stale: number;
  misses: number;
  writes: number;
  /** The window these counts cover, in ms. */
  windowMs: number;
}

export interface NodeCount {
  node: string;
  reads: number;
  misses: number;
  windowMs: number;
}

export interface CounterCount {
  name: string;
  increments: number;
  windowMs: number;
}

/** Bytes of a record's key, if still the ones its claimer wrote (else undefined). */
export function recordKey(
  h: HeatViews,
  r: number,
  seed0: number,
  seed1: number,
  scratch: KeyBytes,
): { key: string; truncated: boolean } | undefined {
  const w = r * RECORD_WORDS;
  const stored = h.records[w + HR.STORED_LEN];
  if (stored < 0 || stored > HEAT_KEY_BYTES) return undefined;
  const at = r * HEAT.RECORD_BYTES + HR_KEY_BYTE;
  scratch.bytes.set(h.recordsU8.subarray(at, at + stored));
  if (halfSipHash(scratch, stored, seed0, seed1) !== h.records[w + HR.STORED_HASH] >>> 0)
    return undefined;
  return {
    key: Buffer.from(scratch.bytes.buffer, 0, stored).toString('utf8'),
    truncated: h.records[w + HR.KEY_LEN] > stored,
  };
}

/** The window base a keeper published in `words` at `at` (two sets of `size`, flipped). */
function baseOf(words: Int32Array, flipAt: number, at: number, size: number): number {
  return at + (Atomics.load(words, flipAt) & 1) * size;
}

/**
 * Milliseconds from a table-clock stamp (mod 2^32) to now; 0 for a stamp a little ahead
 * (another thread's clock reading, or one taken after `nowMs` was read).
 */
export function msSince(nowMs: number, stamp: number): number {
  return Math.max(0, ((nowMs | 0) - stamp) | 0);
}

/** The name of node row `row`, or undefined while the keeper rewrites it (or never wrote it). */
export function nodeName(h: HeatViews, row: number): string | undefined {
  const w = row * NODE_WORDS;
  const seq = Atomics.load(h.nodes, w + HN.SEQ);
  if (seq === 0 || (seq & 1) === 1) return undefined;
  const len = Atomics.load(h.nodes, w + HN.NAME_LEN);
  if (len < 0 || len > HEAT_NODE_NAME_BYTES) return undefined;
  const words = new Int32Array(Math.ceil(len / 4));
  for (let i = 0; i < words.length; i++) words[i] = Atomics.load(h.nodes, w + HN.NAME_WORD + i);
  if (Atomics.load(h.nodes, w + HN.SEQ) !== seq) return undefined;
  return Buffer.from(words.buffer, 0, len).toString('utf8');
}

/** Every READY record's counts over its window (any thread; allocates: for reports). */
export function readHotKeys(
  h: HeatViews,
  nowMs: number,
  seed0: number,
  seed1: number,
  scratch: KeyBytes,
): HotKeyCount[] {
  const out: HotKeyCount[] = [];
  const names = new Map<number, string | undefined>();
  const rec = h.records;
  for (let r = 0; r < HEAT.RECORDS; r++) {
    const w = r * RECORD_WORDS;
    const st = Atomics.load(rec, w + HR.STATE);
    if (stateOf(st) !== RECORD_STATE.READY) continue;
    const named = recordKey(h, r, seed0, seed1, scratch);
    const b = baseOf(rec, w + HR.FLIP, w + HR.BASE, HEAT_KINDS + 1);
    const counts = [0, 0, 0, 0];
    // Counts under the base (zeroed by a late claimer until the keeper's next tick): 0.
    for (let k = 0; k < HEAT_KINDS; k++)
      counts[k] = Math.max(
        0,
        (Atomics.load(rec, w + HR.COUNTS + k) - Atomics.load(rec, b + k)) | 0,
      );
    const windowMs = msSince(nowMs, Atomics.load(rec, b + HEAT_KINDS));
    if (named === undefined || Atomics.load(rec, w + HR.STATE) !== st) continue;
    const slot = rec[w + HR.SLOT];
    const row = h.slotMap[slot & (HEAT.SLOTS - 1)];
    if (!names.has(row)) names.set(row, row === 0 ? undefined : nodeName(h, row));
    out.push({
      key: named.key,
      truncated: named.truncated,
      slot,
      node: names.get(row),
      hits: counts[HEAT_KIND.HIT],
      stale: counts[HEAT_KIND.STALE],
      misses: counts[HEAT_KIND.MISS],
      writes: counts[HEAT_KIND.WRITE],
      windowMs,
    });
  }
  return out;
}

/** Every named node row's reads and misses over its window. */
export function readNodes(h: HeatViews, nowMs: number): NodeCount[] {
  const out: NodeCount[] = [];
  for (let row = 1; row < HEAT.NODES; row++) {
    const w = row * NODE_WORDS;
    const seq = Atomics.load(h.nodes, w + HN.SEQ);
    const name = nodeName(h, row);
    if (name === undefined) continue;
    const b = baseOf(h.nodes, w + HN.FLIP, w + HN.BASE, 3);
    const count = {
      node: name,
      reads: (Atomics.load(h.nodes, w + HN.READS) - Atomics.load(h.nodes, b)) >>> 0,
      misses: (Atomics.load(h.nodes, w + HN.MISSES) - Atomics.load(h.nodes, b + 1)) >>> 0,
      windowMs: msSince(nowMs, Atomics.load(h.nodes, b + 2)),
    };
    // Renamed meanwhile: these counts may be the new name's or the old one's.
    if (Atomics.load(h.nodes, w + HN.SEQ) === seq) out.push(count);
  }
  return out;
}

/**
 * A counter cell's increments (adds) over the window the keeper published for it, or
 * undefined for a cell made before any window. A window may be 0 ms long (made, ticked
 * and read in one millisecond): readers floor it when they make a rate.
 */
export function counterWindow(
  counters32: Int32Array,
  counters64: BigInt64Array,
  cell: number,
  opsI64: number,
  nowMs: number,
): { increments: number; windowMs: number } | undefined {
  const w = cell * (COUNTER_CELL_BYTES / 4);
  const i = cell * (COUNTER_CELL_BYTES / 8);
  // 0: a cell made before any window (not by this code's creators); none to speak of.
  const flip = Atomics.load(counters32, w + C_HEAT.FLIP_WORD);
  if (flip === 0) return undefined;
  const s = flip & 1;
  const at = Atomics.load(counters32, w + C_HEAT.BASE_AT_WORD[s]);
  const ops =
    Atomics.load(counters64, i + opsI64) - Atomics.load(counters64, i + C_HEAT.BASE_OPS_I64[s]);
  return { increments: Number(ops), windowMs: msSince(nowMs, at) };
}
