/**
 * The single writer of cache entries (the refresher thread in the product). Owns every
 * structural change: insert, update, delete, clear, eviction (eviction.ts), expiry
 * sweeps, and the flusher's side of counter cells.
 *
 * Crash safety: the writer may be terminated between any two statements. An entry is
 * written and the ring head committed (arena.ts) before its pointer is published, and
 * entries are unlinked before the tail moves past them, so a new writer that takes over
 * (`takeover: true`) finds at worst unreachable garbage, never a reachable torn entry.
 */

import { threadId } from 'node:worker_threads';
import { allocate, entryHardExpiresAt, writeEntry } from './arena.ts';
import { SharedClock } from './clock.ts';
import {
  ackFlush,
  beginFlush,
  type CounterState,
  cellsNamed,
  counterCells,
  counterName,
  counterState,
  type PendingFlush,
  settleCounter,
} from './counters.ts';
import { bump } from './counts.ts';
import type { L1Handle } from './create.ts';
import { L1Error } from './errors.ts';
import { Eviction } from './eviction.ts';
import { halfSipHash } from './hash.ts';
import { HeatKeeper, type SlotOwners } from './heat-keeper.ts';
import {
  clearIndex,
  findSlotForWrite,
  offsetToPtr,
  type ProbeResult,
  ptrToOffset,
  publish,
  slotPtr,
  unlink,
} from './index-table.ts';
import { encodeKey, type KeyBytes, keyScratch } from './key-bytes.ts';
import { entryBytes, H, type Layout, MAX_COUNTER_NAME_BYTES, readLayout, WS } from './layout.ts';
import { GracePeriod } from './registry.ts';
import { clearStaleMark, setStaleMark, staleMark, versionsSince } from './stale-mark.ts';
import { makeViews, type Views } from './views.ts';

export interface L1SetOptions {
  /** Milliseconds until the entry should be refreshed (it is served as stale after). */
  softTtlMs: number;
  /** Milliseconds until the entry may no longer be served at all; ≥ softTtlMs. */
  hardTtlMs?: number;
  /** Opaque 32-bit flags stored with the value (codec, content type…). */
  flags?: number;
}

export interface WriterOptions {
  /** Take ownership even if another thread holds it (only when that thread is known dead). */
  takeover?: boolean;
  /** How long one grace-period wait may spin before giving up (default 2 ms). */
  graceSpinMs?: number;
  /** A read section open longer than this is revoked (default 2000 ms). */
  revokeAfterMs?: number;
}

export class L1Writer {
  readonly #v: Views;
  readonly #layout: Layout;
  readonly #clock: SharedClock;
  readonly #grace: GracePeriod;
  readonly #scratch: KeyBytes;
  readonly #probe: ProbeResult = { slot: 0, ptr: 0 };
  readonly #s3: Eviction;
  readonly #owner: number;
  /** Keeps the hot-key table (heat-keeper.ts); undefined with hotKeys off. */
  readonly #heat: HeatKeeper | undefined;
  /** The latest hard expiry of any entry written (or found at takeover): see markAllStale. */
  #latestHardExpiry: number;
  /** When the stale mark may be lifted: every entry older than it has expired by then. */
  #liftMarkAt = 0;
  #closed = false;

  private constructor(handle: L1Handle, owner: number, options: WriterOptions) {
    this.#layout = readLayout(handle?.sab);
    this.#v = makeViews(handle.sab, this.#layout);
    this.#owner = owner;
    const h = this.#v.header;
    const prev = Atomics.compareExchange(h, H.WRITER_OWNER, 0, owner);
    if (prev !== 0) {
      if (!options.takeover) {
        throw new L1Error(
          'HS_ERR_WRITER_TAKEN',
          `the L1 table already has a writer (thread ${prev - 1}); pass { takeover: true } only if that thread is dead`,
        );
      }
      Atomics.store(h, H.WRITER_OWNER, owner);
    }
    this.#clock = new SharedClock(this.#v.epochMs);
    this.#grace = new GracePeriod(this.#v, options.graceSpinMs ?? 2, options.revokeAfterMs ?? 2000);
    this.#scratch = keyScratch(Math.max(this.#layout.maxKeyBytes, MAX_COUNTER_NAME_BYTES));
    this.#s3 = new Eviction(this.#v, this.#grace, this.#clock);
    this.#heat = this.#v.heat === undefined ? undefined : new HeatKeeper(this.#v, this.#v.heat);
    // A taken-over table may hold a mark (and entries) of the last writer's.
    this.#latestHardExpiry = latestHardExpiry(this.#v, this.#layout.slotCount);
    if (staleMark(h) !== 0) this.#liftMarkAt = this.#latestHardExpiry;
  }

