/**
 * Write-hot counters through the embedded API, against a real cluster: exact totals
 * from many threads, reads that see a process's own increments at once and never count
 * them twice, shielded reads, sync increments that Redis really holds, bad input.
 * (Faults — lost replies, a killed refresher, hung masters — are in counter-faults.)
 */
import { describe, expect, it } from 'vitest';
import type { HotshieldError } from '../../src/index.ts';
import { shardKeysFor } from '../../src/keys/shard-keys.ts';
import { commandCalls } from '../fixtures/redis/commandstats.ts';
import { tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';
import { runCounterThreads } from '../fixtures/workers/counter-threads.ts';

const cluster = useOwnCluster();
const makeTier = tierMaker(cluster);

/** Every shard of `name` summed straight from Redis (what any process would read). */
async function inRedis(name: string): Promise<bigint> {
  const redis = clusterClient(cluster.seeds);
  const values = await Promise.all(shardKeysFor(name, 16).map((k) => redis.get(k)));
  return values.reduce((sum, v) => sum + BigInt(v ?? 0), 0n);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as HotshieldError).code;
  }
  return undefined;
}

describe('counters: exact totals', () => {
  it('4 threads × 20,000 increments (random by, negatives, 2^40s, some sync) are read back exactly, at once and from another process, for a few hundred Redis writes', async () => {
    const names = ['likes:hot', 'likes:a', 'likes:b'];
    const tier = await makeTier({ flushInterval: 20 });
    const writesBefore =
      (await commandCalls(cluster.seeds, 'evalsha')) + (await commandCalls(cluster.seeds, 'eval'));
    const result = await runCounterThreads(
      tier,
      [1, 2, 3, 4].map((seed) => ({ op: 'incr' as const, names, n: 20_000, seed, syncEvery: 250 })),
    );
    expect(result.errors).toEqual({});
    expect(result.synced).toBe(4 * 80);
    // This process sees everything it added, flushed or not.
    for (const name of names)
      expect(await tier.counter(name).readExact()).toBe(BigInt(result.sent[name]));
    // Another process (its own L1 and writer) sees the same once the flushes are in.
    const other = await makeTier({ softTtl: 50 });
    for (const name of names) {
      await expect
        .poll(() => other.counter(name).readExact(), { timeout: 5000, interval: 60 })
        .toBe(BigInt(result.sent[name]));
      expect(await inRedis(name)).toBe(BigInt(result.sent[name]));
    }
    const writes =
      (await commandCalls(cluster.seeds, 'evalsha')) +
      (await commandCalls(cluster.seeds, 'eval')) -
      writesBefore;
    const flushes = tier.stats().tier.counterFlushes;
    expect(flushes).toBeGreaterThan(3);
    // 80,000 increments; one flush per counter per round at most (reads are scripts too).
    expect(writes).toBeLessThan(80_000 / 50);
    expect(tier.stats().tier.counterFlushErrors).toBe(0);
  });

  it("a read is the shards plus this process's unflushed part: its own increments show at once, other processes' after softTtl, nothing twice", async () => {
    const name = 'views:article:1';
    // No round flushes within the test: everything this tier adds stays in L1.
    const mine = await makeTier({ flushInterval: '1h', softTtl: 100 });
    const counter = mine.counter(name);
    counter.incr(5);
    expect(await counter.read()).toBe(5);
    expect(await inRedis(name)).toBe(0n);
    const theirs = await makeTier({ flushInterval: 10 });
    await theirs.counter(name).incr(10, { sync: true });
    expect(await inRedis(name)).toBe(10n);
    counter.incr(1);
    // Cached base: 6 until the total is refreshed, then 16.
    expect(await counter.read()).toBe(6);
    await expect.poll(() => counter.read(), { timeout: 3000, interval: 50 }).toBe(16);
    // Closing flushes this tier's 6; the shards then hold all 16, counted once.
    await mine.close();
    expect(await inRedis(name)).toBe(16n);
    const fresh = await makeTier();
    expect(await fresh.counter(name).read()).toBe(16);
  });

  it('a sync increment resolves only once the shards in Redis hold it', async () => {
    const name = 'orders:placed';
    const tier = await makeTier({ flushInterval: 150 });
    for (let i = 1; i <= 5; i++) {
      await tier.counter(name).incr(2, { sync: true });
      expect(await inRedis(name)).toBe(BigInt(2 * i));
    }
  });
});

describe('counters: shielded reads', () => {
  it('2,000 concurrent reads of a cold counter over 4 threads cost one read of its shards', async () => {
    const writer = await makeTier({ flushInterval: 10 });
    await writer.counter('likes:viral').incr(41, { sync: true });
    await writer.counter('likes:viral').incr(1, { sync: true });
    const tier = await makeTier({ softTtl: '10s' });
    const before = await commandCalls(cluster.seeds, 'evalsha');
    const result = await runCounterThreads(
      tier,
      [1, 2, 3, 4].map(() => ({ op: 'read' as const, name: 'likes:viral', n: 500 })),
    );
    expect(result.reads).toEqual({ '42': 2000 });
    expect(tier.stats().tier.counterReads).toBe(1);
    // One shard-read script per shard (16), whatever the number of readers.
    expect((await commandCalls(cluster.seeds, 'evalsha')) - before).toBeLessThanOrEqual(16);
  });
});

describe('counters: bad input', () => {
  it('bad names, amounts and options are typed errors that change nothing', async () => {
    const tier = await makeTier({ flushInterval: 10, maxKeyBytes: 64 });
    for (const bad of ['', 'a{b}', 'x}', 'k'.repeat(121), 'a:__hotshield:b', 42, '\ud800'])
      expect(codeOf(() => tier.counter(bad as string))).toBe('HS_ERR_COUNTER_NAME');
    // Its cached total would not fit maxKeyBytes.
    expect(codeOf(() => tier.counter('n'.repeat(60)))).toBe('HS_ERR_COUNTER_NAME');
    const counter = tier.counter('c:bad');
    for (const by of [0, 1.5, Number.NaN, Infinity, 2 ** 40 + 1, '3', 10n])
      expect(codeOf(() => counter.incr(by as number))).toBe('HS_ERR_COUNTER_DELTA');
    expect(codeOf(() => counter.incr(1, { sync: 'yes' } as never))).toBe('HS_ERR_OPTION');
    // The sync option was refused before anything was added.
    expect(await counter.read()).toBe(0);
    counter.incr();
    await counter.incr(2, { sync: true });
    expect(await inRedis('c:bad')).toBe(3n);
    // The keys hotshield keeps for counters cannot be reached as plain keys.
    expect(codeOf(() => tier.peek('c:bad:__hotshield:total'))).toBe('HS_ERR_KEY_INVALID');
    for (const op of [
      tier.get('c:bad:__hotshield:total'),
      tier.set('c:bad:__hotshield:total', 'x'),
      tier.delete('c:bad:__hotshield:total'),
    ])
      await expect(op).rejects.toMatchObject({ code: 'HS_ERR_KEY_INVALID' });
  });
});
