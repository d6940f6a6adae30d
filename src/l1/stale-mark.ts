/**
 * The stale mark: one header word that makes every entry written before a moment stale
 * at once, without touching the entries. The refresher sets it when it can no longer be
 * sure Redis would tell it of a change (an invalidation connection dropped, tracking
 * lost on a data connection): from then on those entries are served stale while one
 * refresh per key replaces them, instead of fresh until their soft TTL, and instead of
 * turning every hot key into a miss at once as a clear would.
 *
 * The word holds the first version written after the mark (0: no mark). Versions come
 * from one 32-bit counter that only the writer advances, so "written before the mark" is
 * "version below it", compared modulo 2^32 (the signed difference): right while fewer
 * than 2^31 versions separate the two, which the writer keeps true by lifting the mark
 * once every older entry has expired (see L1Writer.markAllStale).
 *
 * Entries are immutable and a version names one write, so a reader that checks the mark
 * after reading the version needs nothing else: the mark only ever moves from 0 to a
 * version above every entry that exists then, and back to 0 once those are gone.
 */

import { H } from './layout.ts';

/** Is the entry of `version` older than the stale mark? */
export function markedStale(header: Int32Array, version: number): boolean {
  // acquire: pairs with the Atomics.store in setStaleMark.
  const mark = Atomics.load(header, H.STALE_BELOW) >>> 0;
  return mark !== 0 && ((version - mark) | 0) < 0;
}

/** Mark every entry written so far stale; returns the mark (the next version). */
export function setStaleMark(header: Int32Array): number {
  const next = (Atomics.load(header, H.VERSION_COUNTER) + 1) >>> 0 || 1;
  // release: every entry below `next` is already published.
  Atomics.store(header, H.STALE_BELOW, next | 0);
  return next;
}

/** Lift the mark (once no entry older than it is left to be judged by it). */
export function clearStaleMark(header: Int32Array): void {
  Atomics.store(header, H.STALE_BELOW, 0);
}

/** The mark, 0 if none. */
export function staleMark(header: Int32Array): number {
  return Atomics.load(header, H.STALE_BELOW) >>> 0;
}

/** How many versions have been handed out since `mark` (modulo 2^32). */
export function versionsSince(header: Int32Array, mark: number): number {
  return ((Atomics.load(header, H.VERSION_COUNTER) >>> 0) - mark + 1) >>> 0;
}