  /** Become the table's single writer. Throws HS_ERR_WRITER_TAKEN if it already has one. */
  static open(handle: L1Handle, options: WriterOptions = {}): L1Writer {
    return new L1Writer(handle, threadId + 1, options);
  }

  get layout(): Layout {
    return this.#layout;
  }

  /** Live entries in the table. */
  get size(): number {
    return this.#s3.size;
  }

  /**
   * Store `value` under `key`. Returns the entry's version (> 0), or 0 when the table
   * could not take it now (no index slot in the key's probe window, or readers holding
   * the memory it needs); refusals are counted and the caller simply serves the value
   * uncached. A value over maxValueBytes throws HS_ERR_VALUE_TOO_LARGE.
   */
  set(key: string | Uint8Array, value: Uint8Array, options: L1SetOptions): number {
    this.#assertOpen();
    const v = this.#v;
    const len = encodeKey(key, this.#scratch, this.#layout.maxKeyBytes, 'key');
    if (!(value instanceof Uint8Array))
      throw new L1Error('HS_ERR_VALUE_INVALID', 'value must be a Uint8Array (or Buffer)');
    if (value.length > this.#layout.maxValueBytes) {
      bump(v.header, WS.refusedTooLarge);
      throw new L1Error(
        'HS_ERR_VALUE_TOO_LARGE',
        `value of ${value.length} bytes is over maxValueBytes (${this.#layout.maxValueBytes}); serve it uncached`,
      );
    }
    const soft = options.softTtlMs;
    const hard = options.hardTtlMs ?? soft;
    if (!(soft >= 0) || !(hard >= soft) || !Number.isFinite(hard)) {
      throw new L1Error(
        'HS_ERR_L1_OPTION',
        `softTtlMs/hardTtlMs must be finite with 0 <= softTtlMs <= hardTtlMs (got ${soft}, ${hard})`,
      );
    }
    const hash = halfSipHash(this.#scratch, len, v.seed0, v.seed1);
    const size = entryBytes(len, value.length);
    const probe = this.#probe;

    const s3 = this.#s3;
    const existing = findSlotForWrite(v, this.#scratch, len, hash, probe) === 1 ? probe.ptr : 0;
    const ring = s3.ringFor(existing, hash, size);
    if (!s3.makeRoom(ring, size, true)) {
      bump(v.header, WS.refusedBusy);
      return 0;
    }
    // Eviction may have moved tombstones; look again.
    let found = findSlotForWrite(v, this.#scratch, len, hash, probe);
    if (found < 0 && s3.evictInWindow(hash))
      found = findSlotForWrite(v, this.#scratch, len, hash, probe);
    if (found < 0) {
      bump(v.header, WS.refusedNoSlot);
      return 0;
    }
    const now = this.#clock.now();
    const version = (Atomics.add(v.header, H.VERSION_COUNTER, 1) + 1) >>> 0 || 1;
    if (now + hard > this.#latestHardExpiry) this.#latestHardExpiry = now + hard;
    const off = allocate(v, ring, size);
    writeEntry(
      v,
      off,
      size,
      {
        hash,
        slot: probe.slot,
        flags: options.flags ?? 0,
        version,
        storedAt: now,
        softExpiresAt: now + soft,
        hardExpiresAt: now + hard,
      },
      this.#scratch.bytes,
      len,
      value,
    );
    ring.live++;
    if (found === 1) {
      s3.ringOf(probe.ptr).live--;
      bump(v.header, WS.updates);
    } else {
      bump(v.header, WS.inserts);
    }
    // Commit the head before publishing: a successor writer must never reuse bytes a
    // published pointer refers to.
    s3.commit();
    publish(v, probe.slot, hash, offsetToPtr(off));
    return version;
  }

  /** Remove `key`; true if it was present. */
  delete(key: string | Uint8Array): boolean {
    this.#assertOpen();
    const v = this.#v;
    const len = encodeKey(key, this.#scratch, this.#layout.maxKeyBytes, 'key');
    const hash = halfSipHash(this.#scratch, len, v.seed0, v.seed1);
    if (findSlotForWrite(v, this.#scratch, len, hash, this.#probe) !== 1) return false;
    this.#s3.ringOf(this.#probe.ptr).live--;
    unlink(v, this.#probe.slot);
    bump(v.header, WS.deletes);
    return true;
  }

  /** Remove every entry. Readers see each key either present or gone, never torn. */
  clear(): void {
    this.#assertOpen();
    const v = this.#v;
    clearIndex(v);
    v.ghost.fill(0);
    this.#s3.small.live = 0;
    this.#s3.main.live = 0;
    bump(v.header, WS.clears);
    // No entry is left for a stale mark to judge.
    clearStaleMark(v.header);
    // Everything is unreachable now; the bytes are free once no reader holds them. If a
    // reader is stuck, the rings keep their garbage and ordinary eviction reclaims it.
    if (this.#grace.wait()) this.#s3.reset();
  }

  /**
   * Make every entry written so far stale (stale-mark.ts): readers serve them as stale,
   * and ask for their refresh, until each is rewritten. Entries written from now on are
   * fresh as usual. Marking again moves the mark up.
   */
  markAllStale(): void {
    this.#assertOpen();
    setStaleMark(this.#v.header);
    this.#liftMarkAt = this.#latestHardExpiry;
  }

  /**
   * The mark is lifted once every entry below it is past its hard expiry (it judges no
   * entry any more), so it never meets a version 2^31 away. Should that many versions be
   * written first (hard TTLs of hours at tens of thousands of writes a second), the
   * table is cleared instead: the old entries go, and no new one is misjudged.
   */
  #checkStaleMark(now: number): void {
    const h = this.#v.header;
    const mark = staleMark(h);
    if (mark === 0) return;
    if (now >= this.#liftMarkAt) clearStaleMark(h);
    else if (versionsSince(h, mark) >= 2 ** 30) {
      this.clear();
      clearStaleMark(h);
    }
  }

  /**
   * One round of the hot-key table's upkeep (heat-keeper.ts): windows, the hot set, the
   * admission bar, the sketch's decay. Call it about once a second; `owners` (who owns
   * each Redis Cluster slot), when known, says where each key's heat lands. No-op with
   * hotKeys off.
   */
  tickHeat(owners?: SlotOwners): void {
    this.#assertOpen();
    this.#heat?.tick(this.#clock.precise(), owners);
  }

  /**
   * Unlink up to `maxSlots` index slots' worth of expired entries (past their hard
   * expiry), continuing where the last sweep stopped. Their arena bytes are reclaimed
   * when the ring's tail passes them. Returns how many were removed.
   */
  sweepExpired(maxSlots = 4096): number {
    this.#assertOpen();
    const v = this.#v;
    const slots = this.#layout.slotCount;
    const now = this.#clock.now();
    this.#checkStaleMark(now);
    let cursor = v.header[H.SWEEP_CURSOR] % slots;
    let removed = 0;
    for (let n = 0; n < Math.min(maxSlots, slots); n++, cursor = (cursor + 1) % slots) {
      const ptr = slotPtr(v, cursor);
      if (ptr === 0) continue;
      const off = ptrToOffset(ptr);
      if (now >= entryHardExpiresAt(v, off)) {
        this.#s3.ringOf(ptr).live--;
        unlink(v, cursor);
        bump(v.header, WS.expiredReclaimed);
        removed++;
      }
    }
    v.header[H.SWEEP_CURSOR] = cursor;
    return removed;
  }

  /** The counter cells in use (see counters.ts; several may share a name). */
  counterCells(): number[] {
    this.#assertOpen();
    return counterCells(this.#v);
  }

  /** The cells holding counter `name`. */
  cellsNamed(name: string): number[] {
    this.#assertOpen();
    const len = encodeKey(name, this.#scratch, MAX_COUNTER_NAME_BYTES, 'counter name');
    return cellsNamed(this.#v, this.#scratch, len);
  }

  counterName(cell: number): string {
    return counterName(this.#v, cell);
  }

  /** What has been added to `cell`, acknowledged, and the flush in flight if any. */
  counterState(cell: number): CounterState {
    return counterState(this.#v, cell);
  }

  /** Record a flush before sending it (counters.ts, beginFlush). */
  beginCounterFlush(cell: number, flush: PendingFlush): void {
    this.#assertOpen();
    beginFlush(this.#v, cell, flush);
  }

  /** Redis acknowledged `cell`'s pending flush. */
  ackCounterFlush(cell: number): void {
    this.#assertOpen();
    ackFlush(this.#v, cell);
  }

  /** Adds up to (`upTo`, `ops`) need no flush (they summed to nothing): settle them. */
  settleCounter(cell: number, upTo: bigint, ops: bigint): void {
    this.#assertOpen();
    settleCounter(this.#v, cell, upTo, ops);
  }

  /** Give up the writer role (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.compareExchange(this.#v.header, H.WRITER_OWNER, this.#owner, 0);
  }

  #assertOpen(): void {
    if (this.#closed) throw new L1Error('HS_ERR_L1_CLOSED', 'this L1Writer is closed');
  }
}

/** The latest hard expiry among the entries the index points at (0: none). */
function latestHardExpiry(v: Views, slotCount: number): number {
  let latest = 0;
  for (let slot = 0; slot < slotCount; slot++) {
    const ptr = slotPtr(v, slot);
    if (ptr !== 0) latest = Math.max(latest, entryHardExpiresAt(v, ptrToOffset(ptr)));
  }
  return latest;
}
