/**
 * Coherence: a tier's L1 follows Redis whoever writes to it. Two tiers (each its own L1,
 * refresher and connections, as two processes would have) on a cluster of this file's
 * own; soft TTLs of a minute, so expiry cannot explain anything seen here.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startGatewayOn } from '../fixtures/gateway/gateway-process.ts';
import { request } from '../fixtures/gateway/http.ts';
import {
  announced,
  invalidations,
  ownerOf,
  tracked,
  until,
} from '../fixtures/redis/coherence-probe.ts';
import { commandCalls } from '../fixtures/redis/commandstats.ts';
import { tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';
import { proxyCluster } from '../fixtures/redis/reply-proxy.ts';
import { startTierProcess } from '../fixtures/redis/tier-process.ts';
import { merged, runThreads } from '../fixtures/workers/tier-threads.ts';

const MASTERS = 3;
const cluster = useOwnCluster(MASTERS);
const LONG = { codec: 'utf8', softTtl: '60s', staleTtl: '60s' } as const;
const tierFor = tierMaker(cluster, LONG);

describe('writes through one tier', () => {
  it('a set through A is served by B within milliseconds, not after its minute of soft TTL', async () => {
    const [a, b] = [await tierFor(), await tierFor()];
    await Promise.all([tracked(a, MASTERS), tracked(b, MASTERS)]);
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

describe('two embedded tiers in processes of their own', () => {
  it('a set through one is served by the other at once, and a SET by another client by both', async () => {
    const options = { redis: cluster.seeds, l1Bytes: '8mb', ...LONG };
    const [a, b] = await Promise.all([startTierProcess(options), startTierProcess(options)]);
    await Promise.all([tracked(a, MASTERS), tracked(b, MASTERS)]);
    await a.set('p:k', 'one');
    expect(await b.get('p:k')).toBe('one');
    const seen = await invalidations(b);
    await a.set('p:k', 'two');
    await announced(b, seen);
    expect(await b.get('p:k')).toBe('two');
    const other = clusterClient(cluster.seeds);
    onTestFinished(() => other.disconnect());
    await other.set('p:k', 'three');
    expect(await until(b, 'p:k', 'three')).toBeLessThan(1000);
    expect(await until(a, 'p:k', 'three')).toBeLessThan(1000);
    // And what they serve now comes from their L1, not from Redis on every read.
    const hits = (await b.stats()).l1.hits;
    expect(await b.get('p:k')).toBe('three');
    expect((await b.stats()).l1.hits).toBe(hits + 1);
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
    await tracked(tier, MASTERS);
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
    await tracked(tier, MASTERS);
    const key = 'c:flush';
    const owner = await ownerOf(cluster, key);
    await owner.set(key, 'before');
    expect(await tier.get(key)).toBe('before');
    await owner.flushall();
    await until(tier, key, undefined);
    expect(tier.stats().tier.invalidationFlushes).toBeGreaterThanOrEqual(1);
  });

  it('an announcement is counted only once L1 has it applied: a reader that sees the count never finds the old entry', async () => {
    const tier = await tierFor();
    await tracked(tier, MASTERS);
    const key = 'c:counted';
    const owner = await ownerOf(cluster, key);
    let early = 0;
    for (let i = 0; i < 1000; i++) {
      await owner.set(key, `v${i}`);
      expect(await tier.get(key)).toBe(`v${i}`);
      const seen = tier.stats().tier.invalidations;
      const write = owner.set(key, `v${i + 1}`);
      // Spin (no await: the refresher is another thread) until the count moves, then look.
      const deadline = performance.now() + 2000;
      while (tier.stats().tier.invalidations === seen && performance.now() < deadline);
      expect(tier.stats().tier.invalidations).toBeGreaterThan(seen);
      if (tier.peek(key) !== undefined) early++;
      await write;
    }
    expect(early).toBe(0);
  });

  it('a hot key read in a loop follows 20 external writes, one Redis GET per write', async () => {
    const tier = await tierFor();
    await tracked(tier, MASTERS);
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

describe('keys L1 cannot hold', () => {
  it('an announced key L1 cannot hold (empty, longer than maxKeyBytes) is passed over; the refresher lives', async () => {
    // Redis announces every key read over a tracked connection, including some L1 could
    // never name (a counter's flush mark a script read, longer than a small maxKeyBytes);
    // anyone may also PUBLISH on the channel, which is how this test sends them.
    const tier = await tierFor();
    await tracked(tier, MASTERS);
    await tier.set('k:kept', 'one');
    const admin = new Redis({ host: '127.0.0.1', port: cluster.nodes[0].port });
    onTestFinished(() => admin.disconnect());
    await admin.publish('__redis__:invalidate', '');
    await admin.publish('__redis__:invalidate', 'x'.repeat(tier.handle.config.maxKeyBytes + 1));
    await announced(tier, 0);
    // A cluster sends a PUBLISH to every node, so each of the tier's subscribers heard
    // both; and the thread that heard them still answers.
    for (let i = 0; i < 100 && tier.stats().tier.invalidations < 2 * MASTERS; i++) await sleep(10);
    expect(tier.stats().tier.invalidations).toBe(2 * MASTERS);
    expect(await tier.get('k:kept')).toBe('one');
    await tier.set('k:after', 'still here');
    expect(await tier.get('k:after')).toBe('still here');
    expect(tier.stats().tier.respawns).toBe(0);
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
      await tracked(tier, MASTERS);
      const key = `c:${what.replaceAll(' ', '-')}`;
      const owner = await ownerOf(cluster, key);
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
      await tracked(tier, MASTERS);
      // 'two' may have been read before its new connection tracked (then it lives for the
      // 1 s soft TTL of an untracked read): 'three' is seen within that bound, and read
      // back over a tracked connection.
      await owner.set(key, 'three');
      await until(tier, key, 'three', 2000);
      // Tracking is back: Redis announces the next write, and the tier serves it at once.
      const seen = tier.stats().tier.invalidations;
      await owner.set(key, 'four');
      await announced(tier, seen);
      expect(await tier.get(key)).toBe('four');
    });
  }
});

describe('an invalidation that overtakes the read it invalidates', () => {
  it('the read is answered (it was valid when Redis ran it) but not stored as fresh', async () => {
    const proxied = await proxyCluster(cluster);
    // Deadlines long enough for the held read to outlive the test's steps.
    const tier = await tierFor({ redis: proxied.seeds, l2Timeout: '10s', requestTimeout: '20s' });
    await tracked(tier, MASTERS);
    const key = 'c:race';
    const owner = await ownerOf(cluster, key);
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
    await announced(tier, seen);
    // Another thread asks after the change, while the old read is still in flight: it
    // must not be handed that read's value (a refresh-ahead of a hot key is often in
    // flight when the key is written).
    const joined = tier.stats().tier.joined;
    const late = runThreads(tier, [{ op: 'burst', key, n: 1 }]);
    // Its ask has reached the refresher while the old read is still held.
    await vi.waitFor(() => expect(tier.stats().tier.joined).toBeGreaterThan(joined), {
      timeout: 10_000,
    });
    proxied.releaseReplies();
    expect(await read).toBe('old');
    expect(merged(await late).values).toEqual({ '"new"': 1 });
    // Stored as fresh, 'old' would be served for a minute.
    expect(await tier.get(key)).toBe('new');
  });

  it("a caller that asks after the change is not handed the answer to its own thread's earlier refresh", async () => {
    const proxied = await proxyCluster(cluster);
    const tier = await tierFor({
      redis: proxied.seeds,
      l2Timeout: '10s',
      requestTimeout: '20s',
      softTtl: '300ms',
    });
    await tracked(tier, MASTERS);
    const key = 'c:race:same-thread';
    const owner = await ownerOf(cluster, key);
    await owner.set(key, 'old');
    expect(await tier.get(key)).toBe('old');
    await sleep(400);
    // Stale: served, and this thread asks for one background refresh, whose read is held.
    const refreshes = tier.stats().tier.refreshes;
    proxied.holdReplies();
    expect(await tier.get(key)).toBe('old');
    expect(tier.stats().tier.refreshes).toBe(refreshes + 1);
    await sleep(100);
    const seen = tier.stats().tier.invalidations;
    await owner.set(key, 'new');
    await announced(tier, seen);
    // The change dropped the entry: a miss, asked by the same thread while the refresh's
    // read (from before the change) is still held. Its reply goes to this thread too.
    const joined = tier.stats().tier.joined;
    const late = tier.get(key);
    await vi.waitFor(() => expect(tier.stats().tier.joined).toBeGreaterThan(joined), {
      timeout: 10_000,
    });
    proxied.releaseReplies();
    expect(await late).toBe('new');
  });
});
