/**
 * A master killed (SIGKILL) with no replica to take over, under load, against a real
 * gateway, then restarted after a few seconds (same port and node ID; no persistence,
 * as a cache cluster runs, so it comes back empty). What the gateway answers depends on
 * the cluster's coverage settings, each on a 3-master cluster of its own
 * (cluster-node-timeout 1 s):
 *
 * - cluster-require-full-coverage yes (Redis's default): once the others mark the dead
 *   master failed, every node refuses every query (CLUSTERDOWN): the whole key space is
 *   down, not just the dead master's slots, until the master is back.
 * - no (with cluster-allow-reads-when-down yes, the recommended pair): only the dead
 *   master's slots fail; counters keep flushing to the other masters.
 * - yes with cluster-allow-reads-when-down yes: reads of the other slots keep working
 *   while the cluster is down, writes (counter flushes) do not.
 *
 * The dead master is never the one the gateway flushes its counter to, so the counter's
 * total survives the restart and can be checked exactly.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startRedisCluster } from '../../src/dev/redis-cluster.ts';
import { clusterStates, until } from '../fixtures/fault/fault-env.ts';
import { report, type Sample, select, tally } from '../fixtures/fault/fault-load.ts';
import {
  FAULT_TIMING,
  faultGatewayArgs,
  span,
  startScenario,
} from '../fixtures/fault/fault-scenario.ts';

const { requestTimeoutMs: REQUEST_TIMEOUT_MS, marginMs: MARGIN_MS } = FAULT_TIMING;
const NODE_TIMEOUT_MS = 1000;
const DOWN_MS = 4000;

interface Settings {
  requireFullCoverage: boolean;
  allowReadsWhenDown: boolean;
}

interface Timeline {
  samples: Sample[];
  killedAt: number;
  /** When every live node reported cluster_state:fail (undefined: never, within DOWN_MS). */
  clusterDownAt?: number;
  restartedAt: number;
  /** When every node reported cluster_state:ok again after the restart. */
  okAt: number;
  counter: { attempted: number; accepted: number; synced: number };
  total: bigint;
}

async function killWithoutReplica(tag: string, settings: Settings): Promise<Timeline> {
  const cluster = await startRedisCluster({
    masters: 3,
    nodeTimeoutMs: NODE_TIMEOUT_MS,
    ...settings,
  });
  onTestFinished(() => cluster.stop());
  const s = await startScenario(cluster, {
    tag: `no-replica:${tag}`,
    gatewayArgs: faultGatewayArgs(),
    pickVictim: (masters, flushTo) => masters.find((p) => p !== flushTo) as number,
  });
  const survivors = s.masters.filter((p) => p !== s.victim);
  s.load.mark('before');
  await sleep(1500);

  s.load.mark('down');
  const killedAt = s.load.now();
  await cluster.killNode(s.victim, 'SIGKILL');
  let clusterDownAt: number | undefined;
  const downUntil = performance.now() + DOWN_MS;
  while (performance.now() < downUntil) {
    if (
      clusterDownAt === undefined &&
      (await clusterStates(survivors)).every((st) => st === 'fail')
    )
      clusterDownAt = s.load.now();
    await sleep(50);
  }

  s.load.mark('restarted');
  const restartedAt = s.load.now();
  await cluster.restartNode(s.victim);
  await until('cluster_state:ok on every node', async () =>
    (await clusterStates(s.masters)).every((st) => st === 'ok'),
  );
  const okAt = s.load.now();
  // The gateway's circuit for the node closes within its cool-down (1 s) and a dead
  // connection is re-opened within a slots refresh (2 s).
  await sleep(3000 + MARGIN_MS);
  s.load.mark('after');
  await sleep(2000);
  const o = await s.finish();
  console.info(
    `${report(`no replica (${tag}): killed ${s.victim} at ${Math.round(killedAt)} ms, cluster down at ${clusterDownAt === undefined ? 'never' : Math.round(clusterDownAt)}, restarted at ${Math.round(restartedAt)}, ok at ${Math.round(okAt)} ms`, o.samples)}\n` +
      `  counter: ${JSON.stringify(o.counter)}, total in Redis ${o.total}, via gateway ${o.viaGateway}`,
  );
  expect(o.samePids).toBe(true);
  expect(o.viaGateway).toBe(o.total);
  await s.gw.stop();
  return {
    samples: o.samples,
    killedAt,
    clusterDownAt,
    restartedAt,
    okAt,
    counter: o.counter,
    total: o.total,
  };
}

