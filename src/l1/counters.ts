/**
 * Named counter cells: any thread finds or creates a counter by name and adds to it
 * with `Atomics.add`; one flusher (the refresher) moves what was added to Redis.
 *
 * Nothing is ever subtracted from a cell. Adders grow `added` and then `ops`; the
 * flusher snapshots them (ops first, so every add counted in the ops snapshot is in the
 * added snapshot), records the flush it is about to send in the cell (`beginFlush`),
 * and on Redis's acknowledgement moves `acked` up to it (`ackFlush`). The unflushed
 * amount is always `added − acked`: an add is never lost between a take and a send, and
 * a flusher that dies mid-flush leaves its pending record for its successor, which
 * re-sends the same (seq, amount) and lets Redis's dedupe decide (counters/flusher.ts).
 *
 * Cells are created by whichever thread names the counter first, so creation is
 * multi-writer: a cell goes EMPTY → CLAIMING by compare-exchange, the claimer writes
 * hash and name, then stores READY. A thread that meets a CLAIMING cell waits briefly
 * for it to become READY; if its claimer died there, the cell is skipped for good (one
 * cell lost, nothing wedged). Should two cells ever hold the same name (a claimer that
 * was only slow), each is flushed on its own and reads sum them, so totals stay exact.
 *
 * Cells are never freed in this version: the table is bounded by maxCounters and a full
 * table is a typed error.
 */

import { L1Error } from './errors.ts';
import { halfSipHash } from './hash.ts';
import type { KeyBytes } from './key-bytes.ts';
import { C, C_HEAT, COUNTER_CELL_BYTES, COUNTER_MAX_PROBE, COUNTER_STATE } from './layout.ts';
import type { Views } from './views.ts';

