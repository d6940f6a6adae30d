/**
 * Regression tests for protocol races that need a misbehaving Redis (SIGSTOPped
 * masters, maxmemory): a lease granted after its caller timed out, a breaker probe that
 * never reports, and close() while another attachment's write is in flight. A cluster
 * of its own (it freezes nodes).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { attachTier } from '../../src/index.ts';
import { freezeNodes, tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient, nodeClient } from '../fixtures/redis/redis-clients.ts';
import { timed } from '../fixtures/timing.ts';

const cluster = useOwnCluster();

const tierFor = tierMaker(cluster, { codec: 'utf8' });

describe('leases', () => {
  it('a lease that reaches a thread whose loader caller already timed out is passed on, not dropped', async () => {
    const tier = await tierFor({ l2Timeout: '400ms', loaderTimeout: '2s', breakerThreshold: 100 });
    const other = attachTier(tier.handle); // a second client id in this thread
    onTestFinished(() => other.close());
    const key = 'rf:late-lease';
    await clusterClient(cluster.seeds).del(key);
    const thawMasters = freezeNodes(cluster); // the GET of the flight hangs for a while
    const first = timed(tier.get(key, { loader: () => 'A', timeout: '100ms' }));
    await sleep(20);
    const second = timed(other.get(key, { loader: () => 'B', timeout: '5s' }));
    await sleep(180);
    thawMasters(); // the GET answers null: lease to `tier`, whose caller has gone
    expect((await first).code).toBe('HS_ERR_TIMEOUT');
    const r = await second;
    expect(r).toMatchObject({ value: expect.stringMatching(/^(A|B)$/) });
    expect(r.ms).toBeLessThan(1500);
  });
});

describe('breaker', () => {
  it('a half-open probe that fails with a per-key error (OOM on SET) does not leave the circuit open for ever', async () => {
    const tier = await tierFor({
      breakerThreshold: 1,
      breakerCooldown: '200ms',
      l2Timeout: '150ms',
      requestTimeout: '1s',
    });
    const key = 'rf:probe';
    const masters = cluster.nodes.filter((n) => n.role === 'master').map((n) => nodeClient(n.port));
    onTestFinished(async () => {
      await Promise.all(masters.map((m) => m.config('SET', 'maxmemory', '0')));
    });
    // One node failure opens the circuit of the key's master.
    const thawMasters = freezeNodes(cluster);
    expect((await timed(tier.get(key))).code).toBe('HS_ERR_L2_TIMEOUT');
    thawMasters();
    // Redis is healthy again but refuses writes for a moment (maxmemory, noeviction).
    await Promise.all(masters.map((m) => m.config('SET', 'maxmemory', '1')));
    await sleep(300); // past the cool-down: the next call is the probe
    const probe = await timed(tier.set(key, 'x'));
    expect(probe.code).toBe('HS_ERR_L2_UNAVAILABLE');
    expect(probe.message).toMatch(/OOM/);
    await Promise.all(masters.map((m) => m.config('SET', 'maxmemory', '0')));
    // The node is fine: reads of its keys must work again after at most a cool-down or two.
    let last: { code?: string; message?: string } = {};
    for (let i = 0; i < 30; i++) {
      last = await timed(tier.get(key));
      if (last.code === undefined) break;
      await sleep(100);
    }
    expect(last.message ?? 'recovered').toBe('recovered');
  });
});

describe('close', () => {
  it("close() fails another attachment's unacknowledged write with HS_ERR_CLOSED, not a late HS_ERR_TIMEOUT", async () => {
    const tier = await tierFor({ l2Timeout: '500ms', requestTimeout: '3s' });
    const other = attachTier(tier.handle);
    onTestFinished(() => other.close());
    const thawMasters = freezeNodes(cluster);
    const write = timed(other.set('rf:closing', 'x'));
    await sleep(50); // the refresher has sent the SET and waits for Redis
    const closing = tier.close();
    await sleep(100);
    thawMasters();
    await closing;
    const r = await write;
    expect(r).toMatchObject({ code: 'HS_ERR_CLOSED' });
    expect(r.ms).toBeLessThan(1500);
  });
});
