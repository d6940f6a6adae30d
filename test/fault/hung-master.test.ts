/**
 * A hung master: SIGSTOP, so its sockets stay open and nothing answers (no TCP reset, no
 * refused connection), under load, against a real gateway, then SIGCONT. The cluster's
 * node timeout is long (60 s) so Redis itself never notices: the gateway alone must keep
 * its deadlines. The hung master is the one the gateway flushes its counter to.
 */

import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type RedisClusterHandle, startRedisCluster } from '../../src/dev/redis-cluster.ts';
import {
  gatewayPids,
  KeyFactory,
  metric,
  sampleRss,
  slotOwners,
  unreadBytesAt,
} from '../fixtures/fault/fault-env.ts';
import { report, select, tally } from '../fixtures/fault/fault-load.ts';
import {
  FAULT_TIMING,
  faultGatewayArgs,
  span,
  startScenario,
} from '../fixtures/fault/fault-scenario.ts';
import { request } from '../fixtures/gateway/http.ts';

const {
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
  breakerCooldownMs: BREAKER_COOLDOWN_MS,
  marginMs: MARGIN_MS,
} = FAULT_TIMING;
const HUNG_MS = 6000;
const BURST = 2000;

let cluster: RedisClusterHandle;
beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, nodeTimeoutMs: 60_000 });
});
afterAll(() => cluster?.stop());

/** `n` GETs of distinct keys, `concurrency` at a time: statuses and the slowest answer. */
async function burst(
  url: string,
  keys: () => string,
  n: number,
  concurrency: number,
): Promise<{ statuses: Record<string, number>; maxMs: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  onTestFinished(() => agent.destroy());
  const statuses: Record<string, number> = {};
  let maxMs = 0;
  let left = n;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) {
        const started = performance.now();
        const status = await request(`${url}/v1/kv/${keys()}`, { agent }).then(
          (r) => String(r.status),
          (e: NodeJS.ErrnoException) => `0:${e.code}`,
        );
        maxMs = Math.max(maxMs, performance.now() - started);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  return { statuses, maxMs: Math.round(maxMs) };
}

describe('a hung master (SIGSTOP, no TCP reset), under load', () => {
  it('every request finishes: its uncached keys get 503 within request-timeout + margin, other ' +
    'slots and cached keys are unaffected, a burst of 2000 misses is refused without queueing ' +
    '(in-flight, bytes sent to the hung node and RSS stay bounded); after SIGCONT it answers ' +
    'again within the breaker cool-down and the counter is exact', async () => {
    const s = await startScenario(cluster, {
      tag: 'hung',
      gatewayArgs: faultGatewayArgs(),
    });
    const victim = cluster.nodes.find((n) => n.port === s.victim);
    if (victim === undefined) throw new Error('victim not found');
    const owners = await slotOwners(s.masters[0]);
    const burstKeys = new KeyFactory('hung:burst', (slot) =>
      owners[slot] === s.victim ? 'victim' : 'other',
    );
    const rss = sampleRss(gatewayPids(s.gw));
    s.load.mark('before');
    await sleep(1500);
    const rssBefore = Math.max(...rss.stop());

    s.load.mark('hung');
    const hungAt = s.load.now();
    process.kill(victim.pid, 'SIGSTOP');
    let thawed = false;
    onTestFinished(() => {
      if (!thawed) process.kill(victim.pid, 'SIGCONT');
    });
    const rssDuring = sampleRss(gatewayPids(s.gw));
    const inFlight: number[] = [];
    const start = performance.now();
    const watch = (async () => {
      while (performance.now() < start + HUNG_MS) {
        const v = await metric(s.gw.url, 'hotshield_refresher_in_flight');
        if (v !== undefined) inFlight.push(v);
        await sleep(250);
      }
    })();
    await sleep(1500);
    const burstResult = await burst(s.gw.url, () => burstKeys.next('victim'), BURST, 100);
    await watch;
    const unread = await unreadBytesAt(s.victim);
    const rssHung = rssDuring.stop();

    s.load.mark('thawed');
    const thawedAt = s.load.now();
    process.kill(victim.pid, 'SIGCONT');
    thawed = true;
    await sleep(BREAKER_COOLDOWN_MS + MARGIN_MS);
    s.load.mark('after');
    await sleep(2000);
    const o = await s.finish();
    const duplicates = await metric(s.gw.url, 'hotshield_counter_duplicates_total');
    await s.gw.stop();

    const failed = select(o.samples, { kind: 'uncached', status: 503 });
    console.info(
      `${report(`hung master ${s.victim} from ${Math.round(hungAt)} to ${Math.round(thawedAt)} ms`, o.samples)}\n` +
        `  503s: ${span(
          failed.map((x) => x.at),
          hungAt,
          'stop',
        )}; burst of ${BURST} misses: ${JSON.stringify(burstResult.statuses)}, slowest ${burstResult.maxMs} ms\n` +
        `  refresher in flight while hung: max ${Math.max(...inFlight)} (${inFlight.length} scrapes); bytes unread by the hung node at the end: ${unread}\n` +
        `  RSS KiB: before max ${rssBefore}, while hung max ${Math.max(...rssHung)}\n` +
        `  counter: ${JSON.stringify(o.counter)}, total in Redis ${o.total}, via gateway ${o.viaGateway}, duplicate flushes ${duplicates}`,
    );

    // No request hangs: every one was answered, 503s within the request timeout.
    expect(o.samples.filter((x) => x.status === 0)).toEqual([]);
    expect(Math.max(...failed.map((x) => x.ms))).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
    // Cached keys: 200 throughout, stale while hung.
    const cached = select(o.samples, { kind: 'cached' });
    expect(tally(cached).statuses).toEqual({ '200': cached.length });
    expect(
      select(cached, { phase: 'hung', group: 'victim' }).some((x) => x.cache === 'STALE'),
    ).toBe(true);
    // Uncached: the hung master's fail for the whole hang, the others' never.
    const hungVictim = select(o.samples, {
      kind: 'uncached',
      group: 'victim',
      from: hungAt + 500,
      answeredBefore: thawedAt,
    });
    expect(hungVictim.length).toBeGreaterThan(10);
    expect(tally(hungVictim).statuses).toEqual({ '503': hungVictim.length });
    const other = select(o.samples, { kind: 'uncached', group: 'other' });
    expect(tally(other).statuses).toEqual({ '404': other.length });
    // A burst of misses is refused fast, not queued behind the hung node.
    expect(burstResult.statuses).toEqual({ '503': BURST });
    expect(burstResult.maxMs).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
    // Bounded: keys in flight, bytes queued into the hung node, the gateway's memory.
    expect(Math.max(...inFlight)).toBeLessThan(1000);
    expect(unread).toBeLessThan(256 * 1024);
    expect(Math.max(...rssHung) - rssBefore).toBeLessThan(100 * 1024);
    // Recovery after SIGCONT, without restarting the gateway.
    expect(failed.filter((x) => x.at > thawedAt + BREAKER_COOLDOWN_MS + MARGIN_MS)).toEqual([]);
    const after = select(o.samples, { phase: 'after' });
    expect(after.length).toBeGreaterThan(50);
    expect(after.filter((x) => ![200, 202, 404].includes(x.status))).toEqual([]);
    expect(o.samePids).toBe(true);
    // The flushes sent into the hung socket ran on SIGCONT; their re-sends were
    // recognised: nothing lost, nothing counted twice.
    expect(o.total).toBe(BigInt(o.counter.accepted));
    expect(o.viaGateway).toBe(o.total);
  }, 90_000);
});
