/**
 * Regression tests for races in the tier ⇄ refresher protocol (tier.ts, refresher.ts),
 * found in review: writes racing a leased flight, lost wake-ups (leases nobody could
 * run, a respawn during a load, a closed lessee), error reporting next to a loader,
 * oversized timeouts and malformed asks. A cluster of its own.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BroadcastChannel } from 'node:worker_threads';
import { describe, expect, it, onTestFinished } from 'vitest';
import { attachTier } from '../../src/index.ts';
import { clientChannel, controlChannel } from '../../src/refresher/protocol.ts';
import { itemsOf } from '../../src/refresher/turn-batch.ts';
import { refresherThreadsOf } from '../../src/tier/create.ts';
import { tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';
import { timed } from '../fixtures/timing.ts';

const cluster = useOwnCluster();

const tierFor = tierMaker(cluster, { codec: 'utf8' });

describe('writes racing a leased flight (refresher #loaded / #loadEnded ignore `superseded`)', () => {
  it('a set acknowledged while a loader runs is not overwritten by the loaded value', async () => {
    const tier = await tierFor();
    const redis = clusterClient(cluster.seeds);
    const key = 'r:lease-then-set';
    await redis.del(key);
    const loading = timed(
      tier.get(key, { loader: () => sleep(300).then(() => 'from loader'), timeout: '2s' }),
    );
    await sleep(100); // Redis said absent; this thread holds the lease; the loader runs
    expect(tier.stats().tier.leases).toBe(1);
    await tier.set(key, 'written');
    expect(await tier.get(key)).toBe('written');
    await loading;
    await sleep(50);
    // The acknowledged write must survive the older loader result.
    expect(await redis.get(key)).toBe('written');
    expect(await tier.get(key)).toBe('written');
  });

  it('a delete acknowledged while a loader runs is not undone by the loaded value', async () => {
    const tier = await tierFor();
    const redis = clusterClient(cluster.seeds);
    const key = 'r:lease-then-delete';
    await redis.del(key);
    const loading = timed(
      tier.get(key, { loader: () => sleep(300).then(() => 'from loader'), timeout: '2s' }),
    );
    await sleep(100);
    await tier.delete(key);
    await loading;
    await sleep(50);
    expect(await redis.exists(key)).toBe(0);
  });

  it('a loader answering "gone" after a set does not hide the written value', async () => {
    const tier = await tierFor({ negativeTtl: '5s' });
    const redis = clusterClient(cluster.seeds);
    const key = 'r:lease-gone-after-set';
    await redis.del(key);
    const loading = timed(
      tier.get(key, { loader: () => sleep(300).then(() => undefined), timeout: '2s' }),
    );
    await sleep(100);
    await tier.set(key, 'written');
    await loading;
    await sleep(50);
    expect(await redis.get(key)).toBe('written');
    // L1 must not keep a negative (GONE) entry over the acknowledged write.
    expect(await tier.get(key)).toBe('written');
  });
});

describe('lost wake-ups', () => {
  it('a get with a loader racing a delete of the same key settles with a value, not a timeout', async () => {
    const tier = await tierFor({ requestTimeout: '1s' });
    const key = 'r:get-loader-vs-delete';
    await clusterClient(cluster.seeds).del(key);
    // Posted in the same turn: the refresher sees fetch(load) then delete before the
    // batched GET leaves, so the flight is superseded and ends 'absent' without a lease.
    const [got, deleted] = await Promise.all([
      timed(tier.get(key, { loader: () => 'loaded' })),
      timed(tier.delete(key)),
    ]);
    expect(deleted.code).toBeUndefined();
    expect(got).not.toHaveProperty('code');
    expect(['loaded', undefined]).toContain(got.value);
    expect(tier.stats().thread).toEqual({ waiting: 0, pendingKeys: 0 });
  });

  it('a lease granted for a stale read with a loader is not dropped (key blocked for loaderTimeout + 1 s)', async () => {
    // Without coherence: with it, Redis announces the DEL below and the entry goes, so
    // there is no stale read to take a lease for (coherence.test.ts covers that path).
    const tier = await tierFor({
      softTtl: '100ms',
      staleTtl: '60s',
      loaderTimeout: '3s',
      requestTimeout: '1s',
      coherence: false,
    });
    const redis = clusterClient(cluster.seeds);
    const key = 'r:stale-lease';
    await tier.set(key, 'v1');
    await redis.del(key); // another application removed it from Redis
    await sleep(150);
    // Stale hit: served at once, and a background refresh is asked for. (It once asked
    // with `load: true` and got a lease this thread had no caller to run.)
    expect(await tier.get(key, { loader: () => 'v2' })).toBe('v1');
    await sleep(100);
    await tier.delete(key);
    const r = await timed(tier.get(key, { loader: () => 'v2' }));
    expect(r).toMatchObject({ value: 'v2' });
  });

  it('a respawned refresher does not lose the store of a loader that was running at its hello', async () => {
    const tier = await tierFor({ requestTimeout: '4s', loaderTimeout: '3s' });
    const threads = () => refresherThreadsOf(tier);
    const r = await timed(
      tier.get('r:hello-while-loading', {
        loader: async () => {
          await threads()[0]?.terminate();
          // Still loading when the successor says hello.
          for (let i = 0; i < 300 && tier.stats().refresher.generation < 2; i++) await sleep(10);
          await sleep(100);
          return 'loaded';
        },
      }),
    );
    expect(tier.stats().refresher.generation).toBe(2);
    expect(r).toMatchObject({ value: 'loaded', ms: expect.any(Number) });
    expect(r.ms).toBeLessThan(2000);
  });

  it('an attachment closed while it holds a lease does not block the key for loaderTimeout + 1 s', async () => {
    const tier = await tierFor({ loaderTimeout: '2s', requestTimeout: '5s' });
    const other = attachTier(tier.handle); // a second client id in this thread
    const key = 'r:lessee-closes';
    await clusterClient(cluster.seeds).del(key);
    const lessee = timed(other.get(key, { loader: () => sleep(500).then(() => 'A') }));
    await sleep(30);
    const joined = timed(tier.get(key, { loader: () => 'B' }));
    await sleep(50);
    await other.close();
    expect((await lessee).code).toBe('HS_ERR_CLOSED');
    const r = await joined;
    expect(r).toMatchObject({ value: expect.stringMatching(/^(A|B)$/) });
    expect(r.ms).toBeLessThan(1500);
  });

  it('a client whose leave arrives before its release (two channels, no order) loses its lease at once', async () => {
    // Found by CI: close() posts 'release' on the client's channel, then 'leave' on the
    // control bus; when the leave won, the release was dropped with the channel and the
    // key stayed leased to the departed client until loaderTimeout. Made certain here by
    // a raw client that never sends the release.
    const tier = await tierFor({ loaderTimeout: '2s', requestTimeout: '5s' });
    const tierId = tier.handle.config.tierId;
    const key = 'r:leave-before-release';
    await clusterClient(cluster.seeds).del(key);
    const bus = new BroadcastChannel(controlChannel(tierId));
    const own = new BroadcastChannel(clientChannel(tierId, 'leaver'));
    onTestFinished(() => {
      bus.close();
      own.close();
    });
    const replies: Array<Record<string, unknown>> = [];
    const heard = (status: string) =>
      new Promise<void>((resolve) => {
        const check = () =>
          replies.some((r) => r.t === status || r.status === status)
            ? resolve()
            : setTimeout(check, 5);
        check();
      });
    own.onmessage = (event) => replies.push(...(itemsOf((event as MessageEvent).data) as never[]));
    bus.postMessage({ t: 'join', from: 'leaver' });
    await heard('welcome');
    own.postMessage({ t: 'fetch', key, from: 'leaver', load: true });
    await heard('lease');
    expect(replies.find((r) => r.status === 'lease')).toMatchObject({ to: 'leaver' });
    const joined = timed(tier.get(key, { loader: () => 'B' }));
    await sleep(50);
    bus.postMessage({ t: 'leave', from: 'leaver' });
    const r = await joined;
    expect(r).toMatchObject({ value: 'B' });
    expect(r.ms).toBeLessThan(1500);
  });
});

describe('error reporting', () => {
  it('a caller without a loader gets the Redis error, not "absent", when another caller has a loader', async () => {
    const tier = await tierFor();
    const redis = clusterClient(cluster.seeds);
    const key = 'r:wrongtype-with-loader';
    await redis.del(key);
    await redis.lpush(key, 'a');
    // Alone, the plain get fails typed (tier.test.ts 'a write that Redis refuses…').
    await expect(tier.get(key)).rejects.toMatchObject({ code: 'HS_ERR_L2_UNAVAILABLE' });
    const [plain] = await Promise.allSettled([tier.get(key), tier.get(key, { loader: () => 'x' })]);
    // With a concurrent loader caller, the lease reply answers it `undefined` instead.
    expect(plain).toMatchObject({ status: 'rejected', reason: { code: 'HS_ERR_L2_UNAVAILABLE' } });
  });

  it('a per-call timeout above 2^31-1 ms is refused or honoured, not turned into 1 ms', async () => {
    const tier = await tierFor();
    const r = await timed(
      tier.get('r:long-timeout', { loader: () => sleep(50).then(() => 'x'), timeout: '600h' }),
    );
    if (r.code !== 'HS_ERR_OPTION') expect(r).toMatchObject({ value: 'x' });
  });

  it('malformed asks and control messages are dropped, not a refresher crash', async () => {
    const tier = await tierFor();
    const tierId = tier.handle.config.tierId;
    // A buggy thread: joins like a client, then sends garbage on its own channel.
    const bus = new BroadcastChannel(controlChannel(tierId));
    const own = new BroadcastChannel(clientChannel(tierId, 'buggy-thread'));
    onTestFinished(() => {
      bus.close();
      own.close();
    });
    const welcomed = new Promise((resolve) => {
      own.onmessage = (event) => resolve(itemsOf((event as MessageEvent).data)[0]);
    });
    bus.postMessage({ t: 'join', from: 'buggy-thread' });
    expect(await welcomed).toEqual({ t: 'welcome' });
    own.postMessage({ t: 'fetch', key: '', from: 'buggy-thread', load: false });
    own.postMessage({ t: 'fetch', key: 'k'.repeat(5000), from: 'buggy-thread', load: false });
    own.postMessage({ t: 'fetch', key: 'spoofed', from: 'someone-else', load: false });
    // A batch (an array, as a thread's link sends one turn's asks) of garbage, too.
    own.postMessage(['garbage', null, { t: 'fetch', key: '', from: 'buggy-thread', load: false }]);
    bus.postMessage({ t: 'join', from: 42 });
    bus.postMessage({ t: 'join', from: 'x'.repeat(1000) });
    bus.postMessage('garbage');
    await sleep(500);
    expect(tier.stats().refresher.generation).toBe(1);
    expect(tier.stats().tier.respawns).toBe(0);
    expect(tier.stats().tier.fetches).toBe(0);
    // The tier still works.
    await tier.set('r:after-garbage', 'ok');
    expect(await tier.get('r:after-garbage')).toBe('ok');
  });
});

describe('bytes handed to set()', () => {
  it('are taken when set() is called: the caller may reuse its buffer at once (raw codec)', async () => {
    const tier = await tierMaker(cluster, { codec: 'raw' })();
    const buf = Buffer.from('first value');
    const first = tier.set('r:reused-buffer:1', buf);
    // Reused before the turn ends, i.e. before the batch of asks is posted.
    buf.write('other value');
    const second = tier.set('r:reused-buffer:2', buf);
    buf.fill(0);
    await Promise.all([first, second]);
    const redis = clusterClient(cluster.seeds);
    expect(await redis.get('r:reused-buffer:1')).toBe('first value');
    expect(await redis.get('r:reused-buffer:2')).toBe('other value');
    expect(String(await tier.get('r:reused-buffer:1'))).toBe('first value');
  });
});
