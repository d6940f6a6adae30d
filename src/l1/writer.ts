/**
 * The single writer of cache entries (the refresher thread in the product). Owns every
 * structural change: insert, update, delete, clear, eviction, expiry sweeps.
 *
 * Eviction is S3-FIFO (Yang et al., SOSP '23) over the two arena rings: new keys enter
 * the small ring (10 % of the arena); at its tail an entry read since it arrived is
 * promoted to the main ring, any other is dropped and its hash remembered in the ghost
 * table; a key found in the ghost table goes straight to main. At main's tail an entry
 * read since its last pass is re-appended (its count decremented), any other dropped.
 * One-hit wonders (scans, floods of unique keys) leave through the small ring and never
 * displace the main ring's hot set. Readers only bump an access count in the entry.
 *
 * Crash safety: the writer may be terminated between any two statements. Ring
 * positions live in two state records and a switch word (a commit is one atomic store),
 * an entry is written and the head committed before its pointer is published, and
 * entries are unlinked before the tail moves past them, so a new writer that takes over
 * (`takeover: true`) finds at worst unreachable garbage, never a reachable torn entry.
 */

import { threadId } from 'node:worker_threads';
import {
  accessCount,
  allocate,
  copyEntry,
  entryHardExpiresAt,
  entryHash,
  entrySlot,
  entryTotalBytes,
  freeBytes,
  plausibleSize,
  type Ring,
  requiredFree,
  writeEntry,
} from './arena.ts';
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
import { L1Error } from './errors.ts';
import { halfSipHash } from './hash.ts';
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
import {
  entryBytes,
  H,
  type Layout,
  MAX_COUNTER_NAME_BYTES,
  MAX_PROBE,
  RING,
  type RingId,
  readLayout,
  S,
  WS,
} from './layout.ts';
import { GracePeriod, releaseThreadLines } from './registry.ts';
import { makeViews, type Views } from './views.ts';

export interface L1Handle {
  readonly sab: SharedArrayBuffer;
}

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

const EVICT_CHUNK_FRACTION = 64;

