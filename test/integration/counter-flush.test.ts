/**
 * The idempotent counter flush (L2Client.flushShard) against a real cluster: a flush is
 * applied at most once per (writer, seq), whatever retries and re-sends happen, and its
 * bookkeeping stays in the shard's slot with a bounded lifetime. Shard keys land on every
 * master.
 */
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it, onTestFinished } from 'vitest';
import { flushMarkKeyOf, shardKeysFor } from '../../src/counters/shard-keys.ts';
import { L2Client } from '../../src/refresher/l2-client.ts';
import { useOwnCluster } from '../fixtures/own-cluster.ts';
import { clusterClient } from '../fixtures/redis-clients.ts';

const cluster = useOwnCluster();

async function client(): Promise<L2Client> {
  const l2 = new L2Client({ redis: cluster.seeds });
  onTestFinished(() => l2.close());
  await l2.ready(10_000);
  return l2;
}

describe('counter shards on a live cluster', () => {
  it('six shards of one counter are owned two by each of the three masters', async () => {
    const redis = clusterClient(cluster.seeds);
    await redis.cluster('SLOTS');
    const owners = shardKeysFor('likes:video:7', 6).map((k) => redis.slots[calculateSlot(k)][0]);
    const per = new Map<string, number>();
    for (const o of owners) per.set(o, (per.get(o) ?? 0) + 1);
    expect([...per.values()]).toEqual([2, 2, 2]);
    expect(per.size).toBe(3);
  });

  it('a flush is applied once per (writer, seq): a retry with the same seq changes nothing', async () => {
    const l2 = await client();
    const [shard] = shardKeysFor('c:once', 1);
    const mark = flushMarkKeyOf(shard);
    const first = await l2.flushShard(shard, mark, 'gw-a', 1, 5n, 60_000);
    expect(first).toEqual({ applied: true, value: 5n });
    // The reply was lost and the flusher (or ioredis) sends it again: no double count.
    expect(await l2.flushShard(shard, mark, 'gw-a', 1, 5n, 60_000)).toEqual({
      applied: false,
      value: 5n,
    });
    // An older seq is a duplicate too; the next seq applies.
    expect((await l2.flushShard(shard, mark, 'gw-a', 2, 3n, 60_000)).applied).toBe(true);
    expect((await l2.flushShard(shard, mark, 'gw-a', 1, 5n, 60_000)).applied).toBe(false);
    // Another writer has its own sequence.
    expect(await l2.flushShard(shard, mark, 'gw-b', 1, -1n, 60_000)).toEqual({
      applied: true,
      value: 7n,
    });
    const redis = clusterClient(cluster.seeds);
    expect(await redis.get(shard)).toBe('7');
    expect(await redis.hgetall(mark)).toEqual({ 'gw-a': '2', 'gw-b': '1' });
    const ttl = await redis.pttl(mark);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('concurrent re-sends of the same flush from many connections still count it once', async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => client()));
    const [shard] = shardKeysFor('c:race', 1);
    const mark = flushMarkKeyOf(shard);
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        clients[i % 4].flushShard(shard, mark, 'gw-x', 1, 10n, 60_000),
      ),
    );
    expect(outcomes.filter((o) => o.applied)).toHaveLength(1);
    expect(await clusterClient(cluster.seeds).get(shard)).toBe('10');
  });

  it('counts beyond 2^53 exactly (values travel as strings)', async () => {
    const l2 = await client();
    const [shard] = shardKeysFor('c:big', 1);
    const mark = flushMarkKeyOf(shard);
    const big = 2n ** 60n + 1n;
    expect((await l2.flushShard(shard, mark, 'gw', 1, big, 60_000)).value).toBe(big);
    expect((await l2.flushShard(shard, mark, 'gw', 2, 2n, 60_000)).value).toBe(big + 2n);
  });
});
