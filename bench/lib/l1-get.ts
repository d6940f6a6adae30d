/**
 * Part 1 of `bench/l1.ts`: get-hit on one thread. One table per value size, filled with
 * every key (all lookups hit), next to a Map and an lru-cache holding the same Buffers.
 */

import { LRUCache } from 'lru-cache';
import { type L1Handle, L1Table, L1Writer } from '../../src/l1/index.ts';
import { makeOrder, makeValues } from './keys.ts';
import { newTable, roomyTableBytes, SET_OPTIONS, TTL_MS } from './l1-tables.ts';
import { expectHits, l1GetFresh, lruGetFresh, mapGetCached, mapGetFresh } from './loops.ts';
import {
  type Contender,
  measureInterleaved,
  type Plan,
  type Summary,
  summarize,
} from './measure.ts';
import { formatBytes, progress } from './report.ts';

export const GET = {
  l1: 'hotshield L1 get (fresh key)',
  mapCached: 'Map.get (cached key)',
  mapFresh: 'Map.get (fresh key)',
  lru: 'lru-cache get, ttl (fresh key)',
} as const;

export interface GetResult {
  readonly valueBytes: number;
  /** The filled table, reused by the threads part; `table` is this thread's attachment. */
  readonly handle: L1Handle;
  readonly table: L1Table;
  readonly rows: Summary[];
}

export function getOneThread(
  keys: string[],
  urls: string[],
  valueBytes: number,
  plan: Plan,
  orderLength: number,
): GetResult {
  const handle = newTable(roomyTableBytes(keys.length, valueBytes), valueBytes);
  const writer = L1Writer.open(handle);
  const values = makeValues(keys.length, valueBytes);
  keys.forEach((k, i) => {
    if (writer.set(k, values[i], SET_OPTIONS) === 0) throw new Error(`L1 refused ${k}`);
  });
  if (writer.size !== keys.length) throw new Error(`L1 holds ${writer.size} of ${keys.length}`);
  writer.close();
  const table = L1Table.attach(handle);
  const map = new Map(keys.map((k, i) => [k, values[i]]));
  const lru = new LRUCache<string, Buffer>({ max: keys.length, ttl: TTL_MS });
  for (const [k, v] of map) lru.set(k, v);

  const order = makeOrder(orderLength, keys.length, 1);
  const check = expectHits(valueBytes);
  const contenders: Contender[] = [
    { name: GET.l1, run: l1GetFresh(table, urls, order), check },
    { name: GET.mapCached, run: mapGetCached(map, keys, order), check },
    { name: GET.mapFresh, run: mapGetFresh(map, urls, order), check },
    { name: GET.lru, run: lruGetFresh(lru, urls, order), check },
  ];
  for (const c of contenders) check(c.run(keys.length), keys.length);
  progress(`get-hit, 1 thread, ${formatBytes(valueBytes)} values`);
  const rows = measureInterleaved(contenders, plan, progress).map(summarize);
  const misses = table.stats().misses;
  if (misses !== 0) throw new Error(`L1 reported ${misses} misses`);
  return { valueBytes, handle, table, rows };
}
