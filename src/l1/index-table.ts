/**
 * The open-addressing index: `slotCount` (a power of two) slots of [tag u32, ptr u32].
 *
 * - tag 0 = never used: ends every probe. Otherwise tag = the key's hash (0 remapped to 1),
 *   a hint that lets a probe skip slots without touching the arena.
 * - ptr 0 with a non-zero tag = tombstone: a probe walks past it; an insert may reuse it.
 * - ptr = arena byte offset / 8 + 1 otherwise. The reader always confirms hash and key
 *   bytes in the entry itself, so a tag that is stale or reused is harmless.
 *
 * Linear probing, at most MAX_PROBE slots (four 64-byte lines) from the home slot: a
 * lookup costs the same bounded work whatever the keys, and an insert that finds no slot
 * in its window is refused rather than searching further (hash flooding costs the flooder
 * its hit ratio, not everyone CPU). Invariant kept by the single writer: between a live
 * key's home slot and its slot there is no slot with tag 0.
 */

import type { KeyBytes } from './key-bytes.ts';
import { E, EMPTY_TAG, MAX_PROBE, SLOT_PTR, SLOT_TAG, SLOT_WORDS } from './layout.ts';
import type { Views } from './views.ts';

export interface ProbeResult {
  slot: number;
  ptr: number;
}

const tagOf = (hash: number): number => (hash === EMPTY_TAG ? 1 : hash);
export const ptrToOffset = (ptr: number): number => (ptr - 1) * 8;
export const offsetToPtr = (offset: number): number => offset / 8 + 1;

/** True when the entry at `ptr` holds exactly these key bytes; every length read is range-checked. */
function entryHasKey(v: Views, ptr: number, key: KeyBytes, len: number, hash: number): boolean {
  const off = ptrToOffset(ptr);
  const arenaBytes = v.layout.arenaBytes;
  if (off < 0 || off + E.KEY + len > arenaBytes) return false;
  const w = off >>> 2;
  const a32 = v.arenaU32;
  if (a32[w + E.HASH / 4] !== hash || a32[w + E.KEY_LEN / 4] !== len) return false;
  // Entry keys start 8-byte aligned, so compare whole words, then the tail bytes.
  const kw = w + E.KEY / 4;
  const words = key.words;
  const nWords = len >>> 2;
  for (let i = 0; i < nWords; i++) if (a32[kw + i] !== words[i]) return false;
  const a8 = v.arenaU8;
  const bytes = key.bytes;
  for (let i = nWords << 2; i < len; i++) if (a8[off + E.KEY + i] !== bytes[i]) return false;
  return true;
}

/** Find the live slot holding `key`; fills `out` and returns true when found. */
export function findKey(
  v: Views,
  key: KeyBytes,
  len: number,
  hash: number,
  out: ProbeResult,
): boolean {
  const index = v.index;
  const mask = v.layout.slotCount - 1;
  const tag = tagOf(hash);
  let s = hash & mask;
  for (let p = 0; p < MAX_PROBE; p++, s = (s + 1) & mask) {
    const t = index[SLOT_WORDS * s + SLOT_TAG];
    if (t === EMPTY_TAG) return false;
    if (t !== tag) continue;
    // acquire: pairs with the writer's Atomics.store publishing this pointer, so the
    // entry's bytes written before it are visible to the plain reads that follow.
    const ptr = Atomics.load(index, SLOT_WORDS * s + SLOT_PTR);
    if (ptr !== 0 && entryHasKey(v, ptr, key, len, hash)) {
      out.slot = s;
      out.ptr = ptr;
      return true;
    }
  }
  return false;
}

/**
 * Writer only: find the slot for `key`. Returns 1 and the live slot when the key is
 * present, 0 and a free slot (tombstone or never used) when it is not, -1 when the
 * probe window is full.
 */
export function findSlotForWrite(
  v: Views,
  key: KeyBytes,
  len: number,
  hash: number,
  out: ProbeResult,
): -1 | 0 | 1 {
  const index = v.index;
  const mask = v.layout.slotCount - 1;
  const tag = tagOf(hash);
  let free = -1;
  let s = hash & mask;
  for (let p = 0; p < MAX_PROBE; p++, s = (s + 1) & mask) {
    const t = index[SLOT_WORDS * s + SLOT_TAG];
    const ptr = index[SLOT_WORDS * s + SLOT_PTR];
    if (t === EMPTY_TAG) {
      if (free < 0) free = s;
      break;
    }
    if (ptr === 0) {
      if (free < 0) free = s;
      continue;
    }
    if (t === tag && entryHasKey(v, ptr, key, len, hash)) {
      out.slot = s;
      out.ptr = ptr;
      return 1;
    }
  }
  if (free < 0) return -1;
  out.slot = free;
  out.ptr = 0;
  return 0;
}

/** Writer only: point `slot` at a new entry (publish). */
export function publish(v: Views, slot: number, hash: number, ptr: number): void {
  const index = v.index;
  if (index[SLOT_WORDS * slot + SLOT_TAG] !== tagOf(hash))
    Atomics.store(index, SLOT_WORDS * slot + SLOT_TAG, tagOf(hash));
  // publish: pairs with the reader's Atomics.load of the pointer in findKey.
  Atomics.store(index, SLOT_WORDS * slot + SLOT_PTR, ptr);
}

/**
 * Writer only: remove the entry from `slot`, leaving a tombstone; then turn tombstones
 * back into never-used slots where no live key can lie beyond them (the following slot
 * is never-used), so misses keep ending early instead of always scanning MAX_PROBE.
 */
export function unlink(v: Views, slot: number): void {
  const index = v.index;
  const mask = v.layout.slotCount - 1;
  Atomics.store(index, SLOT_WORDS * slot + SLOT_PTR, 0);
  let s = slot;
  for (let n = 0; n < v.layout.slotCount; n++) {
    if (index[SLOT_WORDS * ((s + 1) & mask) + SLOT_TAG] !== EMPTY_TAG) return;
    if (index[SLOT_WORDS * s + SLOT_PTR] !== 0 || index[SLOT_WORDS * s + SLOT_TAG] === EMPTY_TAG)
      return;
    Atomics.store(index, SLOT_WORDS * s + SLOT_TAG, EMPTY_TAG);
    s = (s - 1) & mask;
  }
}

/** Writer only: the pointer in `slot` (0 = none). The writer is its only writer, so a plain read. */
export function slotPtr(v: Views, slot: number): number {
  return v.index[SLOT_WORDS * slot + SLOT_PTR];
}

/** Writer only: empty every slot, pointers first so no probe follows a half-cleared slot. */
export function clearIndex(v: Views): void {
  const index = v.index;
  const slots = v.layout.slotCount;
  for (let s = 0; s < slots; s++) {
    if (index[SLOT_WORDS * s + SLOT_PTR] !== 0) Atomics.store(index, SLOT_WORDS * s + SLOT_PTR, 0);
  }
  for (let s = 0; s < slots; s++) Atomics.store(index, SLOT_WORDS * s + SLOT_TAG, EMPTY_TAG);
}
