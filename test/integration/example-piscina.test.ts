/**
 * examples/piscina: a pool of workers reading hot keys through one shared tier costs
 * Redis one GET per key per soft TTL for the whole pool; the same pool with a cache per
 * worker costs one per key per worker. Counted with INFO commandstats on a cluster of
 * the test's own.
 */
import { expect, it } from 'vitest';
import { runExample, seedKeys } from '../../examples/piscina/main.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';

const cluster = useOwnCluster();

it('the shared tier asks Redis once per key per soft TTL for the whole pool; per-worker caches once per worker', async () => {
  const keys = Array.from({ length: 5 }, (_, i) => `ex:product:${i}`);
  await seedKeys(cluster.seeds, keys);
  const common = { seeds: cluster.seeds, workers: 4, lookups: 8000, keys, softTtlMs: 10_000 };

  const shared = await runExample({ ...common, mode: 'shared' });
  expect(shared.wrong).toBe(0);
  const ttlPeriods = 1 + Math.floor(shared.ms / common.softTtlMs);
  expect(shared.redisGets).toBe(keys.length * ttlPeriods);

  const perWorker = await runExample({ ...common, mode: 'per-worker' });
  expect(perWorker.wrong).toBe(0);
  expect(perWorker.redisGets).toBeGreaterThan(shared.redisGets);
  expect(perWorker.redisGets).toBeLessThanOrEqual(keys.length * common.workers);
});
