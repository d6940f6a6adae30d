/**
 * Part 4 of `bench/l1.ts`: hit ratio of a read-through cache (get; on a miss, set) on a
 * Zipf trace, hotshield's L1 against lru-cache given the same byte budget, plus a static
 * cache preloaded with the most popular keys as a reference for what the budget allows.
 */

import { LRUCache } from 'lru-cache';
import { L1Table, L1Writer } from '../../src/l1/index.ts';
import { makeKeys, makeValues } from './keys.ts';
import { newTable, SET_OPTIONS } from './l1-tables.ts';
import { prng } from './prng.ts';
import { progress } from './report.ts';
import { zipfTrace } from './zipf.ts';

export interface HitRatioOptions {
  readonly keys: number;
  readonly requests: number;
  /** Zipf exponent. */
  readonly s: number;
  readonly valueBytes: number;
  /** Cache budget as a fraction of the working set's key + value bytes. */
  readonly budgetFraction: number;
}

interface Counted {
  hits: number;
  /** Hits in the second half of the trace, once the cache has warmed up. */
  hitsLate: number;
}

/** Replay `trace` through `lookup` (true on a hit, which must insert on a miss). */
function replay(requests: Uint32Array, keys: string[], lookup: (key: string) => boolean): Counted {
  const half = requests.length >> 1;
  const c = { hits: 0, hitsLate: 0 };
  for (let i = 0; i < requests.length; i++) {
    if (lookup(keys[requests[i]])) {
      c.hits++;
      if (i >= half) c.hitsLate++;
    }
  }
  return c;
}

export function hitRatio(o: HitRatioOptions) {
  progress(`zipf(${o.s}): ${o.requests} requests over ${o.keys} keys`);
  const keys = makeKeys(o.keys, 4);
  const trace = zipfTrace(o.keys, o.s, o.requests, prng(5));
  const workingSetBytes = keys.reduce((sum, k) => sum + k.length + o.valueBytes, 0);
  const budget = Math.floor(workingSetBytes * o.budgetFraction);
  const value = makeValues(1, o.valueBytes)[0];
  const secondHalf = o.requests - (o.requests >> 1);

  const handle = newTable(budget, o.valueBytes);
  const writer = L1Writer.open(handle);
  const table = L1Table.attach(handle);
  let l1Refused = 0;
  let t0 = performance.now();
  const l1 = replay(trace.requests, keys, (key) => {
    if (table.get(key) !== undefined) return true;
    if (writer.set(key, value, SET_OPTIONS) === 0) l1Refused++;
    return false;
  });
  const l1Ms = performance.now() - t0;
  const l1Stats = table.stats();
  table.close();
  writer.close();

  const lru = new LRUCache<string, Buffer>({
    maxSize: budget,
    sizeCalculation: (v, k) => v.length + k.length,
  });
  t0 = performance.now();
  const lruCounts = replay(trace.requests, keys, (key) => {
    if (lru.get(key) !== undefined) return true;
    lru.set(key, value);
    return false;
  });
  const lruMs = performance.now() - t0;

  // The most popular keys that fit the budget, counting key + value bytes like lru-cache.
  let topK = 0;
  for (let used = 0; topK < o.keys; topK++) {
    used += keys[trace.rankToKey[topK]].length + o.valueBytes;
    if (used > budget) break;
  }
  const inTop = new Uint8Array(o.keys);
  for (let r = 0; r < topK; r++) inTop[trace.rankToKey[r]] = 1;
  let staticHits = 0;
  let topOne = 0;
  for (const k of trace.requests) {
    staticHits += inTop[k];
    if (k === trace.rankToKey[0]) topOne++;
  }
  return {
    ...o,
    workingSetBytes,
    budgetBytes: budget,
    sampler: {
      topKeyShareExpected: trace.topProbability,
      topKeyShareObserved: topOne / o.requests,
    },
    l1: {
      hitRatio: l1.hits / o.requests,
      hitRatioSecondHalf: l1.hitsLate / secondHalf,
      entries: l1Stats.entries,
      inserts: l1Stats.inserts,
      evictions: l1Stats.evictions,
      promotions: l1Stats.promotions,
      reinsertions: l1Stats.reinsertions,
      refused: l1Refused,
      bytesUsed: l1Stats.bytesUsed,
      ms: l1Ms,
    },
    lru: {
      hitRatio: lruCounts.hits / o.requests,
      hitRatioSecondHalf: lruCounts.hitsLate / secondHalf,
      entries: lru.size,
      calculatedSize: lru.calculatedSize,
      ms: lruMs,
    },
    staticTopK: { keys: topK, hitRatio: staticHits / o.requests },
  };
}

export type HitRatioResult = ReturnType<typeof hitRatio>;
