/**
 * The defaults of the tier's options, in one table. The tier's validation
 * (tier/options.ts), the refresher's Redis client, the gateway's --help and the README
 * all take them from here; test/unit/defaults.test.ts holds the README's tables and the
 * options' doc comments to it. The L1's own defaults belong to the L1 (l1/layout.ts,
 * which imports nothing): this table reads them.
 */

import { L1_DEFAULTS } from './l1/layout.ts';
import { formatBytes, formatDuration } from './units.ts';

type Default =
  | { readonly kind: 'duration' | 'size' | 'count'; readonly value: number }
  | { readonly kind: 'name'; readonly value: string }
  | { readonly kind: 'switch'; readonly value: boolean };

export const TIER_DEFAULTS = {
  l1Bytes: { kind: 'size', value: 64 * 1024 * 1024 },
  memoBytes: { kind: 'size', value: 4 * 1024 * 1024 },
  softTtl: { kind: 'duration', value: 3000 },
  staleTtl: { kind: 'duration', value: 30_000 },
  negativeTtl: { kind: 'duration', value: 1000 },
  codec: { kind: 'name', value: 'msgpack' },
  maxKeyBytes: { kind: 'count', value: L1_DEFAULTS.maxKeyBytes },
  maxValueBytes: { kind: 'size', value: L1_DEFAULTS.maxValueBytes },
  maxThreads: { kind: 'count', value: L1_DEFAULTS.maxThreads },
  maxInFlight: { kind: 'count', value: 10_000 },
  maxWaiting: { kind: 'count', value: 100_000 },
  requestTimeout: { kind: 'duration', value: 1000 },
  l2Timeout: { kind: 'duration', value: 250 },
  connectTimeout: { kind: 'duration', value: 1000 },
  loaderTimeout: { kind: 'duration', value: 5000 },
  slotsRefreshInterval: { kind: 'duration', value: 2000 },
  breakerThreshold: { kind: 'count', value: 5 },
  breakerCooldown: { kind: 'duration', value: 1000 },
  counterShards: { kind: 'count', value: 16 },
  /** Fewer for an l1Bytes under 64 MiB (the L1's defaultMaxCounters). */
  maxCounters: { kind: 'count', value: L1_DEFAULTS.maxCounters },
  flushInterval: { kind: 'duration', value: 100 },
  counterMarkTtl: { kind: 'duration', value: 86_400_000 },
  coherence: { kind: 'switch', value: true },
  /** Off when l1Bytes is under 4 MiB (the L1's HOT_KEYS_MIN_BYTES), unless asked for. */
  hotKeys: { kind: 'switch', value: true },
  hotThreshold: { kind: 'count', value: 1000 },
} as const satisfies Record<string, Default>;

export type DefaultedOption = keyof typeof TIER_DEFAULTS;

/** A default as users write it: `3s`, `64mb`, `1024`, `msgpack`, `on`. */
export function shownDefault(option: DefaultedOption): string {
  const d: Default = TIER_DEFAULTS[option];
  if (d.kind === 'switch') return d.value ? 'on' : 'off';
  if (d.kind === 'duration') return formatDuration(d.value);
  if (d.kind === 'size') return formatBytes(d.value);
  return String(d.value);
}
