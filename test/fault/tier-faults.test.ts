/**
 * The tier when things break: every Redis master hung (SIGSTOP, no TCP reset), and the
 * refresher thread killed. Callers get stale values or fast typed errors, never a hang,
 * and the tier recovers by itself. A cluster of its own, since it freezes the nodes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { refresherThreadsOf } from '../../src/tier/create.ts';
import { freezeNodes, tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { timed } from '../fixtures/timing.ts';
import { merged, runThreads } from '../fixtures/workers/tier-threads.ts';

const cluster = useOwnCluster();

const tierFor = tierMaker(cluster, { codec: 'utf8' });

describe('Redis hung (all masters stopped)', () => {
  it('serves stale values, fails unknown keys fast with a typed error, and recovers when Redis returns', async () => {
    const tier = await tierFor({
      softTtl: '100ms',
      staleTtl: '60s',
      l2Timeout: '150ms',
      requestTimeout: '1s',
    });
    await tier.set('f:cached', 'still here');
    expect(await tier.get('f:cached')).toBe('still here');
    await sleep(150);
    const thawMasters = freezeNodes(cluster);

    // Past its soft TTL and Redis unable to answer: the stale value, at once, every time.
    for (let i = 0; i < 20; i++) {
      const r = await timed(tier.get('f:cached'));
      expect(r.value).toBe('still here');
      expect(r.ms).toBeLessThan(50);
      await sleep(20);
    }
    // Unknown keys: a typed error within the request timeout, never a hang.
    const unknown = await Promise.all(
      Array.from({ length: 50 }, (_, i) => timed(tier.get(`f:unknown:${i}`))),
    );
    for (const r of unknown) {
      expect(['HS_ERR_L2_TIMEOUT', 'HS_ERR_L2_UNAVAILABLE']).toContain(r.code);
      expect(r.ms).toBeLessThan(1000);
    }
    // Writes fail typed too, and the L1 does not pretend they happened.
    const w = await timed(tier.set('f:written', 'lost?'));
    expect(['HS_ERR_L2_TIMEOUT', 'HS_ERR_L2_UNAVAILABLE', 'HS_ERR_TIMEOUT']).toContain(w.code);
    expect(w.ms).toBeLessThan(1100);
    // After breakerThreshold failed calls to each node, its circuit opens and callers
    // get their answer before the deadline instead of waiting for it.
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => tier.get(`f:round:${round}:${i}`).catch(() => {})),
      );
    }
    const fast = await timed(tier.get('f:unknown:again'));
    expect(fast.code).toBe('HS_ERR_L2_UNAVAILABLE');
    expect(fast.ms).toBeLessThan(100);
    // (The refresher publishes its breaker counts with its housekeeping, twice a second.)
    for (let i = 0; i < 20 && tier.stats().tier.breakerOpened === 0; i++) await sleep(50);
    expect(tier.stats().tier.breakerOpened).toBeGreaterThanOrEqual(1);

    thawMasters();
    // Recovery: after the breaker's cool-down a probe goes through and reads work again.
    let recovered: unknown;
    for (let i = 0; i < 100 && recovered !== 'back'; i++) {
      await tier.set('f:after', 'back').catch(() => {});
      recovered = await tier.get('f:after').catch(() => undefined);
      if (recovered !== 'back') await sleep(100);
    }
    expect(recovered).toBe('back');
    expect(await tier.get('f:cached')).toBe('still here');
  });
});

describe('refresher killed', () => {
  it('is respawned; waiting callers get a value or a typed error, never a hang; L1 survives', async () => {
    const tier = await tierFor({ requestTimeout: '2s' });
    await tier.set('f:kept', 'kept');
    const threads = () => refresherThreadsOf(tier);
    expect(threads().length).toBe(1);
    const first = threads()[0];

    // Callers in flight on other threads while the refresher dies.
    const running = runThreads(
      tier,
      Array.from({ length: 2 }, (_, t) => ({ op: 'burst' as const, key: `f:during:${t}`, n: 200 })),
    );
    await first?.terminate();
    const all = merged(await running);
    expect(all.reads).toBe(400);
    // Every call settled: with a value (undefined: Redis has none) or a typed error.
    for (const code of Object.keys(all.errors)) {
      expect(['HS_ERR_TIMEOUT', 'HS_ERR_L2_UNAVAILABLE', 'HS_ERR_CLOSED']).toContain(code);
    }

    // A new refresher took over: generation 2, one respawn, and the tier works again.
    for (let i = 0; i < 100 && tier.stats().refresher.generation < 2; i++) await sleep(20);
    expect(tier.stats().refresher.generation).toBe(2);
    expect(tier.stats().tier.respawns).toBe(1);
    expect(threads()[0]).not.toBe(first);
    expect(await tier.get('f:kept')).toBe('kept');
    await tier.set('f:new', 'after respawn');
    expect(await tier.get('f:new')).toBe('after respawn');
    expect(await tier.get('f:nothing')).toBeUndefined();
  });

  it('a caller waiting when the refresher dies is answered by its successor', async () => {
    const tier = await tierFor({ requestTimeout: '5s', loaderTimeout: '3s' });
    const threads = () => refresherThreadsOf(tier);
    let calls = 0;
    // The loader runs here; the refresher that leased it dies before the value is stored.
    const waiting = timed(
      tier.get('f:reload', {
        loader: async () => {
          calls++;
          if (calls === 1) await threads()[0]?.terminate();
          return 'loaded';
        },
      }),
    );
    const r = await waiting;
    expect(r.value ?? r.code).toBe('loaded');
    expect(r.ms).toBeLessThan(5000);
  });
});
