/**
 * The arena: two ring logs (S3-FIFO's small and main queues) of immutable entries.
 *
 * Entries are appended at a ring's head and leave from its tail, so eviction order is
 * FIFO order and allocation is a pointer bump with no fragmentation. An entry's bytes
 * never change after it is published (only the writer writes them, and only before
 * publishing); an update appends a new version and swaps the index pointer. Space is
 * reused only after a grace period (registry.ts), so a reader copying an entry can
 * never see its bytes change underneath it.
 *
 * A ring never splits an entry: when the entry does not fit before the end, the writer
 * leaves a wrap marker (a zero `totalBytes` word) and continues at offset 0.
 *
 * The rings' positions live in the header in two state records and a switch word, so a
 * commit is one atomic store: a writer terminated mid-operation leaves its successor the
 * last committed positions, never half of an update.
 */

import { E, ENTRY_HEADER_BYTES, H, MAX_ACCESS, RING, type RingId, S } from './layout.ts';
import type { Views } from './views.ts';

export interface EntryFields {
  hash: number;
  slot: number;
  flags: number;
  version: number;
  storedAt: number;
  softExpiresAt: number;
  hardExpiresAt: number;
}

/** Write a complete entry at arena byte offset `off` (not yet visible to anyone). */
export function writeEntry(
  v: Views,
  off: number,
  totalBytes: number,
  f: EntryFields,
  key: Uint8Array,
  keyLen: number,
  value: Uint8Array,
): void {
  const w = off >>> 2;
  const u32 = v.arenaU32;
  u32[w + E.TOTAL_BYTES / 4] = totalBytes;
  u32[w + E.HASH / 4] = f.hash;
  u32[w + E.SLOT / 4] = f.slot;
  u32[w + E.KEY_LEN / 4] = keyLen;
  u32[w + E.VALUE_LEN / 4] = value.length;
  u32[w + E.FLAGS / 4] = f.flags;
  u32[w + E.VERSION / 4] = f.version;
  u32[w + E.ACCESS / 4] = accessWord(f.version, 0);
  const d = off >>> 3;
  v.arenaF64[d + E.STORED_AT / 8] = f.storedAt;
  v.arenaF64[d + E.SOFT_EXPIRES_AT / 8] = f.softExpiresAt;
  v.arenaF64[d + E.HARD_EXPIRES_AT / 8] = f.hardExpiresAt;
  v.arenaU8.set(key.subarray(0, keyLen), off + E.KEY);
  v.arenaU8.set(value, off + E.KEY + keyLen);
}

/**
 * The access word pairs the count with the entry's version, so a reader's compare-exchange
 * of it can only succeed on the entry the reader looked up (see table.ts).
 */
const accessWord = (version: number, count: number): number =>
  (((version & 0x3fffffff) << 2) | count) >>> 0;

/** The entry's access count (0..MAX_ACCESS). */
export const accessCount = (v: Views, off: number): number =>
  v.arenaU32[(off >>> 2) + E.ACCESS / 4] & MAX_ACCESS;

/**
 * Copy a whole entry to `dst` (re-insertion or promotion) with a new access count. The
 * copy is not published yet, so no reader can be bumping its count.
 */
export function copyEntry(
  v: Views,
  src: number,
  dst: number,
  totalBytes: number,
  count: number,
): void {
  v.arenaU8.copyWithin(dst, src, src + totalBytes);
  const w = dst >>> 2;
  v.arenaU32[w + E.ACCESS / 4] = accessWord(v.arenaU32[w + E.VERSION / 4], count);
}

export const entryTotalBytes = (v: Views, off: number): number => v.arenaU32[off >>> 2];
export const entrySlot = (v: Views, off: number): number => v.arenaU32[(off >>> 2) + E.SLOT / 4];
export const entryHash = (v: Views, off: number): number => v.arenaU32[(off >>> 2) + E.HASH / 4];
export const entryHardExpiresAt = (v: Views, off: number): number =>
  v.arenaF64[(off >>> 3) + E.HARD_EXPIRES_AT / 8];

