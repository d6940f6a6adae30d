/**
 * Coherence: a tier's L1 follows Redis whoever writes to it. Two tiers (each its own L1,
 * refresher and connections, as two processes would have) on a cluster of this file's
 * own; soft TTLs of a minute, so expiry cannot explain anything seen here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Tier } from '../../src/index.ts';
import { startGatewayOn } from '../fixtures/gateway/gateway-process.ts';
import { request } from '../fixtures/gateway/http.ts';
import { commandCalls } from '../fixtures/redis/commandstats.ts';
import { tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';
import { proxyCluster } from '../fixtures/redis/reply-proxy.ts';

const cluster = useOwnCluster();
const LONG = { codec: 'utf8', softTtl: '60s', staleTtl: '60s' } as const;
const tierFor = tierMaker(cluster, LONG);

/**
 * Resolves once every master of the cluster tracks the tier's reads (all of them: while a
 * lost connection is replaced, the tier may know of fewer masters, all of them tracked).
 */
async function tracked(tier: Tier): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { tracked, masters } = tier.stats().refresher.coherence;
    if (masters === cluster.nodes.length && tracked === masters) return;
    await sleep(25);
  }
  throw new Error(`tracking not up: ${JSON.stringify(tier.stats().refresher.coherence)}`);
}

/** Read `key` through `tier` until it gives `want`; how long that took, in ms. */
async function until(tier: Tier, key: string, want: unknown, withinMs = 2000): Promise<number> {
  const started = performance.now();
  let got: unknown;
  while (performance.now() - started < withinMs) {
    got = await tier.get(key);
    if (got === want) return performance.now() - started;
    await sleep(5);
  }
  throw new Error(`${key}: still ${JSON.stringify(got)} after ${withinMs} ms, not ${want}`);
}

/**
 * A plain client on the master that owns `key` (what another application would use), on
 * its own port even while the nodes announce a proxy's: found by node id.
 */
async function ownerOf(key: string): Promise<Redis> {
  const slot = calculateSlot(key);
  const clients = cluster.nodes.map((n) => new Redis({ host: '127.0.0.1', port: n.port }));
  onTestFinished(() => {
    for (const c of clients) c.disconnect();
  });
  const ranges = (await clients[0].cluster('SLOTS')) as unknown as Array<
    [number, number, [string, number, string]]
  >;
  const owner = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)?.[2][2];
  const ids = await Promise.all(clients.map((c) => c.cluster('MYID') as Promise<string>));
  const at = ids.indexOf(owner ?? '');
  if (at < 0) throw new Error(`no node owns slot ${slot}`);
  return clients[at];
}

describe('writes through one tier', () => {
  it('a set through A is served by B within milliseconds, not after its minute of soft TTL', async () => {
    const [a, b] = [await tierFor(), await tierFor()];
    await Promise.all([tracked(a), tracked(b)]);
    await a.set('c:put', 'one');
    expect(await b.get('c:put')).toBe('one');
    expect(await b.get('c:put')).toBe('one');
    await a.set('c:put', 'two');
    const ms = await until(b, 'c:put', 'two');
    expect(ms).toBeLessThan(1000);
    expect(b.stats().tier.invalidations).toBeGreaterThanOrEqual(1);
    expect(b.stats().tier.invalidatedEntries).toBeGreaterThanOrEqual(1);
    // A's own write is not echoed back to it (NOLOOP): it already holds the new value.
    expect(a.stats().tier.invalidatedEntries).toBe(0);
    // But A read its write back, so Redis tells it of the next write by anyone else:
    // without that it would keep its own value for the untracked soft TTL (1 s).
    await sleep(100);
    const other = clusterClient(cluster.seeds);
    onTestFinished(() => other.disconnect());
    await other.set('c:put', 'three');
    expect(await until(a, 'c:put', 'three')).toBeLessThan(500);
    await a.delete('c:put');
    await until(b, 'c:put', undefined);
  });

  it('with coherence off, B keeps serving what it has until its soft TTL (what the default fixes)', async () => {
    const a = await tierFor();
    const b = await tierFor({ coherence: false });
    await a.set('c:off', 'one');
    expect(await b.get('c:off')).toBe('one');
    await a.set('c:off', 'two');
    await sleep(500);
    expect(await b.get('c:off')).toBe('one');
    expect(b.stats().refresher.coherence).toEqual({ tracked: 0, masters: 0 });
    expect(b.stats().tier.invalidations).toBe(0);
  });
});

