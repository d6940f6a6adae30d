/**
 * The keeper of the heat region (heat.ts): run once a second by the one writer thread.
 * Readers only add; everything that needs a decision or a history happens here:
 *
 * - **Windows.** It snapshots every record's, node's and counter's cumulative counts,
 *   keeps the snapshots of the last HEAT_WINDOW_MS, and publishes the oldest as the
 *   window's base (two base sets flipped by one word, so a reader never mixes two), so
 *   any thread computes rates over the last 10–11 s from live counts.
 * - **The hot set.** Records idle for a whole window are freed; past 75 % occupancy the
 *   coldest go until 60 % is left (a record younger than a tick is spared: its rate is
 *   not known yet); a key claimed twice keeps its busier record. A record whose key
 *   bytes no longer hash to what was claimed (a claimer that died or stalled mid-claim
 *   overwrote them) is freed. CLAIMING records seen two ticks running are freed too.
 * - **The bar.** A key needs a sketch estimate of HW.ADMIT events to get a record: the
 *   floor while records are plentiful, else the rate of the record ranked at half the
 *   table, and always above the sketch's own noise. The sketch is halved every tick,
 *   so an estimate is roughly the last second or two of a key's events.
 * - **Where the heat lands.** Given the cluster's slot owners, it names node rows and
 *   writes the slot → node map readers attribute their events with.
 *
 * A keeper that restarts (a respawned refresher) starts its history from the bases in
 * shared memory, so the published windows carry on.
 */

import { counterCells } from './counters.ts';
import {
  ADMIT_FLOOR,
  HEAT_WINDOW_MS,
  msSince,
  NODE_WORDS,
  nextEmpty,
  RECORD_WORDS,
  recordKey,
  stateOf,
  tagOf,
} from './heat.ts';
import { keyScratch } from './key-bytes.ts';
import {
  C,
  C_HEAT,
  COUNTER_CELL_BYTES,
  HEAT,
  HEAT_KEY_BYTES,
  HEAT_KINDS,
  HEAT_NODE_NAME_BYTES,
  HN,
  HR,
  HW,
  RECORD_STATE,
} from './layout.ts';
import type { HeatViews, Views } from './views.ts';

/** Snapshot: table-clock ms (mod 2^32) then the cumulative counts. */
type Snap = number[];

/** A record kept this tick: its rate (events a second) and its events over the window. */
interface Kept {
  readonly rate: number;
  readonly events: number;
}

interface Tracked {
  /** The record's STATE word when this history began: a new claim is a new history. */
  readonly state: number;
  readonly snaps: Snap[];
}

const HIGH_WATER = Math.floor(HEAT.RECORDS * 0.75);
const LOW_WATER = Math.floor(HEAT.RECORDS * 0.6);
/** Events a second: a record's rate over its window. */
/** Over at least a second: a record claimed 5 ms before a tick with a batch of 1,000 is not at 200,000/s. */
const perSecond = (events: number, ms: number): number => (events * 1000) / Math.max(ms, 1000);

/** Who owns each Redis Cluster slot: an array of 16384 `host:port` (or undefined), or one name for all. */
export type SlotOwners = ReadonlyArray<string | undefined> | string;

/** Keep snapshots so that the first is the newest one at least a window old. */
function trim(snaps: Snap[], nowMs: number): void {
  while (snaps.length > 1 && msSince(nowMs, snaps[1][0]) >= HEAT_WINDOW_MS) snaps.shift();
}

/** Write `values` into the inactive base set at `base` (sets of `size` words) and flip to it. */
function publish(
  words: Int32Array,
  flipAt: number,
  base: number,
  size: number,
  values: Snap,
): void {
  const flip = Atomics.load(words, flipAt);
  const set = base + ((flip + 1) & 1) * size;
  // Bases are stored counts first, stamp last: the order a reader of `values` expects.
  for (let i = 1; i < values.length; i++) Atomics.store(words, set + i - 1, values[i]);
  Atomics.store(words, set + size - 1, values[0]);
  Atomics.store(words, flipAt, flip + 1);
}

/** The base set a reader would use now, as a snapshot. */
function publishedBase(words: Int32Array, flipAt: number, base: number, size: number): Snap {
  const set = base + (Atomics.load(words, flipAt) & 1) * size;
  const counts: number[] = [];
  for (let i = 0; i < size - 1; i++) counts.push(Atomics.load(words, set + i));
  return [Atomics.load(words, set + size - 1), ...counts];
}