const CELL_WORDS = COUNTER_CELL_BYTES / 4;
const CELL_I64 = COUNTER_CELL_BYTES / 8;
const i64 = (cell: number, field: number): number => cell * CELL_I64 + field;
const CLAIM_WAIT_MS = 5;
/** A cell's rate window flip word at birth: even (base set 0, written by its creator), not 0 (none). */
export const COUNTER_BORN_FLIP = 2;

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
export function findOrCreateCounter(v: Views, name: KeyBytes, len: number, nowMs: number): number {
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
        // Its increment rate's first window starts here (heat.ts counterWindow).
        v.counters64[i64(cell, C_HEAT.BASE_OPS_I64[0])] = 0n;
        c32[cell * CELL_WORDS + C_HEAT.BASE_AT_WORD[0]] = nowMs | 0;
        c32[cell * CELL_WORDS + C_HEAT.FLIP_WORD] = COUNTER_BORN_FLIP;
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

/** Add `delta`; returns this add's number in the cell (1, 2, …), for waitForAck. */
export function addToCounter(v: Views, cell: number, delta: number): number {
  const c64 = v.counters64;
  Atomics.add(c64, i64(cell, C.ADDED_I64), BigInt(delta));
  // After the add: a flusher that sees this op number also sees the amount (see header).
  return Number(Atomics.add(c64, i64(cell, C.OPS_I64), 1n)) + 1;
}

export function counterName(v: Views, cell: number): string {
  const len = v.counters32[cell * CELL_WORDS + C.NAME_LEN_WORD];
  const at = cell * COUNTER_CELL_BYTES + C.NAME_BYTE;
  return Buffer.from(v.countersU8.buffer, v.countersU8.byteOffset + at, len).toString('utf8');
}

/** A flush recorded in a cell and not yet acknowledged. */
export interface PendingFlush {
  seq: bigint;
  shard: number;
  /** `added` as of this flush: it carries upTo − ackedUpTo. */
  upTo: bigint;
  ops: bigint;
}

/** A cell as the flusher sees it. */
export interface CounterState {
  cell: number;
  added: bigint;
  ops: bigint;
  ackedUpTo: bigint;
  ackedOps: bigint;
  pending: PendingFlush | undefined;
}

export function counterState(v: Views, cell: number): CounterState {
  const c64 = v.counters64;
  // ops before added: every add counted in `ops` is in `added` (addToCounter's order).
  const ops = Atomics.load(c64, i64(cell, C.OPS_I64));
  const added = Atomics.load(c64, i64(cell, C.ADDED_I64));
  const seq = Atomics.load(c64, i64(cell, C.PENDING_SEQ_I64));
  return {
    cell,
    added,
    ops,
    ackedUpTo: Atomics.load(c64, i64(cell, C.ACKED_UPTO_I64)),
    ackedOps: Atomics.load(c64, i64(cell, C.ACKED_OPS_I64)),
    pending:
      seq === 0n
        ? undefined
        : {
            seq,
            shard: Atomics.load(v.counters32, cell * CELL_WORDS + C.PENDING_SHARD_WORD),
            upTo: Atomics.load(c64, i64(cell, C.PENDING_UPTO_I64)),
            ops: Atomics.load(c64, i64(cell, C.PENDING_OPS_I64)),
          },
  };
}

/** Record the flush about to be sent; `seq` (> 0) is stored last, so a half record is none. */
export function beginFlush(v: Views, cell: number, flush: PendingFlush): void {
  const c64 = v.counters64;
  Atomics.store(v.counters32, cell * CELL_WORDS + C.PENDING_SHARD_WORD, flush.shard);
  Atomics.store(c64, i64(cell, C.PENDING_UPTO_I64), flush.upTo);
  Atomics.store(c64, i64(cell, C.PENDING_OPS_I64), flush.ops);
  Atomics.store(c64, i64(cell, C.PENDING_SEQ_I64), flush.seq);
}

/**
 * Redis has the pending flush: move `acked` up to it, then clear it, and wake callers
 * waiting for their adds to be flushed. In this order a flusher dying in between leaves
 * the record, whose re-send Redis answers as a duplicate: never counted twice.
 */
export function ackFlush(v: Views, cell: number): void {
  const c64 = v.counters64;
  settleCounter(
    v,
    cell,
    Atomics.load(c64, i64(cell, C.PENDING_UPTO_I64)),
    Atomics.load(c64, i64(cell, C.PENDING_OPS_I64)),
  );
  Atomics.store(c64, i64(cell, C.PENDING_SEQ_I64), 0n);
}

/** Mark everything up to (`upTo`, `ops`) as in Redis (an ack, or adds that summed to 0). */
export function settleCounter(v: Views, cell: number, upTo: bigint, ops: bigint): void {
  const c64 = v.counters64;
  Atomics.store(c64, i64(cell, C.ACKED_UPTO_I64), upTo);
  Atomics.store(c64, i64(cell, C.ACKED_OPS_I64), ops);
  Atomics.notify(c64, i64(cell, C.ACKED_OPS_I64));
}

/**
 * Resolves true once add number `op` of `cell` is acknowledged by Redis, false after
 * `timeoutMs`. Waits on the cell itself (Atomics.waitAsync), so it needs no message and
 * survives a flusher respawn.
 */
export async function waitForAck(
  v: Views,
  cell: number,
  op: number,
  timeoutMs: number,
): Promise<boolean> {
  const at = i64(cell, C.ACKED_OPS_I64);
  const target = BigInt(op);
  if (Atomics.load(v.counters64, at) >= target) return true;
  // Atomics.waitAsync does not keep the event loop alive: a thread with nothing else to
  // do would exit mid-wait. This timer does, for as long as the wait may last.
  const keepAlive = setTimeout(() => {}, timeoutMs);
  try {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const acked = Atomics.load(v.counters64, at);
      if (acked >= target) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      // In slices: a flusher killed between its ack and its notify delays a waiter 100 ms, not its whole timeout.
      const w = Atomics.waitAsync(v.counters64, at, acked, Math.min(left, 100));
      if (w.async) await w.value;
    }
  } finally {
    clearTimeout(keepAlive);
  }
}

/** The READY cells (several may share a name, see the header). */
export function counterCells(v: Views): number[] {
  const out: number[] = [];
  for (let cell = 0; cell < v.layout.maxCounters; cell++) {
    if (Atomics.load(v.counters32, cell * CELL_WORDS + C.STATE_WORD) === COUNTER_STATE.READY)
      out.push(cell);
  }
  return out;
}

/** Every READY cell holding `name`. */
export function cellsNamed(v: Views, name: KeyBytes, len: number): number[] {
  const c32 = v.counters32;
  const mask = v.layout.maxCounters - 1;
  // Stored and compared as a signed word: the cells are an Int32Array.
  const hash = halfSipHash(name, len, v.seed0, v.seed1) | 0;
  const out: number[] = [];
  let cell = hash & mask;
  for (let p = 0; p < COUNTER_MAX_PROBE; p++, cell = (cell + 1) & mask) {
    const st = Atomics.load(c32, cell * CELL_WORDS + C.STATE_WORD);
    if (st === COUNTER_STATE.EMPTY) break;
    if (
      st === COUNTER_STATE.READY &&
      c32[cell * CELL_WORDS + C.HASH_WORD] === hash &&
      nameMatches(v, cell, name, len)
    ) {
      out.push(cell);
    }
  }
  return out;
}

/** Everything ever added to `cell`. */
export function addedTo(v: Views, cell: number): bigint {
  return Atomics.load(v.counters64, i64(cell, C.ADDED_I64));
}