describe('two gateway processes', () => {
  it('a PUT through gateway A, and a SET by another client, are served by gateway B at once', async () => {
    const [a, b] = await Promise.all(
      [0, 1].map(() => startGatewayOn(cluster.seeds, ['--soft-ttl', '60s', '--threads', '1'])),
    );
    onTestFinished(async () => {
      await Promise.all([a.stop(), b.stop()]);
    });
    const url = (g: typeof a, key: string) => `${g.url}/v1/kv/${key}`;
    /** GET through `g` until it answers `want`, within 2 s; ms taken. */
    const served = async (g: typeof a, key: string, want: string) => {
      const started = performance.now();
      for (;;) {
        const r = await request(url(g, key));
        if (r.status === 200 && r.text === want) return performance.now() - started;
        if (performance.now() - started > 2000)
          throw new Error(`${key} through ${g.url}: ${r.status} ${r.text}, not ${want}`);
        await sleep(5);
      }
    };
    expect((await request(url(a, 'g:k'), { method: 'PUT', body: 'one' })).status).toBe(204);
    await served(b, 'g:k', 'one');
    const hit = await request(url(b, 'g:k'));
    expect(hit.headers['x-cache']).toBe('HIT');
    expect((await request(url(a, 'g:k'), { method: 'PUT', body: 'two' })).status).toBe(204);
    expect(await served(b, 'g:k', 'two')).toBeLessThan(1000);
    const other = clusterClient(cluster.seeds);
    onTestFinished(() => other.disconnect());
    await other.set('g:k', 'three');
    expect(await served(b, 'g:k', 'three')).toBeLessThan(1000);
    expect(await served(a, 'g:k', 'three')).toBeLessThan(1000);
  });
});

describe('writes by any Redis client', () => {
  it('SET, DEL, EXPIRE and RENAME by another client each end what the tier serves', async () => {
    const tier = await tierFor();
    await tracked(tier);
    const other = clusterClient(cluster.seeds);
    onTestFinished(() => other.disconnect());

    await other.set('c:set', 'old');
    expect(await tier.get('c:set')).toBe('old');
    await other.set('c:set', 'new');
    await until(tier, 'c:set', 'new');

    await other.set('c:del', 'here');
    expect(await tier.get('c:del')).toBe('here');
    await other.del('c:del');
    await until(tier, 'c:del', undefined);

    await other.set('c:exp', 'brief');
    expect(await tier.get('c:exp')).toBe('brief');
    await other.pexpire('c:exp', 50);
    // Redis announces an expired key when it deletes it (lazily or in its expiry cycle).
    await until(tier, 'c:exp', undefined);

    // One hash tag: RENAME needs both keys in one slot.
    await other.set('{c:ren}a', 'moved');
    await other.set('{c:ren}b', 'overwritten');
    expect(await tier.get('{c:ren}a')).toBe('moved');
    expect(await tier.get('{c:ren}b')).toBe('overwritten');
    await other.rename('{c:ren}a', '{c:ren}b');
    await until(tier, '{c:ren}a', undefined);
    await until(tier, '{c:ren}b', 'moved');
  });

  it('a FLUSHALL on a master clears what the tier holds, and nothing of the old values comes back', async () => {
    const tier = await tierFor();
    await tracked(tier);
    const key = 'c:flush';
    const owner = await ownerOf(key);
    await owner.set(key, 'before');
    expect(await tier.get(key)).toBe('before');
    await owner.flushall();
    await until(tier, key, undefined);
    expect(tier.stats().tier.invalidationFlushes).toBeGreaterThanOrEqual(1);
  });

  it('a hot key read in a loop follows 20 external writes, one Redis GET per write', async () => {
    const tier = await tierFor();
    await tracked(tier);
    const other = clusterClient(cluster.seeds);
    onTestFinished(() => other.disconnect());
    await other.set('c:hot', 'v0');
    expect(await tier.get('c:hot')).toBe('v0');
    const before = await commandCalls(cluster.seeds, 'get');
    for (let i = 1; i <= 20; i++) {
      await other.set('c:hot', `v${i}`);
      await until(tier, 'c:hot', `v${i}`);
      // Reads between writes are hits: the loop would show a stampede as extra GETs.
      for (let j = 0; j < 50; j++) expect(await tier.get('c:hot')).toBe(`v${i}`);
    }
    const gets = (await commandCalls(cluster.seeds, 'get')) - before;
    expect(gets).toBeGreaterThanOrEqual(20);
    expect(gets).toBeLessThanOrEqual(22);
  });
});

