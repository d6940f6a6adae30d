/**
 * The refresher's read batcher in front of the L2 client, against a real cluster. The
 * tests count GETs on the masters, so they use a cluster of their own that no other test
 * file touches. (Coalescing across threads is tested through the tier, tier.test.ts.)
 */
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it, onTestFinished } from 'vitest';
import { L2Client } from '../../src/refresher/l2-client.ts';
import { ReadBatcher } from '../../src/refresher/read-batcher.ts';
import { commandCalls } from '../fixtures/redis/commandstats.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';

const totalGets = (seeds: string) => commandCalls(seeds, 'get');

const cluster = useOwnCluster();

async function readPath() {
  const seeds = cluster.seeds;
  const l2 = new L2Client({ redis: seeds });
  onTestFinished(() => l2.close());
  await l2.ready(10_000);
  const sent = { batches: 0 };
  const batcher = new ReadBatcher(l2, 512, () => sent.batches++);
  return { seeds, sent, read: (key: string) => batcher.read(key) };
}

describe('read batcher → L2', () => {
  it('a burst of distinct keys in one turn goes out in batches of at most 512, one GET per key', async () => {
    const { seeds, sent, read } = await readPath();
    const writer = clusterClient(seeds);
    const keys = Array.from({ length: 1000 }, (_, i) => `rp:burst:${i}`);
    await Promise.all(keys.map((k) => writer.set(k, k)));
    const before = await totalGets(seeds);
    const results = await Promise.all(keys.map(read));
    expect((await totalGets(seeds)) - before).toBe(1000);
    expect(sent.batches).toBe(Math.ceil(1000 / 512));
    for (let i = 0; i < keys.length; i++) expect(results[i]?.toString()).toBe(keys[i]);
  });

  it('keys of healthy masters are answered without waiting for a hung one in the same batch', async () => {
    const { read } = await readPath();
    const redis = clusterClient(cluster.seeds);
    await redis.cluster('SLOTS');
    // One key per master, all asked for in the same turn (one batch).
    const byMaster = new Map<string, string>();
    for (let i = 0; byMaster.size < 3; i++) {
      const key = `rp:part:${i}`;
      const owner = redis.slots[calculateSlot(key)][0];
      if (!byMaster.has(owner)) byMaster.set(owner, key);
    }
    const [hungOwner, hungKey] = [...byMaster][0];
    const hung = cluster.nodes.find((n) => `127.0.0.1:${n.port}` === hungOwner);
    if (hung === undefined) throw new Error(`no node ${hungOwner}`);
    process.kill(hung.pid, 'SIGSTOP');
    try {
      const order: string[] = [];
      await Promise.all([...byMaster.values()].map((key) => read(key).then(() => order.push(key))));
      // The hung master's key settles last (at the deadline); the others before it.
      expect(order.at(-1)).toBe(hungKey);
      expect(order).toHaveLength(3);
    } finally {
      process.kill(hung.pid, 'SIGCONT');
    }
  });
});
