/**
 * Creating a table: validate the options, size every region from the byte budget, and
 * allocate one SharedArrayBuffer that never grows. The handle is a plain object holding
 * the buffer, so it passes through `workerData` or `postMessage` to any thread.
 */

import { monotonicMs } from './clock.ts';
import { L1Error } from './errors.ts';
import { ADMIT_FLOOR } from './heat.ts';
import {
  defaultMaxCounters,
  HOT_KEYS_MIN_BYTES,
  HW,
  L1_DEFAULTS,
  type Layout,
  planLayout,
  writeHeader,
} from './layout.ts';

/** A table: plain data holding its buffer, for workerData or postMessage to any thread. */
export interface L1Handle {
  readonly sab: SharedArrayBuffer;
}

export interface L1Options {
  /** Byte budget for counters, index and entries; the buffer is this plus a fixed header. */
  bytes: number;
  /** Longest key in UTF-8 bytes (default 1024). */
  maxKeyBytes?: number;
  /** Largest value in bytes (default 1 MiB); larger ones are refused, not cached. */
  maxValueBytes?: number;
  /** Threads that may attach at once (default 64). */
  maxThreads?: number;
  /** Hot-key detection: 256 KiB of the budget (default: on from 4 MiB of budget). */
  hotKeys?: boolean;
  /** Counter cells, a power of two, 256 B each, inside the budget (default 4096, fewer for budgets under 64 MiB: see defaultMaxCounters). */
  maxCounters?: number;
}

const KNOWN = new Set([
  'bytes',
  'maxKeyBytes',
  'maxValueBytes',
  'maxThreads',
  'maxCounters',
  'hotKeys',
]);

export function createL1(options: L1Options): L1Handle {
  if (options === null || typeof options !== 'object') {
    throw new L1Error(
      'HS_ERR_L1_OPTION',
      'createL1 options must be an object with at least { bytes }',
    );
  }
  for (const k of Object.keys(options)) {
    if (!KNOWN.has(k)) throw new L1Error('HS_ERR_L1_OPTION', `unknown L1 option ${k}`);
  }
  if (options.hotKeys !== undefined && typeof options.hotKeys !== 'boolean')
    throw new L1Error('HS_ERR_L1_OPTION', 'L1 option hotKeys must be true or false');
  const layout = planLayout({
    bytes: options.bytes,
    maxKeyBytes: options.maxKeyBytes ?? L1_DEFAULTS.maxKeyBytes,
    maxValueBytes: options.maxValueBytes ?? L1_DEFAULTS.maxValueBytes,
    maxThreads: options.maxThreads ?? L1_DEFAULTS.maxThreads,
    maxCounters: options.maxCounters ?? defaultMaxCounters(options.bytes),
    hotKeys: options.hotKeys ?? options.bytes >= HOT_KEYS_MIN_BYTES,
  });
  const sab = new SharedArrayBuffer(layout.totalBytes);
  const seed = crypto.getRandomValues(new Uint32Array(2));
  writeHeader(sab, layout, seed, monotonicMs());
  if (layout.heatBytes > 0) initHeat(sab, layout);
  return Object.freeze({ sab });
}

/** The bar a key's sketch estimate must reach before any keeper has set one. */
function initHeat(sab: SharedArrayBuffer, layout: Layout): void {
  const header = new Int32Array(sab, layout.heatOffset, HW.TICKS + 1);
  Atomics.store(header, HW.ADMIT, ADMIT_FLOOR);
}