/** Is `totalBytes` read at ring offset `cursor` a plausible entry size? */
export function plausibleSize(totalBytes: number, cursor: number, ringBytes: number): boolean {
  return (
    totalBytes >= ENTRY_HEADER_BYTES + 8 &&
    (totalBytes & 7) === 0 &&
    cursor + totalBytes <= ringBytes
  );
}

/** Ring state as the writer keeps it (mirrored into the header's state records). */
export interface Ring {
  readonly id: RingId;
  /** Arena byte offset of the ring's first byte. */
  readonly base: number;
  readonly size: number;
  head: number;
  tail: number;
  used: number;
  live: number;
}

/** Bytes that must be free before an entry of `size` bytes can be appended. */
export function requiredFree(r: Ring, size: number): number {
  if (r.used === 0 || r.head < r.tail || r.size - r.head >= size) return size;
  return r.size - r.head + size;
}

export const freeBytes = (r: Ring): number => r.size - r.used;

/**
 * Reserve `size` bytes at the head; returns the arena offset. The caller has made sure
 * `freeBytes(r) >= requiredFree(r, size)`.
 */
export function allocate(v: Views, r: Ring, size: number): number {
  if (r.used === 0) {
    r.head = 0;
    r.tail = 0;
  }
  if (r.head >= r.tail && r.size - r.head < size) {
    v.arenaU32[(r.base + r.head) >>> 2] = 0; // wrap marker
    r.used += r.size - r.head;
    r.head = 0;
  }
  const off = r.base + r.head;
  r.head += size;
  r.used += size;
  if (r.head === r.size) r.head = 0;
  return off;
}

/** The two rings of a table, at the positions of a fresh table (see loadRings). */
export function emptyRings(smallBytes: number, mainBytes: number): { small: Ring; main: Ring } {
  return {
    small: { id: RING.SMALL, base: 0, size: smallBytes, head: 0, tail: 0, used: 0, live: 0 },
    main: { id: RING.MAIN, base: smallBytes, size: mainBytes, head: 0, tail: 0, used: 0, live: 0 },
  };
}

/** The state record committed last (A or B). */
function activeRecord(h: Int32Array): number {
  return Atomics.load(h, H.STATE_ACTIVE) === 0 ? H.STATE_A : H.STATE_B;
}

/** Commit both rings' positions (and the live entry count) with one atomic store. */
export function commitRings(v: Views, small: Ring, main: Ring): void {
  const h = v.header;
  const next = h[H.STATE_ACTIVE] === 0 ? 1 : 0;
  const base = next === 0 ? H.STATE_A : H.STATE_B;
  h[base + S.SMALL_HEAD] = small.head;
  h[base + S.SMALL_TAIL] = small.tail;
  h[base + S.SMALL_USED] = small.used;
  h[base + S.MAIN_HEAD] = main.head;
  h[base + S.MAIN_TAIL] = main.tail;
  h[base + S.MAIN_USED] = main.used;
  // commit: pairs with the Atomics.load of STATE_ACTIVE in loadRings of a successor.
  Atomics.store(h, H.STATE_ACTIVE, next);
  h[H.LIVE_ENTRIES] = small.live + main.live;
}

/** Load the committed positions into `small` and `main` (their live counts are not stored). */
export function loadRings(v: Views, small: Ring, main: Ring): void {
  const h = v.header;
  const base = activeRecord(h);
  small.head = h[base + S.SMALL_HEAD] >>> 0;
  small.tail = h[base + S.SMALL_TAIL] >>> 0;
  small.used = h[base + S.SMALL_USED] >>> 0;
  main.head = h[base + S.MAIN_HEAD] >>> 0;
  main.tail = h[base + S.MAIN_TAIL] >>> 0;
  main.used = h[base + S.MAIN_USED] >>> 0;
}

/** Arena bytes in use as last committed (readable from any thread). */
export function committedBytesUsed(v: Views): number {
  const h = v.header;
  const base = activeRecord(h);
  return (h[base + S.SMALL_USED] >>> 0) + (h[base + S.MAIN_USED] >>> 0);
}
