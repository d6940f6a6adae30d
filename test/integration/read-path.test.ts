/**
 * The refresher's read path in one thread, against a real cluster: singleflight in
 * front of a per-turn batcher in front of the L2 client. The tests count GETs on the
 * masters, so they use a cluster of their own that no other test file touches.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type RedisClusterHandle, startRedisCluster } from '../../src/dev/redis-cluster.ts';
import { HotshieldError } from '../../src/errors.ts';
import { L2Client, type L2Read } from '../../src/refresher/l2-client.ts';
import { ReadBatcher } from '../../src/refresher/read-batcher.ts';
import { Singleflight } from '../../src/refresher/singleflight.ts';
import { clusterClient, nodeClient } from '../fixtures/redis-clients.ts';

async function totalGets(seeds: string): Promise<number> {
  const ports = seeds.split(',').map((s) => Number(s.split(':')[1]));
  const infos = await Promise.all(ports.map((p) => nodeClient(p).info('commandstats')));
  return infos.reduce(
    (sum, info) => sum + Number(/cmdstat_get:calls=(\d+)/.exec(info)?.[1] ?? 0),
    0,
  );
}

let cluster: RedisClusterHandle;
beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 });
});
afterAll(() => cluster?.stop());

async function readPath() {
  const seeds = cluster.seeds;
  const l2 = new L2Client({ redis: seeds });
  onTestFinished(() => l2.close());
  await l2.ready(10_000);
  const batcher = new ReadBatcher(l2);
  const flights = new Singleflight<L2Read>(10_000);
  const read = (key: string) => flights.run(key, () => batcher.read(key));
  return { seeds, batcher, flights, read };
}

describe('read path: singleflight → batcher → L2', () => {
  it('10,000 concurrent reads of one uncached key cost exactly one Redis GET', async () => {
    const { seeds, flights, read } = await readPath();
    await clusterClient(seeds).set('rp:hot', 'viral');
    const before = await totalGets(seeds);
    const results = await Promise.all(Array.from({ length: 10_000 }, () => read('rp:hot')));
    const after = await totalGets(seeds);
    expect(after - before).toBe(1);
    expect(results.every((r) => r?.toString() === 'viral')).toBe(true);
    expect(flights.counts).toEqual({ started: 1, joined: 9_999 });
    expect(flights.size).toBe(0);
  });

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

describe('Singleflight', () => {
  it('bounds the keys in flight, always lets callers join, and shares failures', async () => {
    const flights = new Singleflight<string>(2);
    let release!: (v: string) => void;
    const gate = new Promise<string>((r) => {
      release = r;
    });
    const a = flights.run('a', () => gate);
    const b = flights.run('b', () => gate);
    await expect(flights.run('c', () => gate)).rejects.toMatchObject({ code: 'HS_ERR_QUEUE_FULL' });
    const a2 = flights.run('a', () => Promise.resolve('not called'));
    release('done');
    expect(await Promise.all([a, a2, b])).toEqual(['done', 'done', 'done']);
    expect(flights.size).toBe(0);
    const boom = new HotshieldError('HS_ERR_L2_UNAVAILABLE', 'down');
    const f1 = flights.run('x', () => Promise.reject(boom));
    const f2 = flights.run('x', () => Promise.resolve('not called'));
    await expect(f1).rejects.toBe(boom);
    await expect(f2).rejects.toBe(boom);
    // A failed flight is over: the next caller starts a new one.
    expect(await flights.run('x', () => Promise.resolve('again'))).toBe('again');
    expect(() => new Singleflight(0)).toThrow(/maxInFlight/);
  });
});
