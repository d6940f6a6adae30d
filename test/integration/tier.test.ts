/**
 * The tier through its public API, with real threads against a real cluster of its own
 * (the tests count GETs on the masters with INFO commandstats).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startRedisCluster } from '../../src/dev/redis-cluster.ts';
import { attachTier, createTier } from '../../src/index.ts';
import { commandCalls } from '../fixtures/redis/commandstats.ts';
import { freezeNodes, tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';
import { merged, runThreads } from '../fixtures/workers/tier-threads.ts';

const cluster = useOwnCluster();

const tierFor = tierMaker(cluster);

const gets = () => commandCalls(cluster.seeds, 'get');

describe('coalescing across threads', () => {
  it('10,000 concurrent gets of one uncached key over 4 threads cost exactly one Redis GET', async () => {
    // The value is written by another application as a plain string: read it as utf8.
    await clusterClient(cluster.seeds).set('t:viral', 'x');
    const raw = await tierFor({ codec: 'utf8', requestTimeout: '20s' });
    const before = await gets();
    const results = await runThreads(
      raw,
      Array.from({ length: 4 }, () => ({ op: 'burst' as const, key: 't:viral', n: 2500 })),
    );
    expect((await gets()) - before).toBe(1);
    const all = merged(results);
    expect(all).toMatchObject({ reads: 10_000, values: { '"x"': 10_000 }, errors: {} });
    const s = raw.stats();
    expect(s.tier.fetches).toBe(1);
    // At most one ask per thread; every other call joined its thread's ask or came late
    // enough to find the value in L1.
    expect(s.tier.waits).toBeLessThanOrEqual(4);
    expect(s.tier.waits + s.tier.localJoins).toBeLessThanOrEqual(10_000);
  });

  it('sustained reads of a hot key: at most one GET per soft TTL, and no miss after the first', async () => {
    const tier = await tierFor({ codec: 'utf8', softTtl: '250ms' });
    await clusterClient(cluster.seeds).set('t:hot', 'hot');
    expect(await tier.get('t:hot')).toBe('hot');
    const before = await gets();
    const started = performance.now();
    const results = await runThreads(tier, [
      { op: 'hot', key: 't:hot', durationMs: 2000 },
      { op: 'hot', key: 't:hot', durationMs: 2000 },
    ]);
    const seconds = (performance.now() - started) / 1000;
    const all = merged(results);
    expect(all.errors).toEqual({});
    expect(all.values).toEqual({ '"hot"': all.reads });
    expect(all.reads).toBeGreaterThan(1000);
    const fetched = (await gets()) - before;
    // At most one refresh per soft TTL for the whole process (plus one in progress).
    expect(fetched).toBeLessThanOrEqual(Math.ceil(seconds / 0.25) + 1);
    expect(fetched).toBeGreaterThanOrEqual(3);
    // Every read after the first was served from L1: nobody had to wait for Redis.
    expect(tier.stats().tier.waits).toBe(1);
  });
});

describe('batching and bounds', () => {
  it('a burst of distinct missing keys costs one GET per key, sent in a few pipelines', async () => {
    const tier = await tierFor({ codec: 'utf8', requestTimeout: '10s' });
    const keys = Array.from({ length: 1000 }, (_, i) => `t:many:${i}`);
    const redis = clusterClient(cluster.seeds);
    await Promise.all(keys.map((k) => redis.set(k, k)));
    const before = await gets();
    const values = await Promise.all(keys.map((k) => tier.get(k)));
    expect(values).toEqual(keys);
    expect((await gets()) - before).toBe(1000);
    // One pipeline per master per batch of up to 512 keys collected in one turn.
    expect(tier.stats().tier.l2Batches).toBeLessThanOrEqual(10);
  });

  it('callers beyond maxWaiting in a thread, and keys beyond maxInFlight, fail at once with HS_ERR_QUEUE_FULL', async () => {
    const waiting = await tierFor({ maxWaiting: 10 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => waiting.get(`t:bound:${i}`)),
    );
    const full = outcomes.filter(
      (o) => o.status === 'rejected' && (o.reason as { code: string }).code === 'HS_ERR_QUEUE_FULL',
    );
    expect(full).toHaveLength(2);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(10);

    const inFlight = await tierFor({ maxInFlight: 1 });
    const two = await Promise.allSettled([inFlight.get('t:flight:a'), inFlight.get('t:flight:b')]);
    expect(two[0]).toEqual({ status: 'fulfilled', value: undefined });
    expect(two[1]).toMatchObject({ status: 'rejected', reason: { code: 'HS_ERR_QUEUE_FULL' } });
    expect(inFlight.stats().tier.queueFull).toBe(1);
  });
});

describe('standalone Redis', () => {
  it('works through a redis:// URL (a single node owning every slot)', async () => {
    const single = await startRedisCluster({ masters: 1 });
    onTestFinished(() => single.stop());
    const tier = await createTier({ redis: `redis://${single.seeds}`, l1Bytes: '8mb' });
    onTestFinished(() => tier.close());
    await tier.set('t:sa', { standalone: true });
    expect(await tier.get('t:sa')).toEqual({ standalone: true });
    expect(await tier.get('t:sa:loaded', { loader: (k) => `loaded ${k}` })).toBe(
      'loaded t:sa:loaded',
    );
    const keys = Array.from({ length: 100 }, (_, i) => `t:sa:${i}`);
    expect(await Promise.all(keys.map((k) => tier.get(k)))).toEqual(keys.map(() => undefined));
    expect(tier.stats().tier.l2Batches).toBeLessThanOrEqual(4);
    // Counters work there too: every shard on the one node, flushes and reads as scripts.
    const counter = tier.counter('t:sa:likes');
    counter.incr(3);
    await counter.incr(4, { sync: true });
    expect(await counter.readExact()).toBe(7n);
    const other = await createTier({ redis: `redis://${single.seeds}`, l1Bytes: '8mb' });
    onTestFinished(() => other.close());
    expect(await other.counter('t:sa:likes').read()).toBe(7);
  });
});

describe('read-through with a loader', () => {
  it('coalesces the loader across threads: one call, one Redis SET, everybody gets its value', async () => {
    const tier = await tierFor();
    const calls = new SharedArrayBuffer(4);
    const setsBefore = await commandCalls(cluster.seeds, 'set');
    const results = await runThreads(
      tier,
      Array.from({ length: 4 }, () => ({
        op: 'load' as const,
        key: 't:origin',
        n: 250,
        delayMs: 200,
        calls,
      })),
    );
    expect(new Int32Array(calls)[0]).toBe(1);
    expect(merged(results)).toMatchObject({
      reads: 1000,
      values: { '{"loaded":"t:origin"}': 1000 },
      errors: {},
    });
    expect((await commandCalls(cluster.seeds, 'set')) - setsBefore).toBe(1);
    // Written to Redis with its TTL, and readable from L1 without the loader.
    const redis = clusterClient(cluster.seeds);
    const ttl = await redis.pttl('t:origin');
    expect(ttl).toBeGreaterThan(5000);
    expect(ttl).toBeLessThanOrEqual(10_000);
    expect(await tier.get('t:origin')).toEqual({ loaded: 't:origin' });
  });

  it('a failing loader fails every waiter with HS_ERR_LOADER_FAILED; its error is the cause where it ran', async () => {
    const tier = await tierFor();
    const calls = new SharedArrayBuffer(4);
    const results = await runThreads(tier, [
      // Slow enough that both threads ask while the loader runs: coalescing is for
      // concurrent callers; a caller arriving after a failure starts a new load.
      { op: 'load', key: 't:broken', n: 50, delayMs: 200, calls, fail: true },
      { op: 'load', key: 't:broken', n: 50, delayMs: 200, calls, fail: true },
    ]);
    expect(new Int32Array(calls)[0]).toBe(1);
    const all = merged(results);
    expect(all.errors).toEqual({ HS_ERR_LOADER_FAILED: 100 });
    expect(all.causes[0]).toBe('origin refused t:broken');
    // Nothing was cached: the next call runs the loader again.
    expect(await tier.get('t:broken', { loader: () => 'fixed' })).toBe('fixed');
  });

  it('a loader that hangs fails its waiters with HS_ERR_LOADER_TIMEOUT', async () => {
    const tier = await tierFor({ loaderTimeout: '200ms' });
    const started = performance.now();
    const hang = () => new Promise(() => {});
    const outcomes = await Promise.allSettled([
      tier.get('t:hang', { loader: hang }),
      tier.get('t:hang', { loader: hang }),
      tier.get('t:hang'),
    ]);
    expect(performance.now() - started).toBeLessThan(1000);
    for (const o of outcomes.slice(0, 2)) {
      expect(o.status === 'rejected' && (o.reason as { code: string }).code).toBe(
        'HS_ERR_LOADER_TIMEOUT',
      );
    }
    // Without a loader, the third caller was answered as soon as Redis said it has no such key.
    expect(outcomes[2]).toEqual({ status: 'fulfilled', value: undefined });
  });

  it('a loader returning undefined means absent everywhere, remembered for negativeTtl', async () => {
    const tier = await tierFor({ negativeTtl: '5s' });
    let calls = 0;
    const loader = () => {
      calls++;
      return undefined;
    };
    expect(await tier.get('t:nowhere', { loader })).toBeUndefined();
    expect(await tier.get('t:nowhere', { loader })).toBeUndefined();
    expect(calls).toBe(1);
    expect(tier.stats().tier.negativeStores).toBe(1);
  });
});

describe('get / set / delete', () => {
  it('round-trips structured values with msgpack: objects, Dates, Maps, Sets, typed arrays, BigInts', async () => {
    const tier = await tierFor();
    const value = {
      s: 'héllo',
      n: 1.5,
      a: [1, 'two', null],
      d: new Date(1_700_000_000_000),
      m: new Map<unknown, unknown>([
        [1, 'one'],
        ['k', { nested: true }],
      ]),
      set: new Set([1, 2]),
      f: new Float64Array([0.25, -1]),
      b: new Uint8Array([0, 255]),
      big: 2n ** 70n,
    };
    await tier.set('t:struct', value);
    expect(await tier.get('t:struct')).toEqual(value);
    // A fresh tier on the same cluster reads it back from Redis, not from its own L1.
    const other = await tierFor();
    expect(await other.get('t:struct')).toEqual(value);
  });

  it('raw and utf8 codecs store bytes and strings as they are, readable by other clients', async () => {
    const raw = await tierFor({ codec: 'raw' });
    await raw.set('t:raw', Buffer.from([1, 2, 3]));
    expect(await raw.get('t:raw')).toEqual(Buffer.from([1, 2, 3]));
    const utf8 = await tierFor({ codec: 'utf8' });
    await utf8.set('t:text', 'plain text');
    expect(await utf8.get('t:text')).toBe('plain text');
    expect(await clusterClient(cluster.seeds).get('t:text')).toBe('plain text');
    await expect(utf8.set('t:text', 42)).rejects.toMatchObject({ code: 'HS_ERR_CODEC' });
    await expect(raw.set('t:raw', { not: 'bytes' })).rejects.toMatchObject({
      code: 'HS_ERR_CODEC',
    });
  });

  it('a reader never decodes an entry with another codec than the one that wrote it', async () => {
    // The entry must still be fresh in L1 when the other readers come: a long soft TTL, and
    // no coherence (with it, a write made before tracking is up lives 1 s, which a loaded
    // machine can outlast; then the read goes to Redis, whose bytes carry no codec).
    const tier = await tierFor({ codec: 'utf8', softTtl: '1m', coherence: false });
    await tier.set('t:mixed', 'h');
    const msgpackReader = attachTier({
      ...tier.handle,
      config: { ...tier.handle.config, codec: 'msgpack' },
    });
    onTestFinished(() => msgpackReader.close());
    // 'h' is 0x68, which msgpack would happily read as the number 104.
    await expect(msgpackReader.get('t:mixed')).rejects.toMatchObject({
      code: 'HS_ERR_CODEC_MISMATCH',
    });
    const rawReader = attachTier({
      ...tier.handle,
      config: { ...tier.handle.config, codec: 'raw' },
    });
    onTestFinished(() => rawReader.close());
    expect(await rawReader.get('t:mixed')).toEqual(Buffer.from('h'));
  });

  it('set writes through: Redis has the value and TTL, and the next read in this process sees it', async () => {
    const tier = await tierFor();
    await tier.set('t:w', 'first');
    expect(await tier.get('t:w')).toBe('first');
    await tier.set('t:w', 'second', { ttl: '2s' });
    expect(await tier.get('t:w')).toBe('second');
    const ttl = await clusterClient(cluster.seeds).pttl('t:w');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2000);
    await tier.delete('t:w');
    expect(await tier.get('t:w')).toBeUndefined();
    expect(await clusterClient(cluster.seeds).exists('t:w')).toBe(0);
  });

  it('memoBytes: a thread shares one decoded value per entry version; 0 gives every read its own copy', async () => {
    const tier = await tierFor();
    await tier.set('t:memo', { n: 1 });
    // With coherence the write is read back once (a new entry version when it lands, later
    // on a loaded machine): two reads of one version share one decoded value.
    let first = await tier.lookup('t:memo');
    let second = await tier.lookup('t:memo');
    for (let i = 0; i < 100 && first?.version !== second?.version; i++) {
      await new Promise((r) => setTimeout(r, 20));
      first = second;
      second = await tier.lookup('t:memo');
    }
    expect(second?.version).toBe(first?.version);
    const a = first?.value;
    expect(a).toEqual({ n: 1 });
    expect(second?.value).toBe(a);
    // A write (here, and from another thread) is a new entry: the next read decodes it anew.
    await tier.set('t:memo', { n: 2 });
    expect(await tier.get('t:memo')).toEqual({ n: 2 });
    const other = await runThreads(tier, [{ op: 'set', key: 't:memo', value: 'three' }]);
    expect(merged(other).errors).toEqual({});
    expect(await tier.get('t:memo')).toBe('three');
    const copying = await tierFor({ memoBytes: 0 });
    await copying.set('t:memo0', { n: 1 });
    const c = await copying.get('t:memo0');
    expect(await copying.get('t:memo0')).not.toBe(c);
    expect(await copying.get('t:memo0')).toEqual({ n: 1 });
    await expect(tierFor({ memoBytes: -1 })).rejects.toMatchObject({ code: 'HS_ERR_OPTION' });
  });

  it('absent keys are negatively cached: a second read within negativeTtl costs no GET', async () => {
    const tier = await tierFor({ negativeTtl: '5s' });
    expect(await tier.get('t:absent')).toBeUndefined();
    const before = await gets();
    expect(await tier.get('t:absent')).toBeUndefined();
    expect((await gets()) - before).toBe(0);
  });

  it('a stale value is served at once while one background refresh fetches the new one', async () => {
    // Without coherence: with it, Redis announces the write and the entry goes at once
    // (coherence.test.ts); this is the soft-TTL path.
    const tier = await tierFor({ codec: 'utf8', softTtl: '100ms', coherence: false });
    const redis = clusterClient(cluster.seeds);
    await redis.set('t:stale', 'v1');
    expect(await tier.get('t:stale')).toBe('v1');
    await redis.set('t:stale', 'v2');
    await sleep(150);
    const before = await gets();
    // Stale: every caller gets v1 at once, and one refresh is asked for. Redis is held
    // still while they read, so the refresh cannot land between two of the reads (it did,
    // once in a full run: the refresher is another thread).
    const thaw = freezeNodes(cluster);
    const reads = await Promise.all([
      tier.get('t:stale'),
      tier.get('t:stale'),
      tier.get('t:stale'),
    ]);
    thaw();
    expect(reads).toEqual(['v1', 'v1', 'v1']);
    for (let i = 0; i < 100 && (await tier.get('t:stale')) !== 'v2'; i++) await sleep(10);
    expect(await tier.get('t:stale')).toBe('v2');
    expect((await gets()) - before).toBe(1);
  });

  it('rejects bad keys and values with typed errors and changes nothing', async () => {
    const tier = await tierFor({ maxKeyBytes: 16, maxValueBytes: 64 });
    // Not a count of SETs: a tier publishes its hot set to Redis every second.
    const redis = clusterClient(cluster.seeds);
    await redis.set('k', 'before');
    await expect(tier.get('')).rejects.toMatchObject({ code: 'HS_ERR_KEY_EMPTY' });
    await expect(tier.get('k'.repeat(17))).rejects.toMatchObject({ code: 'HS_ERR_KEY_TOO_LONG' });
    await expect(tier.set('\ud800', 'x')).rejects.toMatchObject({ code: 'HS_ERR_KEY_INVALID' });
    await expect(tier.get(42 as unknown as string)).rejects.toMatchObject({
      code: 'HS_ERR_KEY_INVALID',
    });
    await expect(tier.set('k', 'x'.repeat(100))).rejects.toMatchObject({
      code: 'HS_ERR_VALUE_TOO_LARGE',
    });
    await expect(tier.set('k', undefined)).rejects.toMatchObject({ code: 'HS_ERR_CODEC' });
    await expect(tier.set('k', 'x', { ttl: -1 })).rejects.toMatchObject({ code: 'HS_ERR_OPTION' });
    await expect(tier.get('k', { timeout: 'soon' })).rejects.toMatchObject({
      code: 'HS_ERR_OPTION',
    });
    await expect(tier.get('k', { loader: 'no' as never })).rejects.toMatchObject({
      code: 'HS_ERR_OPTION',
    });
    expect(await redis.get('k')).toBe('before');
  });

  it('a write that Redis refuses is reported with a typed error and leaves no L1 copy', async () => {
    const tier = await tierFor({ codec: 'utf8' });
    const redis = clusterClient(cluster.seeds);
    await redis.del('t:list');
    await redis.lpush('t:list', 'a');
    // GET on a list is WRONGTYPE: a per-key error, reported to the caller.
    await expect(tier.get('t:list')).rejects.toMatchObject({ code: 'HS_ERR_L2_UNAVAILABLE' });
    expect(tier.stats().tier.l2Errors).toBeGreaterThanOrEqual(1);
  });

  it('peek answers from L1 alone, synchronously: hit, known-absent (null) or unknown (undefined)', async () => {
    const tier = await tierFor({ negativeTtl: '5s' });
    expect(tier.peek('t:peek')).toBeUndefined();
    await tier.set('t:peek', { n: 1 });
    const hit = tier.peek('t:peek');
    expect(hit).toMatchObject({ value: { n: 1 }, cache: 'hit' });
    expect(hit?.version).toBeGreaterThan(0);
    await tier.set('t:peek', { n: 2 });
    expect(tier.peek('t:peek')?.version).not.toBe(hit?.version);
    expect(await tier.get('t:peek:absent')).toBeUndefined();
    expect(tier.peek('t:peek:absent')).toBeNull();
    expect(() => tier.peek('')).toThrow(expect.objectContaining({ code: 'HS_ERR_KEY_EMPTY' }));
  });

  it('a miss answered by lookup carries the version of the L1 entry it was stored in', async () => {
    const tier = await tierFor({ codec: 'utf8' });
    await clusterClient(cluster.seeds).set('t:lookup:miss', 'v');
    const miss = await tier.lookup('t:lookup:miss');
    expect(miss).toMatchObject({ value: 'v', cache: 'miss' });
    expect(miss?.version).toBeGreaterThan(0);
    // The hit that follows is the same entry: whatever the caller derived stays valid.
    expect(tier.peek('t:lookup:miss')).toMatchObject({ cache: 'hit', version: miss?.version });
  });

  it('stats cover the shared L1, the process-wide counters and this thread', async () => {
    const tier = await tierFor();
    await tier.set('t:s', 1);
    await tier.get('t:s');
    const s = tier.stats();
    expect(s.l1.entries).toBeGreaterThanOrEqual(1);
    expect(s.l1.hits).toBeGreaterThanOrEqual(1);
    expect(s.tier.writes).toBe(1);
    expect(s.refresher).toMatchObject({ state: 'l2Ready', generation: 1 });
    // Coherence knows the three masters (tracking them may still be on its way).
    expect(s.refresher.coherence.masters).toBe(3);
    expect(s.refresher.coherence.tracked).toBeLessThanOrEqual(3);
    expect(s.thread).toEqual({ waiting: 0, pendingKeys: 0 });
  });
});

describe('close', () => {
  it('is idempotent, fails later calls with HS_ERR_CLOSED in every thread, and refuses to attach', async () => {
    const tier = await createTier({ redis: cluster.seeds, l1Bytes: '8mb' });
    const other = attachTier(tier.handle);
    await tier.set('t:c', 1);
    await Promise.all([tier.close(), tier.close()]);
    await expect(tier.get('t:c')).rejects.toMatchObject({ code: 'HS_ERR_CLOSED' });
    await expect(other.get('t:c')).rejects.toMatchObject({ code: 'HS_ERR_CLOSED' });
    await expect(other.set('t:c', 2)).rejects.toMatchObject({ code: 'HS_ERR_CLOSED' });
    expect(() => attachTier(tier.handle)).toThrow(
      expect.objectContaining({ code: 'HS_ERR_CLOSED' }),
    );
    await other.close();
  });

  it('fails calls still waiting with HS_ERR_CLOSED instead of leaving them hanging', async () => {
    const tier = await createTier({ redis: cluster.seeds, l1Bytes: '8mb', loaderTimeout: '10s' });
    const waiting = expect(
      tier.get('t:slow', { loader: () => new Promise(() => {}) }),
    ).rejects.toMatchObject({
      code: 'HS_ERR_CLOSED',
    });
    await sleep(50);
    await tier.close();
    await waiting;
  });

  it('attachTier refuses anything that is not a tier handle', () => {
    for (const bad of [undefined, null, {}, { kind: 'hotshield.tier/1' }, 'handle']) {
      expect(() => attachTier(bad as never)).toThrow(
        expect.objectContaining({ code: 'HS_ERR_HANDLE' }),
      );
    }
  });
});
