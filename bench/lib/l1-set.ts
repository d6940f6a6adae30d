/**
 * Part 3 of `bench/l1.ts`: the writer's `set`, next to Map and lru-cache sets.
 *
 * - overwrite: the 10k keys, all present, rewritten in pseudo-random order;
 * - insert + evict: a pool of unique keys cycled in order, several times more keys than
 *   either cache holds, into caches filled by one lap of the pool before timing, so
 *   every set inserts a key that is not there and evicts another.
 */

import { LRUCache } from 'lru-cache';
import { L1Table, L1Writer } from '../../src/l1/index.ts';
import { makeKeys, makeOrder, makeUrls, makeValues } from './keys.ts';
import { newTable, roomyTableBytes, SET_OPTIONS, TTL_MS } from './l1-tables.ts';
import { l1SetFresh, lruSetFresh, mapSetFresh } from './loops.ts';
import { measureInterleaved, type Plan, type Summary, summarize } from './measure.ts';
import { formatBytes, progress } from './report.ts';

export interface WriterStats {
  readonly entries: number;
  readonly inserts: number;
  readonly updates: number;
  readonly evictions: number;
  readonly refused: number;
}

export interface SetResult {
  readonly valueBytes: number;
  readonly tableBytes: number;
  readonly overwrite: Summary[];
  readonly overwriteL1: WriterStats;
  readonly insert: Summary[];
  readonly insertL1: WriterStats;
  readonly insertLruEntries: number;
}

function writerStats(handle: L1Table): WriterStats {
  const s = handle.stats();
  return {
    entries: s.entries,
    inserts: s.inserts,
    updates: s.updates,
    evictions: s.evictions,
    refused: s.refusedBusy + s.refusedNoSlot + s.refusedTooLarge,
  };
}

/** 16 distinct values (a power of two: the loops cycle through them with a mask). */
const VALUE_VARIANTS = 16;

export function setCases(
  keys: string[],
  urls: string[],
  valueBytes: number,
  plan: Plan,
  orderLength: number,
  insertKeyPool: number,
): SetResult {
  const values = makeValues(VALUE_VARIANTS, valueBytes);
  const valueFor = (i: number) => values[i % VALUE_VARIANTS];
  const bytes = roomyTableBytes(keys.length, valueBytes);

  const ow = newTable(bytes, valueBytes);
  const owWriter = L1Writer.open(ow);
  const map = new Map<string, Buffer>();
  const lru = new LRUCache<string, Buffer>({ max: keys.length, ttl: TTL_MS });
  keys.forEach((k, i) => {
    owWriter.set(k, valueFor(i), SET_OPTIONS);
    map.set(k, valueFor(i));
    lru.set(k, valueFor(i));
  });
  const order = makeOrder(orderLength, keys.length, 2);
  progress(`set, overwrite ${keys.length} keys, ${formatBytes(valueBytes)} values`);
  const overwrite = measureInterleaved(
    [
      {
        name: 'hotshield L1Writer.set',
        run: l1SetFresh(owWriter, urls, order, values, SET_OPTIONS),
      },
      { name: 'Map.set', run: mapSetFresh(map, urls, order, values) },
      { name: 'lru-cache set, ttl', run: lruSetFresh(lru, urls, order, values) },
    ],
    plan,
    progress,
  ).map(summarize);

  const poolKeys = makeKeys(insertKeyPool, 3, 10_000_000);
  const poolUrls = makeUrls(poolKeys);
  const cycle = Uint32Array.from({ length: insertKeyPool }, (_, i) => i);
  const ins = newTable(bytes, valueBytes);
  const insWriter = L1Writer.open(ins);
  const lruBytes = new LRUCache<string, Buffer>({
    maxSize: bytes,
    sizeCalculation: (v, k) => v.length + k.length,
  });
  poolKeys.forEach((k, i) => {
    insWriter.set(k, valueFor(i), SET_OPTIONS);
    lruBytes.set(k, valueFor(i));
  });
  progress(`set, insert with eviction, ${formatBytes(valueBytes)} values`);
  const insert = measureInterleaved(
    [
      {
        name: 'hotshield L1Writer.set',
        run: l1SetFresh(insWriter, poolUrls, cycle, values, SET_OPTIONS),
      },
      {
        name: `lru-cache set, maxSize ${formatBytes(bytes)}`,
        run: lruSetFresh(lruBytes, poolUrls, cycle, values),
      },
    ],
    plan,
    progress,
  ).map(summarize);

  owWriter.close();
  insWriter.close();
  const owTable = L1Table.attach(ow);
  const insTable = L1Table.attach(ins);
  const result = {
    valueBytes,
    tableBytes: bytes,
    overwrite,
    overwriteL1: writerStats(owTable),
    insert,
    insertL1: writerStats(insTable),
    insertLruEntries: lruBytes.size,
  };
  owTable.close();
  insTable.close();
  return result;
}
