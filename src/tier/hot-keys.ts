/**
 * The hot-key report (`tier.hotKeys()`, `GET /v1/hotkeys`): the L1's raw window counts
 * (l1/heat.ts) as rates a second, sorted and cut to the caller's limit. Pure.
 */

import { optionError } from '../errors.ts';
import {
  type CounterCount,
  HEAT,
  HEAT_WINDOW_MS,
  type HotKeyCount,
  type NodeCount,
} from '../l1/index.ts';

export interface HotKeysOptions {
  /** How many keys (and counters) at most, 1–512 (default 10). */
  limit?: number;
}

export interface HotKey {
  key: string;
  readsPerSecond: number;
  writesPerSecond: number;
  /** Reads answered from L1 (fresh or stale) over all reads; null with no reads. */
  hitRatio: number | null;
  slot: number;
  /** The master owning the slot (`host:port`); null while the slot map is not known. */
  node: string | null;
  /** Present (true) when the key is longer than the 128 bytes kept of it: `key` is its start. */
  truncated?: true;
}

export interface HotCounter {
  name: string;
  incrementsPerSecond: number;
}

export interface HotNode {
  node: string;
  readsPerSecond: number;
  missesPerSecond: number;
}

export interface HotKeysReport {
  windowSeconds: number;
  keys: HotKey[];
  counters: HotCounter[];
  nodes: HotNode[];
}

export const DEFAULT_HOT_LIMIT = 10;

/**
 * The shortest window a rate is divided by: a key that turned hot 100 ms ago with a
 * burst of 200 reads is at 200/s, not 2,000/s, until a second has passed.
 */
const MIN_WINDOW_MS = 1000;

/** Events a second over `windowMs` (at least MIN_WINDOW_MS), to two decimals. */
export function ratePerSecond(events: number, windowMs: number): number {
  return Math.round((events * 100_000) / Math.max(windowMs, MIN_WINDOW_MS)) / 100;
}

/** The limit option, checked: a positive integer up to the records the table has. */
export function hotLimitOf(value: unknown): number {
  if (value === undefined) return DEFAULT_HOT_LIMIT;
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > HEAT.RECORDS)
    throw optionError(
      `limit must be an integer from 1 to ${HEAT.RECORDS} (got ${JSON.stringify(value)})`,
    );
  return value as number;
}

function hotKey(c: HotKeyCount): HotKey {
  const reads = c.hits + c.stale + c.misses;
  const key: HotKey = {
    key: c.key,
    readsPerSecond: ratePerSecond(reads, c.windowMs),
    writesPerSecond: ratePerSecond(c.writes, c.windowMs),
    hitRatio: reads === 0 ? null : Math.round(((c.hits + c.stale) * 10_000) / reads) / 10_000,
    slot: c.slot,
    node: c.node ?? null,
  };
  if (c.truncated) key.truncated = true;
  return key;
}

/** Counters named by several cells (a slow creator, see l1/counters.ts) are one counter. */
function hotCounters(counts: CounterCount[], limit: number): HotCounter[] {
  const byName = new Map<string, number>();
  for (const c of counts) {
    const rate = ratePerSecond(c.increments, c.windowMs);
    byName.set(c.name, (byName.get(c.name) ?? 0) + rate);
  }
  return [...byName]
    .map(([name, incrementsPerSecond]) => ({ name, incrementsPerSecond }))
    .filter((c) => c.incrementsPerSecond > 0)
    .sort((a, b) => b.incrementsPerSecond - a.incrementsPerSecond)
    .slice(0, limit);
}

export function hotKeysReport(
  raw: { keys: HotKeyCount[]; nodes: NodeCount[]; counters: CounterCount[] },
  options: HotKeysOptions,
): HotKeysReport {
  if (options === null || typeof options !== 'object')
    throw optionError('hotKeys options must be an object: { limit }');
  const limit = hotLimitOf(options.limit);
  const keys = raw.keys
    .map(hotKey)
    .sort((a, b) => b.readsPerSecond - a.readsPerSecond || b.writesPerSecond - a.writesPerSecond)
    .slice(0, limit);
  const nodes = raw.nodes
    .map((n) => ({
      node: n.node,
      readsPerSecond: ratePerSecond(n.reads, n.windowMs),
      missesPerSecond: ratePerSecond(n.misses, n.windowMs),
    }))
    .sort((a, b) => b.readsPerSecond - a.readsPerSecond);
  return {
    windowSeconds: HEAT_WINDOW_MS / 1000,
    keys,
    counters: hotCounters(raw.counters, limit),
    nodes,
  };
}
