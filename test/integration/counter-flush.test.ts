/**
 * The idempotent counter flush (L2Client.flushMany) against a real cluster: a flush is
 * applied at most once per (writer, seq), whatever retries and re-sends happen, and its
 * bookkeeping stays in the shard's slot with a bounded lifetime. Shard keys land on every
 * master.
 */
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it, onTestFinished } from 'vitest';
import { HotshieldError } from '../../src/errors.ts';
import { flushMarkKeyOf, shardKeysFor } from '../../src/keys/shard-keys.ts';
import type { ShardFlush } from '../../src/refresher/counter-scripts.ts';
import { L2Client } from '../../src/refresher/l2-client.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';

const cluster = useOwnCluster();

async function client(): Promise<L2Client> {
  const l2 = new L2Client({ redis: cluster.seeds });
  onTestFinished(() => l2.close());
  await l2.ready(10_000);
  return l2;
}

/** One flush, sent alone: true if applied, false if a duplicate; a failure throws. */
async function flushOne(l2: L2Client, flush: ShardFlush, markTtlMs: number): Promise<boolean> {
  const [applied] = await l2.flushMany([flush], markTtlMs);
  if (applied instanceof HotshieldError) throw applied;
  return applied;
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
    const a = flushMarkKeyOf(shard, 'gw-a');
    const flush = (markKey: string, seq: bigint, delta: bigint) =>
      flushOne(l2, { shardKey: shard, markKey, seq, delta }, 60_000);
    expect(await flush(a, 1n, 5n)).toBe(true);
    // The reply was lost and the flusher (or ioredis) sends it again: no double count.
    expect(await flush(a, 1n, 5n)).toBe(false);
    // An older seq is a duplicate too; the next seq applies.
    expect(await flush(a, 2n, 3n)).toBe(true);
    expect(await flush(a, 1n, 5n)).toBe(false);
    // Another writer has its own sequence.
    const b = flushMarkKeyOf(shard, 'gw-b');
    expect(await flush(b, 1n, -1n)).toBe(true);
    const redis = clusterClient(cluster.seeds);
    expect(await redis.get(shard)).toBe('7');
    expect([await redis.get(a), await redis.get(b)]).toEqual(['2', '1']);
    // The mark is in the shard's slot and expires on its own.
    expect(calculateSlot(a)).toBe(calculateSlot(shard));
    const ttl = await redis.pttl(a);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('a duplicate renews the mark: a flush re-sent for longer than the mark TTL still counts once', async () => {
    const l2 = await client();
    const [shard] = shardKeysFor('c:renew', 1);
    const flush = { shardKey: shard, markKey: flushMarkKeyOf(shard, 'gw-r'), seq: 1n, delta: 5n };
    expect(await flushOne(l2, flush, 600)).toBe(true);
    // Its replies are lost, so the flusher re-sends it, every 400 ms here, for 1.2 s in
    // all: twice the mark's TTL. Every re-send is a duplicate that renews the mark.
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 400));
      expect(await flushOne(l2, flush, 600)).toBe(false);
    }
    expect(await clusterClient(cluster.seeds).get(shard)).toBe('5');
  });

  it('concurrent re-sends of the same flush from many connections still count it once', async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => client()));
    const [shard] = shardKeysFor('c:race', 1);
    const markKey = flushMarkKeyOf(shard, 'gw-x');
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        flushOne(clients[i % 4], { shardKey: shard, markKey, seq: 1n, delta: 10n }, 60_000),
      ),
    );
    expect(outcomes.filter((applied) => applied)).toHaveLength(1);
    expect(await clusterClient(cluster.seeds).get(shard)).toBe('10');
  });

  it('flushes and reads many shards in one pipeline per master; counts beyond 2^53 stay exact', async () => {
    const l2 = await client();
    const shards = shardKeysFor('c:big', 6);
    const big = 2n ** 60n + 1n;
    const flushes = shards.map((shardKey, i) => ({
      shardKey,
      markKey: flushMarkKeyOf(shardKey, 'gw'),
      seq: 1n,
      delta: big + BigInt(i),
    }));
    expect(await l2.flushMany(flushes, 60_000)).toEqual(shards.map(() => true));
    const reads = await l2.readShards(
      shards.map((shardKey, i) => ({
        shardKey,
        markKeys:
          i === 0 ? [flushMarkKeyOf(shardKey, 'gw'), flushMarkKeyOf(shardKey, 'nobody')] : [],
      })),
    );
    expect(reads[0]).toEqual({ value: big, marks: [1n, 0n] });
    expect(reads.map((r) => (r as { value: bigint }).value)).toEqual(
      shards.map((_, i) => big + BigInt(i)),
    );
    // An absent shard reads 0; a shard holding something else is that read's error.
    await clusterClient(cluster.seeds).set(shards[1], 'not a number');
    const [absent, garbage] = await l2.readShards([
      { shardKey: shardKeysFor('c:never', 1)[0], markKeys: [] },
      { shardKey: shards[1], markKeys: [] },
    ]);
    expect(absent).toEqual({ value: 0n, marks: [] });
    expect((garbage as HotshieldError).code).toBe('HS_ERR_L2_UNAVAILABLE');
  });
});