export class HeatKeeper {
  readonly #v: Views;
  readonly #h: HeatViews;
  readonly #scratch = keyScratch(HEAT_KEY_BYTES);
  readonly #records = new Map<number, Tracked>();
  readonly #claiming = new Map<number, number>();
  readonly #nodes = new Map<number, Snap[]>();
  readonly #counters = new Map<number, Snap[]>();
  /** Node rows by name (row 0: slots of no known owner). */
  readonly #rows = new Map<string, number>();

  constructor(v: Views, h: HeatViews) {
    this.#v = v;
    this.#h = h;
    for (let row = 1; row < HEAT.NODES; row++) {
      // An odd seq: a keeper died renaming the row; it is free for the next name.
      if ((Atomics.load(h.nodes, row * NODE_WORDS + HN.SEQ) & 1) === 1) continue;
      const name = this.#rowName(row);
      if (name !== undefined) this.#rows.set(name, row);
    }
  }

  /** One round (about once a second); `owners`, when known, maps slots to masters. */
  tick(nowMs: number, owners?: SlotOwners): void {
    const now = nowMs | 0;
    if (owners !== undefined) this.#mapSlots(owners, now);
    const kept = this.#windows(now);
    this.#prune(kept, now);
    this.#setBar(kept);
    this.#decaySketch();
    this.#nodeWindows(now);
    this.#counterWindows(now);
    Atomics.add(this.#h.header, HW.TICKS, 1);
  }

  /**
   * Publish every READY record's window; returns the records kept, with their rate
   * (events a second over at least a second) and their events in the window.
   */
  #windows(now: number): Map<number, Kept> {
    const rec = this.#h.records;
    const tags = this.#h.tags;
    const kept = new Map<number, Kept>();
    for (let r = 0; r < HEAT.RECORDS; r++) {
      const w = r * RECORD_WORDS;
      const tag = Atomics.load(tags, r);
      const st = Atomics.load(rec, w + HR.STATE);
      const state = stateOf(st);
      if (state !== RECORD_STATE.READY) {
        this.#records.delete(r);
        // A tag on a record that is not READY is a leftover (a claimer that died between
        // its tag and its re-check): it would send that key's events nowhere.
        if (tag !== 0) Atomics.compareExchange(tags, r, tag, 0);
      }
      if (state !== RECORD_STATE.CLAIMING) this.#claiming.delete(r);
      if (state === RECORD_STATE.CLAIMING) {
        // Seen claiming a tick ago too: its claimer died (or stalls) mid-claim.
        if (this.#claiming.get(r) === st) {
          Atomics.compareExchange(rec, w + HR.STATE, st, nextEmpty(st));
          this.#claiming.delete(r);
        } else this.#claiming.set(r, st);
        continue;
      }
      if (state !== RECORD_STATE.READY) continue;
      // Checked every tick, not only when first seen: a stalled claimer's late writes can
      // land on a record claimed since (its key, or its counts zeroed under the base).
      const seed = this.#v;
      const intact =
        (tag === 0 || tag === tagOf(rec[w + HR.HASH])) &&
        recordKey(this.#h, r, seed.seed0, seed.seed1, this.#scratch) !== undefined;
      if (!intact) {
        this.#free(r, st);
        continue;
      }
      let tracked = this.#records.get(r);
      if (tracked === undefined || tracked.state !== st) {
        tracked = {
          state: st,
          snaps: [publishedBase(rec, w + HR.FLIP, w + HR.BASE, HEAT_KINDS + 1)],
        };
        this.#records.set(r, tracked);
      }
      const snap: Snap = [now];
      for (let k = 0; k < HEAT_KINDS; k++) snap.push(Atomics.load(rec, w + HR.COUNTS + k));
      tracked.snaps.push(snap);
      trim(tracked.snaps, now);
      const base = tracked.snaps[0];
      let events = 0;
      let backwards = false;
      for (let k = 1; k <= HEAT_KINDS; k++) {
        const d = (snap[k] - base[k]) | 0;
        if (d < 0) backwards = true;
        events += d;
      }
      // Counts under the base: zeroed by a late claimer; the window starts again here.
      if (backwards) {
        tracked.snaps.splice(0, tracked.snaps.length, snap);
        publish(rec, w + HR.FLIP, w + HR.BASE, HEAT_KINDS + 1, snap);
        kept.set(r, { rate: 0, events: 0 });
        continue;
      }
      publish(rec, w + HR.FLIP, w + HR.BASE, HEAT_KINDS + 1, base);
      const ms = msSince(now, base[0]);
      // Idle for a whole window: nothing to show, room for another key.
      if (events === 0 && ms >= HEAT_WINDOW_MS) {
        this.#free(r, st);
        continue;
      }
      kept.set(r, { rate: perSecond(events, ms), events });
    }
    return kept;
  }

  /** Duplicates keep the record with more events; past the high water the coldest go. */
  #prune(kept: Map<number, Kept>, now: number): void {
    const rec = this.#h.records;
    const byHash = new Map<number, number>();
    for (const [r, k] of kept) {
      const hash = rec[r * RECORD_WORDS + HR.HASH];
      const other = byHash.get(hash);
      if (other === undefined) {
        byHash.set(hash, r);
        continue;
      }
      const loser = (kept.get(other)?.events ?? 0) >= k.events ? r : other;
      if (loser === other) byHash.set(hash, r);
      this.#free(loser, Atomics.load(rec, loser * RECORD_WORDS + HR.STATE));
      kept.delete(loser);
    }
    if (kept.size <= HIGH_WATER) return;
    // Ranked among all records, spared or not: a young record is kept, never a hot one lost for it.
    const ranked = [...kept].sort((a, b) => b[1].rate - a[1].rate);
    for (const [r] of ranked.slice(LOW_WATER)) {
      if (msSince(now, rec[r * RECORD_WORDS + HR.CLAIMED_AT]) < 1000) continue;
      this.#free(r, Atomics.load(rec, r * RECORD_WORDS + HR.STATE));
      kept.delete(r);
    }
  }