/** Checks every setting shares; returns the 503s of each uncached group. */
function expectCommonOutcome(t: Timeline): { victim503: Sample[]; other503: Sample[] } {
  const { samples, killedAt, okAt } = t;
  // Cached keys: 200 throughout the outage (stale), with the stored value; the dead
  // master's come back 404 once it is restarted (empty: no persistence), the others' 200.
  const cached = select(samples, { kind: 'cached', to: t.restartedAt });
  expect(tally(cached).statuses).toEqual({ '200': cached.length });
  expect(cached.filter((s) => s.wrongBody)).toEqual([]);
  const otherCached = select(samples, { kind: 'cached', group: 'other' });
  expect(tally(otherCached).statuses).toEqual({ '200': otherCached.length });
  const victimCachedLater = select(samples, {
    kind: 'cached',
    group: 'victim',
    from: t.restartedAt,
  });
  // The restarted master is empty: once its key's refresh reads "absent" the entry is a
  // negative one (1 s) and then a plain miss, which, until the node has rejoined and its
  // circuit closed, gets the fast 503 of any uncached key there (the same bound as below).
  expect(
    victimCachedLater.filter((s) => s.status !== 200 && s.status !== 404 && s.status !== 503),
  ).toEqual([]);
  expect(
    victimCachedLater.filter((s) => s.status === 503 && s.at > okAt + 3000 + MARGIN_MS),
  ).toEqual([]);
  expect(select(cached, { phase: 'down' }).some((s) => s.cache === 'STALE')).toBe(true);

  // Uncached keys: 404 (Redis answered) or a 503 within the request timeout, never else.
  const uncached = select(samples, { kind: 'uncached' });
  expect(uncached.filter((s) => s.status !== 404 && s.status !== 503)).toEqual([]);
  const failed = uncached.filter((s) => s.status === 503);
  expect(Math.max(0, ...failed.map((s) => s.ms))).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
  // The dead master's slots fail from the kill until the restart (+ reconnect); they
  // failed for certain in the middle of the outage.
  const victim503 = select(failed, { group: 'victim' });
  const midOutage = select(uncached, {
    group: 'victim',
    from: killedAt + 1000,
    answeredBefore: t.restartedAt,
  });
  expect(midOutage.length).toBeGreaterThan(10);
  expect(tally(midOutage).statuses).toEqual({ '503': midOutage.length });
  // Recovery, without restarting the gateway: no 503 once the cluster has been ok for a
  // while, and everything answers as on a healthy cluster in the last phase.
  expect(failed.filter((s) => s.at > okAt + 3000 + MARGIN_MS)).toEqual([]);
  const after = select(samples, { phase: 'after' });
  expect(after.length).toBeGreaterThan(50);
  expect(after.filter((s) => ![200, 202, 404].includes(s.status))).toEqual([]);

  // The counter's shard lives on a surviving master: exact, whatever the setting.
  expect(t.total).toBe(BigInt(t.counter.accepted));
  expect(BigInt(t.counter.synced)).toBeLessThanOrEqual(t.total);
  const other503 = select(failed, { group: 'other' });
  console.info(
    `  503s, dead master's slots: ${span(
      victim503.map((s) => s.at),
      killedAt,
      'kill',
    )}; other slots: ${span(
      other503.map((s) => s.at),
      killedAt,
      'kill',
    )}; restart at kill+${Math.round(t.restartedAt - killedAt)}, ok at kill+${Math.round(okAt - killedAt)} ms`,
  );
  return { victim503, other503 };
}

/**
 * Statuses of the sync increments sent once the outage had settled and answered before
 * the restart: 200 (Redis acknowledged the flush) or 202 after the request timeout.
 */
function syncIncrementsDuring(t: Timeline): Record<string, number> {
  const sync = select(t.samples, {
    kind: 'incr',
    from: (t.clusterDownAt ?? t.killedAt) + 500,
    answeredBefore: t.restartedAt,
  }).filter((s) => s.status === 200 || s.ms >= REQUEST_TIMEOUT_MS * 0.9);
  return tally(sync).statuses;
}

describe('a master killed with no replica, under load, restarted after 4 s', () => {
  it('cluster-require-full-coverage yes (default): after about node-timeout the WHOLE cluster ' +
    'refuses, so uncached keys of every slot get fast 503s until the master is back; cached ' +
    'keys answer 200 (stale) throughout; counter increments are accepted and flushed exactly ' +
    'once after', async () => {
    const t = await killWithoutReplica('full', {
      requireFullCoverage: true,
      allowReadsWhenDown: false,
    });
    const { other503 } = expectCommonOutcome(t);
    expect(t.clusterDownAt).toBeDefined();
    const down = t.clusterDownAt as number;
    // Other slots: fine before the failure is agreed, then 503 until the restart.
    const otherMid = select(t.samples, {
      kind: 'uncached',
      group: 'other',
      from: down + 500,
      answeredBefore: t.restartedAt,
    });
    expect(otherMid.length).toBeGreaterThan(10);
    expect(tally(otherMid).statuses).toEqual({ '503': otherMid.length });
    expect(other503.every((s) => s.at + s.ms >= t.killedAt + NODE_TIMEOUT_MS * 0.5)).toBe(true);
    // Nothing can be flushed while the cluster is down: sync increments time out (202).
    expect(syncIncrementsDuring(t)['200'] ?? 0).toBe(0);
  }, 90_000);

  it('cluster-require-full-coverage no + allow-reads-when-down yes (recommended): only the dead ' +
    "master's uncached keys get fast 503s, until it is back; every other slot answers " +
    'throughout; sync increments keep being acknowledged; counter exact', async () => {
    const t = await killWithoutReplica('partial', {
      requireFullCoverage: false,
      allowReadsWhenDown: true,
    });
    const { other503 } = expectCommonOutcome(t);
    expect(t.clusterDownAt).toBeUndefined();
    expect(other503).toEqual([]);
    expect(syncIncrementsDuring(t)['200'] ?? 0).toBeGreaterThan(0);
  }, 90_000);

  it('cluster-require-full-coverage yes + allow-reads-when-down yes: reads of the other slots keep ' +
    'answering while the cluster is down, but no write is taken (sync increments wait, 202)', async () => {
    const t = await killWithoutReplica('reads', {
      requireFullCoverage: true,
      allowReadsWhenDown: true,
    });
    const { other503 } = expectCommonOutcome(t);
    expect(t.clusterDownAt).toBeDefined();
    expect(other503).toEqual([]);
    expect(syncIncrementsDuring(t)['200'] ?? 0).toBe(0);
  }, 90_000);
});