export class L1Writer {
  readonly #v: Views;
  readonly #layout: Layout;
  readonly #clock: SharedClock;
  readonly #grace: GracePeriod;
  readonly #scratch: KeyBytes;
  readonly #probe: ProbeResult = { slot: 0, ptr: 0 };
  readonly #small: Ring;
  readonly #main: Ring;
  readonly #owner: number;
  #closed = false;
  /** Set once the main ring first had to evict; see #evictEntry. */
  #mainFilled = false;

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
    this.#small = {
      id: RING.SMALL,
      base: 0,
      size: this.#layout.smallRingBytes,
      head: 0,
      tail: 0,
      used: 0,
      live: 0,
    };
    this.#main = {
      id: RING.MAIN,
      base: this.#layout.smallRingBytes,
      size: this.#layout.mainRingBytes,
      head: 0,
      tail: 0,
      used: 0,
      live: 0,
    };
    this.#loadState();
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
    return this.#small.live + this.#main.live;
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

    // Updates stay in their ring; new keys go to main if the ghost remembers them.
    let ring = this.#small;
    if (findSlotForWrite(v, this.#scratch, len, hash, probe) === 1) {
      if (this.#ringOf(probe.ptr) === this.#main) ring = this.#main;
    } else if (v.ghost[hash & (this.#layout.slotCount - 1)] === hash) {
      ring = this.#main;
    }
    if (size * 4 > this.#small.size) ring = this.#main;

    if (!this.#makeRoom(ring, size, true)) {
      bump(v.header, WS.refusedBusy);
      return 0;
    }
    // Eviction may have moved tombstones; look again.
    let found = findSlotForWrite(v, this.#scratch, len, hash, probe);
    if (found < 0 && this.#evictInWindow(hash))
      found = findSlotForWrite(v, this.#scratch, len, hash, probe);
    if (found < 0) {
      bump(v.header, WS.refusedNoSlot);
      return 0;
    }
    const now = this.#clock.now();
    const version = (Atomics.add(v.header, H.VERSION_COUNTER, 1) + 1) >>> 0 || 1;
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
      this.#ringOf(probe.ptr).live--;
      bump(v.header, WS.updates);
    } else {
      bump(v.header, WS.inserts);
    }
    // Commit the head before publishing: a successor writer must never reuse bytes a
    // published pointer refers to.
    this.#commitState();
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
    this.#ringOf(this.#probe.ptr).live--;
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
    this.#small.live = 0;
    this.#main.live = 0;
    bump(v.header, WS.clears);
    // Everything is unreachable now; the bytes are free once no reader holds them. If a
    // reader is stuck, the rings keep their garbage and ordinary eviction reclaims it.
    if (this.#grace.wait()) {
      for (const r of [this.#small, this.#main]) {
        r.head = 0;
        r.tail = 0;
        r.used = 0;
      }
      this.#commitState();
    }
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
    let cursor = v.header[H.SWEEP_CURSOR] % slots;
    let removed = 0;
    for (let n = 0; n < Math.min(maxSlots, slots); n++, cursor = (cursor + 1) % slots) {
      const ptr = slotPtr(v, cursor);
      if (ptr === 0) continue;
      const off = ptrToOffset(ptr);
      if (now >= entryHardExpiresAt(v, off)) {
        this.#ringOf(ptr).live--;
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

  #ringOf(ptr: number): Ring {
    return ptrToOffset(ptr) >= this.#main.base ? this.#main : this.#small;
  }

  /**
   * Free bytes the main ring keeps beyond what is asked of it: an entry at its tail that
   * earns another lap is re-appended at the head, and that needs free bytes while the
   * chunk being walked is not reusable yet (it waits for its grace period).
   */
  #reserveOf(r: Ring): number {
    return r === this.#main ? r.size / EVICT_CHUNK_FRACTION : 0;
  }

  /**
   * Evict from `r` until an entry of `size` bytes can be appended and, when `needSlot`,
   * until the live count is under its limit. False when readers hold the memory.
   */
  #makeRoom(r: Ring, size: number, needSlot: boolean): boolean {
    const maxLive = this.#layout.maxLiveEntries;
    const reserve = this.#reserveOf(r);
    for (let rounds = 0; ; rounds++) {
      const bytesShort = freeBytes(r) < requiredFree(r, size) + reserve;
      const slotsShort = needSlot && this.size >= maxLive;
      if (!bytesShort && !slotsShort) return true;
      if (rounds > 4 * maxLive + 64) return false; // cannot happen; never loop forever
      let victim = r;
      let liveTarget = -1;
      if (!bytesShort) {
        // Count-bound: keep the small ring near its 10 % share of entries, and free a
        // batch of slots per grace period rather than one.
        victim =
          this.#small.live > maxLive / 10 || this.#main.live === 0 ? this.#small : this.#main;
        liveTarget = maxLive - Math.max(1, Math.floor(maxLive / EVICT_CHUNK_FRACTION));
      }
      if (victim === this.#main) this.#mainFilled = true;
      const want = bytesShort ? requiredFree(r, size) + reserve - freeBytes(r) : 1;
      const target = Math.max(want, victim.size / EVICT_CHUNK_FRACTION);
      if (!this.#evictChunk(victim, target, liveTarget)) return false;
    }
  }

  /**
   * Walk `r` from its tail over at least `target` bytes (or, if `liveTarget` ≥ 0,
   * until the table holds no more live entries than that), promoting, re-appending or dropping each entry; then
   * wait for a grace period and move the tail. False if the grace period did not end.
   */
  #evictChunk(r: Ring, target: number, liveTarget: number): boolean {
    const v = this.#v;
    const now = this.#clock.now();
    const mask = this.#layout.slotCount - 1;
    let cursor = r.tail;
    let walked = 0;
    while (walked < r.used && (liveTarget >= 0 ? this.size > liveTarget : walked < target)) {
      const off = r.base + cursor;
      const total = entryTotalBytes(v, off);
      if (total === 0) {
        walked += r.size - cursor;
        cursor = 0;
        continue;
      }
      if (!plausibleSize(total, cursor, r.size)) return this.#resetRing(r);
      const slot = entrySlot(v, off);
      const ptr = offsetToPtr(off);
      if (slot <= mask && slotPtr(v, slot) === ptr) {
        // An entry that earned another lap but finds no room at the head ends this chunk:
        // once the chunk's bytes are free it gets its lap. Only the chunk's first entry
        // is evicted regardless, so every chunk makes progress.
        if (!this.#evictEntry(r, off, total, slot, now, walked > 0)) break;
      }
      walked += total;
      cursor += total;
      if (cursor === r.size) cursor = 0;
    }
    if (!this.#grace.wait()) return false;
    r.tail = cursor;
    r.used -= walked;
    this.#commitState();
    return true;
  }

  /**
   * Promote, re-append or drop the live entry at `off`. Returns false, having done
   * nothing, when the entry deserves to stay but there is no room for it and `mayDefer`.
   */
  #evictEntry(
    r: Ring,
    off: number,
    total: number,
    slot: number,
    now: number,
    mayDefer: boolean,
  ): boolean {
    const v = this.#v;
    const expired = now >= entryHardExpiresAt(v, off);
    const freq = accessCount(v, off);
    const main = this.#main;
    // Until the main ring has filled up once, entries leaving the small ring move there
    // even unread: free space serves hits better than nothing. Once main is full, only
    // entries read since they arrived get in, which is what makes S3-FIFO scan-resistant.
    const mainHasRoom =
      !this.#mainFilled &&
      r !== main &&
      freeBytes(main) >= requiredFree(main, total) + this.#reserveOf(main);
    if (!expired && (freq > 0 || mainHasRoom)) {
      // Promote from small to main, or give a main entry another lap, if it fits now.
      const dest = r.id === RING.SMALL ? main : r;
      const room =
        dest === r ? freeBytes(r) >= requiredFree(r, total) : this.#makeRoom(dest, total, false);
      if (room) {
        const to = allocate(v, dest, total);
        // A promoted entry starts over in main; a re-appended one pays one count per lap.
        copyEntry(v, off, to, total, dest !== r ? 0 : freq - 1);
        this.#commitState();
        publish(v, slot, entryHash(v, off), offsetToPtr(to));
        if (dest !== r) {
          r.live--;
          dest.live++;
          bump(v.header, WS.promotions);
        } else {
          bump(v.header, WS.reinsertions);
        }
        return true;
      }
      if (mayDefer && dest === r) return false;
    }
    r.live--;
    unlink(v, slot);
    if (expired) {
      bump(v.header, WS.expiredReclaimed);
    } else {
      if (r.id === RING.SMALL) {
        const hash = entryHash(v, off);
        v.ghost[hash & (this.#layout.slotCount - 1)] = hash;
      }
      bump(v.header, WS.evictions);
    }
    return true;
  }

  /**
   * The key's whole probe window is taken (a long cluster): evict the least-read entry
   * of the window, like a set-associative cache would, so that the key still gets in.
   * The hash is keyed, so nobody can aim this at chosen victims.
   */
  #evictInWindow(hash: number): boolean {
    const v = this.#v;
    const mask = this.#layout.slotCount - 1;
    let best = -1;
    let bestCount = 0;
    for (let p = 0, s = hash & mask; p < MAX_PROBE; p++, s = (s + 1) & mask) {
      const ptr = slotPtr(v, s);
      if (ptr === 0) continue;
      const count = accessCount(v, ptrToOffset(ptr));
      if (best < 0 || count < bestCount) {
        best = s;
        bestCount = count;
      }
    }
    if (best < 0) return false;
    this.#ringOf(slotPtr(v, best)).live--;
    unlink(v, best);
    bump(v.header, WS.evictions);
    return true;
  }

  /** Last resort if a ring's bytes are not what the writer wrote: drop the ring whole. */
  #resetRing(r: Ring): boolean {
    const v = this.#v;
    for (let s = 0; s < this.#layout.slotCount; s++) {
      const ptr = slotPtr(v, s);
      if (ptr !== 0 && this.#ringOf(ptr) === r) unlink(v, s);
    }
    if (!this.#grace.wait()) return false;
    r.head = 0;
    r.tail = 0;
    r.used = 0;
    r.live = 0;
    this.#commitState();
    return true;
  }

  #commitState(): void {
    const h = this.#v.header;
    const next = h[H.STATE_ACTIVE] === 0 ? 1 : 0;
    const base = next === 0 ? H.STATE_A : H.STATE_B;
    h[base + S.SMALL_HEAD] = this.#small.head;
    h[base + S.SMALL_TAIL] = this.#small.tail;
    h[base + S.SMALL_USED] = this.#small.used;
    h[base + S.MAIN_HEAD] = this.#main.head;
    h[base + S.MAIN_TAIL] = this.#main.tail;
    h[base + S.MAIN_USED] = this.#main.used;
    // commit: pairs with the Atomics.load of STATE_ACTIVE in #loadState of a successor.
    Atomics.store(h, H.STATE_ACTIVE, next);
    h[H.LIVE_ENTRIES] = this.size;
  }

  #loadState(): void {
    const v = this.#v;
    const h = v.header;
    const base = Atomics.load(h, H.STATE_ACTIVE) === 0 ? H.STATE_A : H.STATE_B;
    this.#small.head = h[base + S.SMALL_HEAD] >>> 0;
    this.#small.tail = h[base + S.SMALL_TAIL] >>> 0;
    this.#small.used = h[base + S.SMALL_USED] >>> 0;
    this.#main.head = h[base + S.MAIN_HEAD] >>> 0;
    this.#main.tail = h[base + S.MAIN_TAIL] >>> 0;
    this.#main.used = h[base + S.MAIN_USED] >>> 0;
    this.#mainFilled = this.#main.used > this.#main.size / 2;
    // Live counts are derived, not stored: recount them from the index.
    for (let s = 0; s < this.#layout.slotCount; s++) {
      const ptr = slotPtr(v, s);
      if (ptr !== 0) this.#ringOf(ptr).live++;
    }
  }
}

/** Release everything `threadId` held (reader lines, writer role): call on worker 'exit'. */
export function releaseThread(handle: L1Handle, threadId: number): number {
  // worker.threadId reads -1 once the worker has exited: read it before, at spawn time.
  if (!Number.isSafeInteger(threadId) || threadId < 0) {
    throw new L1Error(
      'HS_ERR_L1_OPTION',
      `releaseThread needs the worker's threadId as read while it ran (got ${threadId})`,
    );
  }
  const layout = readLayout(handle?.sab);
  const v = makeViews(handle.sab, layout);
  Atomics.compareExchange(v.header, H.WRITER_OWNER, threadId + 1, 0);
  return releaseThreadLines(v, threadId);
}

export type { RingId };
