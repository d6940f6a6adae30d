/**
 * All of Redis down for a while (every master SIGKILLed, restarted 8 s later), under
 * load, against a real gateway. The masters run with AOF (appendfsync always), as the
 * README advises for a cluster holding counters, so what Redis acknowledged survives the
 * restart and the counter can be checked exactly.
 *
 * Soft TTL 200 ms + stale TTL 3 s: cached values are served stale for about 3 s after
 * their last refresh, then nothing is servable and every read is a fast 503.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisClusterHandle, startRedisCluster } from '../../src/dev/redis-cluster.ts';
import {
  gatewayPids,
  KeyFactory,
  metric,
  sampleRss,
  slotOwners,
} from '../fixtures/fault/fault-env.ts';
import { report, select, tally } from '../fixtures/fault/fault-load.ts';
import { FAULT_TIMING, faultGatewayArgs, startScenario } from '../fixtures/fault/fault-scenario.ts';
import { request } from '../fixtures/gateway/http.ts';

const { requestTimeoutMs: REQUEST_TIMEOUT_MS, marginMs: MARGIN_MS } = FAULT_TIMING;
const SOFT_TTL_MS = 200;
const STALE_TTL_MS = 3000;
const DOWN_MS = 8000;
const BURST = 2000;

let cluster: RedisClusterHandle;
beforeAll(async () => {
  cluster = await startRedisCluster({
    masters: 3,
    extraConfig: ['appendonly yes', 'appendfsync always'],
  });
});
afterAll(() => cluster?.stop());

describe('all of Redis down for 8 s, under load', () => {
  it('the gateway stays up (healthz 200, readyz 503); cached keys are served stale until soft + ' +
    'stale TTL, then every read is a fast 503; memory stays bounded; counter increments are ' +
    'accepted throughout and, once Redis is back, flushed exactly once', async () => {
    const s = await startScenario(cluster, {
      tag: 'down',
      gatewayArgs: faultGatewayArgs(`${SOFT_TTL_MS}ms`, `${STALE_TTL_MS}ms`),
    });
    const owners = await slotOwners(s.masters[0]);
    const burstKeys = new KeyFactory('down:burst', (slot) => String(owners[slot]));
    const pids = gatewayPids(s.gw);
    const rssBefore = sampleRss(pids);
    s.load.mark('before');
    await sleep(1500);
    const rssBaseline = Math.max(...rssBefore.stop());

    const rejectedBefore = await metric(s.gw.url, 'hotshield_refresher_breaker_rejected_total');
    s.load.mark('down');
    const downAt = s.load.now();
    await Promise.all(cluster.nodes.map((n) => cluster.killNode(n.port, 'SIGKILL')));
    const rssDown = sampleRss(pids);
    await sleep(1000);
    const health = (await request(`${s.gw.url}/healthz`)).status;
    const ready = (await request(`${s.gw.url}/readyz`)).status;
    // A burst of misses on top of the load: refused, not queued.
    const burstStarted = performance.now();
    const burstStatuses: Record<string, number> = {};
    let burstMaxMs = 0;
    let left = BURST;
    await Promise.all(
      Array.from({ length: 100 }, async () => {
        while (left-- > 0) {
          const started = performance.now();
          const key = burstKeys.next(String(s.masters[left % s.masters.length]));
          const r = await request(`${s.gw.url}/v1/kv/${key}`).then(
            (x) => String(x.status),
            (e: NodeJS.ErrnoException) => `0:${e.code}`,
          );
          burstMaxMs = Math.max(burstMaxMs, performance.now() - started);
          burstStatuses[r] = (burstStatuses[r] ?? 0) + 1;
        }
      }),
    );
    const burstMs = Math.round(performance.now() - burstStarted);
    const unflushedDuring = await metric(s.gw.url, 'hotshield_counter_unflushed');
    await sleep(Math.max(0, DOWN_MS - (s.load.now() - downAt)));
    const rssOutage = rssDown.stop();
    const rejectedDuring =
      Number(await metric(s.gw.url, 'hotshield_refresher_breaker_rejected_total')) -
      Number(rejectedBefore);

    s.load.mark('restarting');
    const restartAt = s.load.now();
    for (const n of cluster.nodes) await cluster.restartNode(n.port);
    await cluster.waitUntilReady();
    const readyAt = s.load.now();
    // The gateway reconnects (cluster retry ≤ 2 s) and its circuits close (1 s).
    await sleep(3000 + MARGIN_MS);
    s.load.mark('after');
    await sleep(2000);
    const o = await s.finish();
    const unflushedAfter = await metric(s.gw.url, 'hotshield_counter_unflushed');
    const duplicates = await metric(s.gw.url, 'hotshield_counter_duplicates_total');
    await s.gw.stop();

    const cached = select(o.samples, { kind: 'cached' });
    const lastStale = select(cached, { status: 200, from: downAt, to: restartAt }).reduce(
      (m, x) => Math.max(m, x.at),
      -1,
    );
    const first503 = select(cached, { status: 503 }).reduce((m, x) => Math.min(m, x.at), Infinity);
    const last503 = select(o.samples, { status: 503 }).reduce((m, x) => Math.max(m, x.at), -1);
    console.info(
      `${report(`all masters killed at ${Math.round(downAt)} ms, restarted at ${Math.round(restartAt)}, ready at ${Math.round(readyAt)} ms`, o.samples)}\n` +
        `  cached keys: last 200 at down+${Math.round(lastStale - downAt)} ms, first 503 at down+${Math.round(first503 - downAt)} ms (soft + stale TTL ${SOFT_TTL_MS + STALE_TTL_MS} ms)\n` +
        `  last 503 at ready+${Math.round(last503 - readyAt)} ms; healthz ${health}, readyz ${ready}; burst of ${BURST} misses in ${burstMs} ms: ${JSON.stringify(burstStatuses)}, slowest ${Math.round(burstMaxMs)} ms\n` +
        `  Redis calls refused at once (open circuits, Redis not connected): ${rejectedDuring}\n` +
        `  RSS KiB: before max ${rssBaseline}, during the outage max ${Math.max(...rssOutage)}\n` +
        `  counter: ${JSON.stringify(o.counter)}, total in Redis ${o.total}, via gateway ${o.viaGateway}; unflushed during ${unflushedDuring}, after ${unflushedAfter}; duplicate flushes ${duplicates}`,
    );

    // The gateway stayed up and answered every request.
    expect(health).toBe(200);
    expect(ready).toBe(503);
    expect(o.samePids).toBe(true);
    expect(o.samples.filter((x) => x.status === 0)).toEqual([]);
    // Stale within the limit: every cached read during the first part of the outage is
    // a 200 with its value (their last refresh was at most a soft TTL before the kill).
    const servable = select(cached, { from: downAt, to: downAt + STALE_TTL_MS - 1000 });
    expect(servable.length).toBeGreaterThan(20);
    expect(tally(servable).statuses).toEqual({ '200': servable.length });
    expect(servable.filter((x) => x.wrongBody)).toEqual([]);
    expect(servable.some((x) => x.cache === 'STALE')).toBe(true);
    // Beyond soft + stale TTL nothing is served: fast 503s (a caller never waits past the
    // request timeout), cached and uncached alike.
    const beyond = select(o.samples, {
      kind: 'cached',
      from: downAt + SOFT_TTL_MS + STALE_TTL_MS + 1000,
      answeredBefore: restartAt,
    });
    expect(beyond.length).toBeGreaterThan(20);
    expect(tally(beyond).statuses).toEqual({ '503': beyond.length });
    const uncachedDown = select(o.samples, {
      kind: 'uncached',
      from: downAt + 500,
      answeredBefore: restartAt,
    });
    expect(tally(uncachedDown).statuses).toEqual({ '503': uncachedDown.length });
    const refused = select(o.samples, { status: 503 });
    expect(Math.max(...refused.map((x) => x.ms))).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
    expect(burstStatuses).toEqual({ '503': BURST });
    expect(burstMaxMs).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
    // Fast because most misses do not wait for Redis at all: once a few waits for a
    // connection timed out, calls are refused at once until the next try.
    expect(rejectedDuring).toBeGreaterThan(10);
    // Increments are accepted throughout (202); sync ones cannot be confirmed (202 too).
    const incrDown = select(o.samples, {
      kind: 'incr',
      from: downAt + 500,
      answeredBefore: restartAt,
    });
    expect(tally(incrDown).statuses).toEqual({ '202': incrDown.length });
    expect(unflushedDuring).toBeGreaterThan(0);
    // Bounded memory: the outage and the burst did not grow the gateway much.
    expect(Math.max(...rssOutage) - rssBaseline).toBeLessThan(100 * 1024);
    // Back, without restarting the gateway: it reconnects (cluster retry ≤ 2 s) and its
    // circuits close (1 s); everything answers, cached values are the stored ones (AOF).
    expect(last503).toBeLessThan(readyAt + 3000 + MARGIN_MS);
    const after = select(o.samples, { phase: 'after' });
    expect(after.length).toBeGreaterThan(50);
    expect(after.filter((x) => ![200, 202, 404].includes(x.status))).toEqual([]);
    const cachedAfter = select(after, { kind: 'cached' });
    expect(tally(cachedAfter).statuses).toEqual({ '200': cachedAfter.length });
    expect(cachedAfter.filter((x) => x.wrongBody)).toEqual([]);
    // Counters: everything accepted is in Redis, once.
    expect(o.total).toBe(BigInt(o.counter.accepted));
    expect(o.viaGateway).toBe(o.total);
    expect(unflushedAfter).toBe(0);
  }, 90_000);
});
