/**
 * The usual alternative, for comparison: each piscina worker keeps its own lru-cache
 * (same soft TTL) in front of its own ioredis Cluster client. Every worker has to warm
 * its own copy, so Redis sees one GET per key per worker.
 */
import { workerData } from 'node:worker_threads';
import { Cluster } from 'ioredis';
import { LRUCache } from 'lru-cache';

const { seeds, ttlMs } = workerData as { seeds: string; ttlMs: number };
const redis = new Cluster(seeds.split(','));
const cache = new LRUCache<string, string>({ max: 10_000, ttl: ttlMs });

export default async function lookup({ key }: { key: string }): Promise<unknown> {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const value = await redis.get(key);
  if (value !== null) cache.set(key, value);
  return value ?? undefined;
}
