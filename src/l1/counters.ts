/**
 * Named counter cells: any thread finds or creates a counter by name and adds to it
 * with `Atomics.add`; the flusher drains every cell by swapping its delta to 0
 * (`Atomics.exchange`). An add lands either before the swap (drained now) or after it
 * (drained next time): never lost, never counted twice.
 *
 * Cells are created by whichever thread names the counter first, so creation is
 * multi-writer: a cell goes EMPTY → CLAIMING by compare-exchange, the claimer writes
 * hash and name, then stores READY. A thread that meets a CLAIMING cell waits briefly
 * for it to become READY; if its claimer died there, the cell is skipped for good (one
 * cell lost, nothing wedged). Should two cells ever hold the same name (a claimer that
 * was only slow), both are drained and their deltas summed by name, so totals stay exact.
 *
 * Cells are never freed in this version: the table is bounded by maxCounters and a full
 * table is a typed error.
 */

import { L1Error } from './errors.ts';
import { halfSipHash } from './hash.ts';
import type { KeyBytes } from './key-bytes.ts';
import { C, COUNTER_CELL_BYTES, COUNTER_MAX_PROBE, COUNTER_STATE } from './layout.ts';
import type { Views } from './views.ts';

const CELL_WORDS = COUNTER_CELL_BYTES / 4;
const CELL_I64 = COUNTER_CELL_BYTES / 8;
const CLAIM_WAIT_MS = 5;

/** Largest |delta| one add may carry: keeps every sum exact in a JS number. */
export const MAX_COUNTER_DELTA = 2 ** 40;

function nameMatches(v: Views, cell: number, name: KeyBytes, len: number): boolean {
  if (v.counters32[cell * CELL_WORDS + C.NAME_LEN_WORD] !== len) return false;
  const at = cell * COUNTER_CELL_BYTES + C.NAME_BYTE;
  const u8 = v.countersU8;
  const bytes = name.bytes;
  for (let i = 0; i < len; i++) if (u8[at + i] !== bytes[i]) return false;
  return true;
}

function waitWhileClaiming(v: Views, stateIdx: number): number {
  const start = performance.now();
  let st = Atomics.load(v.counters32, stateIdx);
  while (st === COUNTER_STATE.CLAIMING && performance.now() - start < CLAIM_WAIT_MS) {
    st = Atomics.load(v.counters32, stateIdx);
  }
  return st;
}

/** Find the cell of `name` (its first `len` bytes, at most MAX_COUNTER_NAME_BYTES), creating it if absent. */
export function findOrCreateCounter(v: Views, name: KeyBytes, len: number): number {
  const c32 = v.counters32;
  const mask = v.layout.maxCounters - 1;
  // Stored and compared as a signed word: the cells are an Int32Array.
  const hash = halfSipHash(name, len, v.seed0, v.seed1) | 0;
  let cell = hash & mask;
  for (let p = 0; p < COUNTER_MAX_PROBE; p++, cell = (cell + 1) & mask) {
    const stateIdx = cell * CELL_WORDS + C.STATE_WORD;
    let st = Atomics.load(c32, stateIdx);
    if (st === COUNTER_STATE.EMPTY) {
      // claim: pairs with the Atomics.load of the state above in other creators.
      st = Atomics.compareExchange(c32, stateIdx, COUNTER_STATE.EMPTY, COUNTER_STATE.CLAIMING);
      if (st === COUNTER_STATE.EMPTY) {
        c32[cell * CELL_WORDS + C.HASH_WORD] = hash;
        c32[cell * CELL_WORDS + C.NAME_LEN_WORD] = len;
        v.countersU8.set(name.bytes.subarray(0, len), cell * COUNTER_CELL_BYTES + C.NAME_BYTE);
        Atomics.store(v.counters64, cell * CELL_I64 + C.DELTA_I64, 0n);
        // publish: pairs with the Atomics.load of READY by finders and by drain.
        Atomics.store(c32, stateIdx, COUNTER_STATE.READY);
        return cell;
      }
    }
    if (st === COUNTER_STATE.CLAIMING) st = waitWhileClaiming(v, stateIdx);
    if (
      st === COUNTER_STATE.READY &&
      c32[cell * CELL_WORDS + C.HASH_WORD] === hash &&
      nameMatches(v, cell, name, len)
    ) {
      return cell;
    }
  }
  throw new L1Error(
    'HS_ERR_COUNTER_TABLE_FULL',
    `no free counter cell within ${COUNTER_MAX_PROBE} probes; raise the maxCounters option`,
  );
}

export function addToCounter(v: Views, cell: number, delta: number): void {
  Atomics.add(v.counters64, cell * CELL_I64 + C.DELTA_I64, BigInt(delta));
}

/** Read a counter's pending (undrained) delta without taking it. */
export function peekCounter(v: Views, cell: number): number {
  return Number(Atomics.load(v.counters64, cell * CELL_I64 + C.DELTA_I64));
}

export function counterName(v: Views, cell: number): string {
  const len = v.counters32[cell * CELL_WORDS + C.NAME_LEN_WORD];
  const at = cell * COUNTER_CELL_BYTES + C.NAME_BYTE;
  return Buffer.from(v.countersU8.buffer, v.countersU8.byteOffset + at, len).toString('utf8');
}

/** Take every non-zero delta (swap to 0), summed per name. */
export function drainCounters(v: Views): Map<string, number> {
  const out = new Map<string, number>();
  const c32 = v.counters32;
  for (let cell = 0; cell < v.layout.maxCounters; cell++) {
    if (Atomics.load(c32, cell * CELL_WORDS + C.STATE_WORD) !== COUNTER_STATE.READY) continue;
    // take: pairs with every Atomics.add on this cell; each add is in exactly one swap.
    const delta = Number(Atomics.exchange(v.counters64, cell * CELL_I64 + C.DELTA_I64, 0n));
    if (delta === 0) continue;
    const name = counterName(v, cell);
    out.set(name, (out.get(name) ?? 0) + delta);
  }
  return out;
}

/** Pending delta of `name` across all its cells, without taking it. */
export function pendingFor(v: Views, name: KeyBytes, len: number): number {
  const c32 = v.counters32;
  const mask = v.layout.maxCounters - 1;
  // Stored and compared as a signed word: the cells are an Int32Array.
  const hash = halfSipHash(name, len, v.seed0, v.seed1) | 0;
  let total = 0;
  let cell = hash & mask;
  for (let p = 0; p < COUNTER_MAX_PROBE; p++, cell = (cell + 1) & mask) {
    const st = Atomics.load(c32, cell * CELL_WORDS + C.STATE_WORD);
    if (st === COUNTER_STATE.EMPTY) break;
    if (
      st === COUNTER_STATE.READY &&
      c32[cell * CELL_WORDS + C.HASH_WORD] === hash &&
      nameMatches(v, cell, name, len)
    ) {
      total += peekCounter(v, cell);
    }
  }
  return total;
}

export function countCounters(v: Views): number {
  let n = 0;
  for (let cell = 0; cell < v.layout.maxCounters; cell++) {
    if (Atomics.load(v.counters32, cell * CELL_WORDS + C.STATE_WORD) === COUNTER_STATE.READY) n++;
  }
  return n;
}
