/**
 * S3-FIFO (Yang et al., SOSP '23) over the arena's two ring logs: the writer's policy of
 * what stays. New keys enter the small ring (10 % of the arena); at its tail an entry
 * read since it arrived is promoted to the main ring, any other is dropped and its hash
 * remembered in the ghost table; a key found in the ghost table goes straight to main.
 * At main's tail an entry read since its last pass is re-appended (its count
 * decremented), any other dropped. One-hit wonders (scans, floods of unique keys) leave
 * through the small ring and never displace the main ring's hot set. Readers only bump
 * an access count in the entry.
 *
 * Eviction walks a chunk (1/64 of a ring, or what the new entry needs) per grace period,
 * so the cost of waiting for readers is paid once per chunk, not per entry. Entries are
 * unlinked before the tail moves past them and every move is committed (arena.ts), so a
 * writer terminated mid-walk leaves unreachable garbage, never a reachable torn entry.
 */

import {
  accessCount,
  allocate,
  commitRings,
  copyEntry,
  emptyRings,
  entryHardExpiresAt,
  entryHash,
  entrySlot,
  entryTotalBytes,
  freeBytes,
  loadRings,
  plausibleSize,
  type Ring,
  requiredFree,
} from './arena.ts';
import type { SharedClock } from './clock.ts';
import { bump } from './counts.ts';
import { offsetToPtr, ptrToOffset, publish, slotPtr, unlink } from './index-table.ts';
import { type Layout, MAX_PROBE, RING, WS } from './layout.ts';
import type { GracePeriod } from './registry.ts';
import type { Views } from './views.ts';

const EVICT_CHUNK_FRACTION = 64;

export class Eviction {
  readonly small: Ring;
  readonly main: Ring;
  readonly #v: Views;
  readonly #layout: Layout;
  readonly #grace: GracePeriod;
  readonly #clock: SharedClock;
  /** Set once the main ring first had to evict; see #evictEntry. */
  #mainFilled = false;

  /** The rings as last committed (a new writer takes over where its predecessor stopped). */
  constructor(v: Views, grace: GracePeriod, clock: SharedClock) {
    this.#v = v;
    this.#layout = v.layout;
    this.#grace = grace;
    this.#clock = clock;
    const { small, main } = emptyRings(v.layout.smallRingBytes, v.layout.mainRingBytes);
    this.small = small;
    this.main = main;
    loadRings(v, small, main);
    this.#mainFilled = main.used > main.size / 2;
    // Live counts are derived, not stored: recount them from the index.
    for (let s = 0; s < this.#layout.slotCount; s++) {
      const ptr = slotPtr(v, s);
      if (ptr !== 0) this.ringOf(ptr).live++;
    }
  }

  /** Live entries in the table. */
  get size(): number {
    return this.small.live + this.main.live;
  }

  ringOf(ptr: number): Ring {
    return ptrToOffset(ptr) >= this.main.base ? this.main : this.small;
  }

  /**
   * The ring a new version of a key goes to: an update stays in its ring (`updating`: the
   * old version's pointer, 0 for a new key); a new key goes to main if the ghost table
   * remembers its hash, else to small. Entries too large for the small ring go to main.
   */
  ringFor(updating: number, hash: number, size: number): Ring {
    let ring = this.small;
    if (updating !== 0) {
      if (this.ringOf(updating) === this.main) ring = this.main;
    } else if (this.#v.ghost[hash & (this.#layout.slotCount - 1)] === hash) {
      ring = this.main;
    }
    if (size * 4 > this.small.size) ring = this.main;
    return ring;
  }

  /** Commit the rings' positions (after allocating, before publishing). */
  commit(): void {
    commitRings(this.#v, this.small, this.main);
  }

  /** Forget every entry's bytes (the index was cleared and a grace period has passed). */
  reset(): void {
    for (const r of [this.small, this.main]) {
      r.head = 0;
      r.tail = 0;
      r.used = 0;
    }
    this.commit();
  }

  /**
   * Free bytes the main ring keeps beyond what is asked of it: an entry at its tail that
   * earns another lap is re-appended at the head, and that needs free bytes while the
   * chunk being walked is not reusable yet (it waits for its grace period).
   */
  #reserveOf(r: Ring): number {
    return r === this.main ? r.size / EVICT_CHUNK_FRACTION : 0;
  }

  /**
   * Evict from `r` until an entry of `size` bytes can be appended and, when `needSlot`,
   * until the live count is under its limit. False when readers hold the memory.
   */
  makeRoom(r: Ring, size: number, needSlot: boolean): boolean {
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
        victim = this.small.live > maxLive / 10 || this.main.live === 0 ? this.small : this.main;
        liveTarget = maxLive - Math.max(1, Math.floor(maxLive / EVICT_CHUNK_FRACTION));
      }
      if (victim === this.main) this.#mainFilled = true;
      const want = bytesShort ? requiredFree(r, size) + reserve - freeBytes(r) : 1;
      const target = Math.max(want, victim.size / EVICT_CHUNK_FRACTION);
      if (!this.#evictChunk(victim, target, liveTarget)) return false;
    }
  }

  /**
   * Walk `r` from its tail over at least `target` bytes (or, if `liveTarget` ≥ 0,
   * until the table holds no more live entries than that), promoting, re-appending or
   * dropping each entry; then wait for a grace period and move the tail. False if the
   * grace period did not end.
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
    this.commit();
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
    const main = this.main;
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
        dest === r ? freeBytes(r) >= requiredFree(r, total) : this.makeRoom(dest, total, false);
      if (room) {
        const to = allocate(v, dest, total);
        // A promoted entry starts over in main; a re-appended one pays one count per lap.
        copyEntry(v, off, to, total, dest !== r ? 0 : freq - 1);
        this.commit();
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
  evictInWindow(hash: number): boolean {
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
    this.ringOf(slotPtr(v, best)).live--;
    unlink(v, best);
    bump(v.header, WS.evictions);
    return true;
  }

  /** Last resort if a ring's bytes are not what the writer wrote: drop the ring whole. */
  #resetRing(r: Ring): boolean {
    const v = this.#v;
    for (let s = 0; s < this.#layout.slotCount; s++) {
      const ptr = slotPtr(v, s);
      if (ptr !== 0 && this.ringOf(ptr) === r) unlink(v, s);
    }
    if (!this.#grace.wait()) return false;
    r.head = 0;
    r.tail = 0;
    r.used = 0;
    r.live = 0;
    this.commit();
    return true;
  }
}