describe('lost tracking', () => {
  // Either connection of a pair killed: the subscribers (then a write made while no one
  // listens is announced to nobody), or the data connections (then Redis forgets what
  // they read, redis#11767). Either way the entries turn stale at once (served once,
  // refreshed) and tracking comes back on the new connections.
  const kills = {
    'killed invalidation connections': ['TYPE', 'pubsub'],
    'killed data connections': ['TYPE', 'normal', 'SKIPME', 'yes'],
  };
  for (const [what, filter] of Object.entries(kills)) {
    it(`${what}: entries turn stale at once, and tracking comes back`, async () => {
      const tier = await tierFor();
      await tracked(tier);
      const key = `c:${what.replaceAll(' ', '-')}`;
      const owner = await ownerOf(key);
      await owner.set(key, 'one');
      expect(await tier.get(key)).toBe('one');
      const lostBefore = tier.stats().tier.trackingLost;
      for (const node of cluster.nodes) {
        const admin = new Redis({ host: '127.0.0.1', port: node.port });
        await admin.call('CLIENT', 'KILL', ...filter);
        admin.disconnect();
      }
      await owner.set(key, 'two');
      await until(tier, key, 'two');
      expect(tier.stats().tier.trackingLost).toBeGreaterThan(lostBefore);
      await tracked(tier);
      // 'two' may have been read before its new connection tracked (then it lives for the
      // 1 s soft TTL of an untracked read): 'three' is seen within that bound, and read
      // back over a tracked connection.
      await owner.set(key, 'three');
      await until(tier, key, 'three', 2000);
      // Tracking is back: Redis announces the next write, and the tier serves it at once.
      const seen = tier.stats().tier.invalidations;
      await owner.set(key, 'four');
      for (let i = 0; i < 100 && tier.stats().tier.invalidations === seen; i++) await sleep(10);
      expect(tier.stats().tier.invalidations).toBeGreaterThan(seen);
      expect(await tier.get(key)).toBe('four');
    });
  }
});

describe('an invalidation that overtakes the read it invalidates', () => {
  it('the read is answered (it was valid when Redis ran it) but not stored as fresh', async () => {
    const proxied = await proxyCluster(cluster);
    // Deadlines long enough for the held read to outlive the test's steps.
    const tier = await tierFor({ redis: proxied.seeds, l2Timeout: '10s', requestTimeout: '20s' });
    await tracked(tier);
    const key = 'c:race';
    const owner = await ownerOf(key);
    await owner.set(key, 'old');
    // Prime the data connection of the key's master so the read below goes straight out.
    await tier.get('c:race:other');
    proxied.holdReplies();
    const read = tier.get(key);
    // Redis has run the GET (its reply is held in the proxy), so it tracks the key; the
    // write's invalidation reaches the subscriber, whose replies are not held.
    await sleep(100);
    const seen = tier.stats().tier.invalidations;
    await owner.set(key, 'new');
    for (let i = 0; i < 100 && tier.stats().tier.invalidations === seen; i++) await sleep(10);
    expect(tier.stats().tier.invalidations).toBeGreaterThan(seen);
    proxied.releaseReplies();
    expect(await read).toBe('old');
    // Stored as fresh, 'old' would be served for a minute.
    expect(await tier.get(key)).toBe('new');
  });
});
