/**
 * The refresher's read batcher in front of the L2 client, against a real cluster. The
 * tests count GETs on the masters, so they use a cluster of their own that no other test
 * file touches. (Coalescing across threads is tested through the tier, tier.test.ts.)
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { L2Client } from '../../src/refresher/l2-client.ts';
import { ReadBatcher } from '../../src/refresher/read-batcher.ts';
import { commandCalls } from '../fixtures/commandstats.ts';
import { useOwnCluster } from '../fixtures/own-cluster.ts';
import { clusterClient } from '../fixtures/redis-clients.ts';

const totalGets = (seeds: string) => commandCalls(seeds, 'get');

const cluster = useOwnCluster();

async function readPath() {
  const seeds = cluster.seeds;
  const l2 = new L2Client({ redis: seeds });
  onTestFinished(() => l2.close());
  await l2.ready(10_000);
  const batcher = new ReadBatcher(l2);
  return { seeds, batcher, read: (key: string) => batcher.read(key) };
}

describe('read batcher → L2', () => {
  it('a burst of distinct keys in one turn goes out in batches of at most 512, one GET per key', async () => {
    const { seeds, batcher, read } = await readPath();
    const writer = clusterClient(seeds);
    const keys = Array.from({ length: 1000 }, (_, i) => `rp:burst:${i}`);
    await Promise.all(keys.map((k) => writer.set(k, k)));
    const before = await totalGets(seeds);
    const results = await Promise.all(keys.map(read));
    expect((await totalGets(seeds)) - before).toBe(1000);
    expect(batcher.batches).toBe(Math.ceil(1000 / 512));
    for (let i = 0; i < keys.length; i++) expect(results[i]?.toString()).toBe(keys[i]);
  });
});
