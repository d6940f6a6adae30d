/**
 * The hot-key report (`tier.hotKeys()`, `GET /v1/hotkeys`): the L1's raw window counts
 * (l1/heat.ts) as rates a second, sorted and cut to the caller's limit; and the merge
 * of several processes' reports into the fleet's (hot-fleet.ts). Pure.
 */

import { optionError } from '../errors.ts';
import {
  type CounterCount,
  HEAT,
  HEAT_WINDOW_MS,
  type HotKeyCount,
  type NodeCount,
} from '../l1/index.ts';

export const HOT_SCOPES = ['process', 'cluster'] as const;
export type HotScope = (typeof HOT_SCOPES)[number];

export interface HotKeysOptions {
  /** How many keys (and counters) at most, 1–512 (default 10). */
  limit?: number;
  /**
   * 'process' (default): what this process answered. 'cluster': every live process's
   * published hot set (its top 32 keys and counters, every second), merged.
   */
  scope?: HotScope;
  /** For scope 'cluster': how long to wait for Redis (default requestTimeout). */
  timeout?: number | string;
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
  /** Scope 'cluster': how many processes' reports were merged. */
  processes?: number;
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

/** The scope option, checked. */
export function hotScopeOf(value: unknown): HotScope {
  if (value === undefined) return 'process';
  if (!HOT_SCOPES.includes(value as HotScope))
    throw optionError(`scope must be ${HOT_SCOPES.join(' or ')} (got ${JSON.stringify(value)})`);
  return value as HotScope;
}

export function hotKeysReport(
  raw: { keys: HotKeyCount[]; nodes: NodeCount[]; counters: CounterCount[] },
  limit: number,
): HotKeysReport {
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

const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Several processes' reports as one: rates summed per key, counter and master; a key's
 * hit ratio weighted by each process's reads of it. A key only some processes listed
 * counts what those saw (each publishes its own top).
 */
export function mergeReports(reports: readonly HotKeysReport[], limit: number): HotKeysReport {
  const keys = new Map<string, HotKey & { hits: number }>();
  const counters = new Map<string, number>();
  const nodes = new Map<string, HotNode>();
  for (const r of reports) {
    for (const k of r.keys) {
      const m = keys.get(k.key) ?? {
        ...k,
        readsPerSecond: 0,
        writesPerSecond: 0,
        hitRatio: null,
        hits: 0,
      };
      m.readsPerSecond += k.readsPerSecond;
      m.writesPerSecond += k.writesPerSecond;
      m.hits += (k.hitRatio ?? 0) * k.readsPerSecond;
      m.node ??= k.node;
      keys.set(k.key, m);
    }
    for (const c of r.counters)
      counters.set(c.name, (counters.get(c.name) ?? 0) + c.incrementsPerSecond);
    for (const n of r.nodes) {
      const m = nodes.get(n.node) ?? { node: n.node, readsPerSecond: 0, missesPerSecond: 0 };
      m.readsPerSecond += n.readsPerSecond;
      m.missesPerSecond += n.missesPerSecond;
      nodes.set(n.node, m);
    }
  }
  return {
    windowSeconds: HEAT_WINDOW_MS / 1000,
    processes: reports.length,
    keys: [...keys.values()]
      .map(({ hits, ...k }) => ({
        ...k,
        readsPerSecond: round2(k.readsPerSecond),
        writesPerSecond: round2(k.writesPerSecond),
        hitRatio:
          k.readsPerSecond === 0 ? null : Math.round((hits / k.readsPerSecond) * 10_000) / 10_000,
      }))
      .sort((a, b) => b.readsPerSecond - a.readsPerSecond || b.writesPerSecond - a.writesPerSecond)
      .slice(0, limit),
    counters: [...counters]
      .map(([name, rate]) => ({ name, incrementsPerSecond: round2(rate) }))
      .sort((a, b) => b.incrementsPerSecond - a.incrementsPerSecond)
      .slice(0, limit),
    nodes: [...nodes.values()]
      .map((n) => ({
        ...n,
        readsPerSecond: round2(n.readsPerSecond),
        missesPerSecond: round2(n.missesPerSecond),
      }))
      .sort((a, b) => b.readsPerSecond - a.readsPerSecond),
  };
}

/** The most keys (and counters) a published report may carry: more are passed over. */
const PUBLISHED_MAX = 64;
/** Longest key, counter or master name taken from a published report (its key's limit). */
const MAX_NAME_CHARS = 64 * 1024;

/** A report as another process published it (parsed JSON), checked; undefined if it is not one. */
export function parseReport(text: string): HotKeysReport | undefined {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    return undefined;
  }
  const o = r as Partial<HotKeysReport> | null;
  const isNum = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (
    o === null ||
    typeof o !== 'object' ||
    !Array.isArray(o.keys) ||
    !Array.isArray(o.counters) ||
    !Array.isArray(o.nodes)
  )
    return undefined;
  // Rebuilt from the fields this code knows, and bounded: a report is anyone's JSON in Redis.
  const keys: HotKey[] = [];
  for (const k of o.keys.slice(0, PUBLISHED_MAX)) {
    if (
      typeof k?.key !== 'string' ||
      k.key.length > MAX_NAME_CHARS ||
      !isNum(k.readsPerSecond) ||
      !isNum(k.writesPerSecond) ||
      !(k.hitRatio === null || (isNum(k.hitRatio) && k.hitRatio <= 1)) ||
      !Number.isInteger(k.slot) ||
      k.slot < 0 ||
      k.slot > 16383 ||
      !(k.node === null || (typeof k.node === 'string' && k.node.length <= MAX_NAME_CHARS))
    )
      continue;
    const key: HotKey = {
      key: k.key,
      readsPerSecond: k.readsPerSecond,
      writesPerSecond: k.writesPerSecond,
      hitRatio: k.hitRatio,
      slot: k.slot,
      node: k.node,
    };
    if (k.truncated === true) key.truncated = true;
    keys.push(key);
  }
  const counters: HotCounter[] = [];
  for (const c of o.counters.slice(0, PUBLISHED_MAX)) {
    if (
      typeof c?.name === 'string' &&
      c.name.length <= MAX_NAME_CHARS &&
      isNum(c.incrementsPerSecond)
    )
      counters.push({ name: c.name, incrementsPerSecond: c.incrementsPerSecond });
  }
  const nodes: HotNode[] = [];
  for (const n of o.nodes.slice(0, HEAT.NODES)) {
    if (
      typeof n?.node === 'string' &&
      n.node.length <= MAX_NAME_CHARS &&
      isNum(n.readsPerSecond) &&
      isNum(n.missesPerSecond)
    )
      nodes.push({
        node: n.node,
        readsPerSecond: n.readsPerSecond,
        missesPerSecond: n.missesPerSecond,
      });
  }
  return { windowSeconds: HEAT_WINDOW_MS / 1000, keys, counters, nodes };
}
