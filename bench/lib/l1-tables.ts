/** How the L1 benchmarks create their tables, and the TTL every entry gets. */

import { createL1, type L1Handle, type L1SetOptions } from '../../src/l1/index.ts';
import { MAX_KEY_BYTES } from './keys.ts';

/** Long enough that nothing expires during a run; the TTL checks on get happen anyway. */
export const TTL_MS = 3_600_000;
export const SET_OPTIONS: L1SetOptions = { softTtlMs: TTL_MS };

/** Entry header in the arena (src/l1/layout.ts); used only to size tables generously. */
const L1_ENTRY_HEADER_BYTES = 56;
/** The benchmarks use no counters; the default 4096 cells would take 512 KiB of budget. */
const L1_COUNTERS = 64;

/** A budget that holds `entries` values of `valueBytes` with room to spare (no eviction needed). */
export function roomyTableBytes(entries: number, valueBytes: number): number {
  const perEntry = L1_ENTRY_HEADER_BYTES + MAX_KEY_BYTES + valueBytes;
  return Math.max(8 * 2 ** 20, 2 * entries * perEntry);
}

export function newTable(bytes: number, valueBytes: number): L1Handle {
  return createL1({
    bytes,
    maxKeyBytes: MAX_KEY_BYTES,
    maxValueBytes: valueBytes,
    maxCounters: L1_COUNTERS,
  });
}