  #setBar(kept: Map<number, Kept>): void {
    const sketch = this.#h.sketch;
    let mass = 0;
    for (let i = 0; i < HEAT.SKETCH_WIDTH; i++) mass += sketch[i];
    // Twice a cell's average: a key that reaches it stands out of its row's collisions.
    let bar = Math.max(ADMIT_FLOOR, Math.ceil((2 * mass) / HEAT.SKETCH_WIDTH));
    if (kept.size >= HEAT.RECORDS / 2) {
      const sorted = [...kept.values()].map((k) => k.rate).sort((a, b) => b - a);
      bar = Math.max(bar, Math.ceil(sorted[Math.floor(HEAT.RECORDS / 2) - 1]));
    }
    Atomics.store(this.#h.header, HW.ADMIT, bar);
  }

  /** Halve every sketch cell (what readers add meanwhile is kept: a subtraction, not a store). */
  #decaySketch(): void {
    const sketch = this.#h.sketch;
    for (let i = 0; i < sketch.length; i++) {
      const c = Atomics.load(sketch, i);
      if (c !== 0) Atomics.sub(sketch, i, c - (c >> 1));
    }
  }

  /**
   * Free record `r` if it still holds `st`: untag (readers stop adding), then the next
   * generation's EMPTY. Its counts stay as they are: the next claimer zeroes them before
   * its first add, which a zeroing here could wipe. Should the record have changed since
   * `st` was read, the tag is put back.
   */
  #free(r: number, st: number): void {
    const rec = this.#h.records;
    const tags = this.#h.tags;
    this.#records.delete(r);
    const tag = Atomics.load(tags, r);
    if (tag !== 0) Atomics.compareExchange(tags, r, tag, 0);
    if (
      Atomics.compareExchange(rec, r * RECORD_WORDS + HR.STATE, st, nextEmpty(st)) !== st &&
      tag !== 0
    )
      Atomics.compareExchange(tags, r, 0, tag);
  }

  #rowName(row: number): string | undefined {
    const w = row * NODE_WORDS;
    const len = this.#h.nodes[w + HN.NAME_LEN];
    if (this.#h.nodes[w + HN.SEQ] === 0 || len <= 0 || len > HEAT_NODE_NAME_BYTES) return undefined;
    const at = row * HEAT.NODE_BYTES + HN.NAME_WORD * 4;
    return Buffer.from(this.#h.nodesU8.subarray(at, at + len)).toString('utf8');
  }

  /** Name rows for the owners (a new name takes a free row, or one no slot maps to) and map every slot. */
  #mapSlots(owners: SlotOwners, now: number): void {
    const names = new Set(
      typeof owners === 'string' ? [owners] : owners.filter((o) => o !== undefined),
    );
    for (const name of names) {
      if (this.#rows.has(name)) continue;
      const used = new Set(this.#rows.values());
      let row = -1;
      for (let i = 1; i < HEAT.NODES && row < 0; i++) if (!used.has(i)) row = i;
      if (row < 0) {
        const gone = [...this.#rows].find(([n]) => !names.has(n));
        if (gone === undefined) continue;
        this.#rows.delete(gone[0]);
        row = gone[1];
      }
      this.#nameRow(row, name, now);
      this.#rows.set(name, row);
    }
    const map = this.#h.slotMap;
    for (let slot = 0; slot < HEAT.SLOTS; slot++) {
      const owner = typeof owners === 'string' ? owners : owners[slot];
      const row = owner === undefined ? 0 : (this.#rows.get(owner) ?? 0);
      if (map[slot] !== row) Atomics.store(map, slot, row);
    }
  }

  /** Write `name` into `row` under its SEQ (odd while written), counts and window anew. */
  #nameRow(row: number, name: string, now: number): void {
    const nodes = this.#h.nodes;
    const w = row * NODE_WORDS;
    // Odd until the row is whole again (a new odd value even if a dead keeper left one).
    const odd = (Atomics.load(nodes, w + HN.SEQ) | 1) + 2;
    Atomics.store(nodes, w + HN.SEQ, odd);
    const bytes = Buffer.from(name, 'utf8').subarray(0, HEAT_NODE_NAME_BYTES);
    const words = new Int32Array(HEAT_NODE_NAME_BYTES / 4);
    new Uint8Array(words.buffer).set(bytes);
    for (let i = 0; i < words.length; i++) Atomics.store(nodes, w + HN.NAME_WORD + i, words[i]);
    Atomics.store(nodes, w + HN.NAME_LEN, bytes.length);
    Atomics.store(nodes, w + HN.READS, 0);
    Atomics.store(nodes, w + HN.MISSES, 0);
    this.#nodes.set(row, [[now, 0, 0]]);
    publish(nodes, w + HN.FLIP, w + HN.BASE, 3, [now, 0, 0]);
    Atomics.store(nodes, w + HN.SEQ, odd + 1);
  }

  #nodeWindows(now: number): void {
    const nodes = this.#h.nodes;
    for (const row of this.#rows.values()) {
      const w = row * NODE_WORDS;
      let snaps = this.#nodes.get(row);
      if (snaps === undefined) {
        snaps = [publishedBase(nodes, w + HN.FLIP, w + HN.BASE, 3)];
        this.#nodes.set(row, snaps);
      }
      snaps.push([now, Atomics.load(nodes, w + HN.READS), Atomics.load(nodes, w + HN.MISSES)]);
      trim(snaps, now);
      publish(nodes, w + HN.FLIP, w + HN.BASE, 3, snaps[0]);
    }
  }

  /** Counter cells: the same windows over their number of adds (kept in their spare bytes). */
  #counterWindows(now: number): void {
    const v = this.#v;
    const c32 = v.counters32;
    const c64 = v.counters64;
    const seen = new Set<number>();
    for (const cell of counterCells(v)) {
      seen.add(cell);
      const w = cell * (COUNTER_CELL_BYTES / 4);
      const i = cell * (COUNTER_CELL_BYTES / 8);
      const ops = Number(Atomics.load(c64, i + C.OPS_I64));
      let snaps = this.#counters.get(cell);
      if (snaps === undefined) {
        // Its creator's base, or the one an earlier keeper published.
        const s = Atomics.load(c32, w + C_HEAT.FLIP_WORD) & 1;
        snaps = [
          [
            Atomics.load(c32, w + C_HEAT.BASE_AT_WORD[s]),
            Number(Atomics.load(c64, i + C_HEAT.BASE_OPS_I64[s])),
          ],
        ];
        this.#counters.set(cell, snaps);
      }
      snaps.push([now, ops]);
      trim(snaps, now);
      const flip = Atomics.load(c32, w + C_HEAT.FLIP_WORD);
      const s = (flip + 1) & 1;
      Atomics.store(c64, i + C_HEAT.BASE_OPS_I64[s], BigInt(snaps[0][1]));
      Atomics.store(c32, w + C_HEAT.BASE_AT_WORD[s], snaps[0][0]);
      Atomics.store(c32, w + C_HEAT.FLIP_WORD, flip + 1);
    }
    for (const cell of this.#counters.keys()) if (!seen.has(cell)) this.#counters.delete(cell);
  }
}
