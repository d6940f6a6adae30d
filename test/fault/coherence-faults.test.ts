/**
 * Coherence through the faults that silently end Redis's tracking or move a key away from
 * the connection that tracked it: a replica promoted by a manual failover (no connection
 * drops: ioredis just switches the node's role), a master killed and its replica
 * promoted, a tracked key's slot migrated to another master, and a tracked key evicted
 * under maxmemory. Embedded tiers with a soft TTL of a minute, so expiry cannot explain
 * what they serve; 3 masters + 3 replicas, cluster-node-timeout 1 s.
 *
 * The bound: once a write is acknowledged, a tier serves the new value within about 2 s
 * whatever failed (FAULT_TIMING.marginMs on top, for a busy 2-core machine); and once
 * tracking is back, the next write is announced and served at once.
 */
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Tier } from '../../src/index.ts';
import { adminClient, failBack, roleOf, slotOwners, until } from '../fixtures/fault/fault-env.ts';
import { FAULT_TIMING } from '../fixtures/fault/fault-scenario.ts';
import {
  announced,
  invalidations,
  type ReadingTier,
  until as served,
  tracked,
} from '../fixtures/redis/coherence-probe.ts';
import { tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';
import { migrateSlot } from '../fixtures/redis/slot-migration.ts';

const MASTERS = 3;
const cluster = useOwnCluster({
  masters: MASTERS,
  replicasPerMaster: 1,
  nodeTimeoutMs: 1000,
  requireFullCoverage: false,
});
const tierFor = tierMaker(cluster, {
  codec: 'utf8',
  softTtl: '60s',
  staleTtl: '60s',
  l2Timeout: `${FAULT_TIMING.l2TimeoutMs}ms`,
  requestTimeout: `${FAULT_TIMING.requestTimeoutMs}ms`,
});
/** About 2 s after a write's acknowledgement, whatever failed; plus slack for the machine. */
const BOUND_MS = 2000 + FAULT_TIMING.marginMs;

/** Reads that fail mid-fault (a fast 503 at the gateway) read as their error code. */
function reading(tier: Tier): ReadingTier {
  return {
    get: (key) =>
      tier.get(key).catch((error: { code?: string }) => `error ${error.code ?? String(error)}`),
    stats: () => tier.stats(),
  };
}

/** The launched masters' ports, and the port of the replica of each (same order). */
function roles(): { masters: number[]; heirs: number[] } {
  const masters = cluster.nodes.filter((n) => n.role === 'master').map((n) => n.port);
  const heirs = masters.map((_, i) => cluster.nodes[masters.length + i].port);
  return { masters, heirs };
}

/** The port of the master owning `key` now, as the live node on `askPort` sees it. */
async function ownerPort(key: string, askPort: number): Promise<number> {
  return (await slotOwners(askPort))[calculateSlot(key)];
}

/**
 * A tier tracked on every master, holding `key` = 'one' read from its master; that
 * master's port and its replica's.
 */
async function primed(key: string) {
  const tier = await tierFor();
  await tracked(tier, MASTERS);
  const { masters, heirs } = roles();
  const victim = await ownerPort(key, masters[0]);
  const heir = heirs[masters.indexOf(victim)];
  const writer = clusterClient(cluster.seeds);
  onTestFinished(() => writer.disconnect());
  await writer.set(key, 'one');
  expect(await tier.get(key)).toBe('one');
  return { tier, reads: reading(tier), writer, victim, heir, masters };
}

/**
 * After a fault: `two` written (once the cluster takes writes again) is served within the
 * bound; once every master is tracked again, so is `three`, and `four` is announced and
 * served at once.
 */
async function boundHoldsAndTrackingIsBack(
  p: Awaited<ReturnType<typeof primed>>,
  key: string,
  what: string,
): Promise<void> {
  await until(
    'the cluster to take the write',
    async () => (await p.writer.set(key, 'two')) === 'OK',
  );
  const tookMs = await served(p.reads, key, 'two', BOUND_MS);
  await tracked(p.tier, MASTERS);
  // 'two' may have been read before its master was tracked again (then it lives for the
  // untracked soft TTL, 1 s): 'three' is served within the bound, read over a tracked
  // connection; the write after it is announced, and served at once.
  await p.writer.set(key, 'three');
  await served(p.reads, key, 'three', BOUND_MS);
  const seen = await invalidations(p.tier);
  await p.writer.set(key, 'four');
  await announced(p.tier, seen);
  expect(await p.tier.get(key)).toBe('four');
  console.info(
    `coherence-faults (${what}): the write after the fault served in ${Math.round(tookMs)} ms; ` +
      `tracking lost ${p.tier.stats().tier.trackingLost}×, now ${JSON.stringify(p.tier.stats().refresher.coherence)}`,
  );
}

describe('failover', () => {
  it('a replica promoted by CLUSTER FAILOVER (no connection drops): what the old master tracked is not trusted, tracking moves to the new one', async () => {
    const key = 'f:manual';
    const p = await primed(key);
    onTestFinished(() => failBack(cluster, p.victim));
    // A key of the same slot that L1 does not hold yet.
    const unread = `{${key}}:unread`;
    await p.writer.set(unread, 'a');
    const lost = p.tier.stats().tier.trackingLost;
    await adminClient(p.heir).cluster('FAILOVER');
    await until('the replica to be promoted', async () => (await roleOf(p.heir)) === 'master');
    // Read at once, it meets MOVED and ioredis asks the promoted replica's connection,
    // switched to master in place (no event), before any slot refresh: not tracked yet.
    expect(await p.tier.get(unread)).toBe('a');
    await until(
      'the cluster to take the write',
      async () => (await p.writer.set(unread, 'b')) === 'OK',
    );
    await served(p.reads, unread, 'b', BOUND_MS);
    await boundHoldsAndTrackingIsBack(p, key, 'manual failover');
    expect(p.tier.stats().tier.trackingLost).toBeGreaterThan(lost);
  });

  it('a master killed, its replica promoted: its key is served stale meanwhile (marked, not dropped), the bound holds and tracking comes back', async () => {
    const key = 'f:killed';
    const p = await primed(key);
    onTestFinished(() => failBack(cluster, p.victim));
    const lost = p.tier.stats().tier.trackingLost;
    await cluster.killNode(p.victim, 'SIGKILL');
    // Until the replica takes over, the key can only come from L1: marked stale, it is
    // served (and refreshed, in vain) rather than failing as a cleared L1 would make it.
    const served: unknown[] = [];
    await until('the replica to be promoted', async () => {
      served.push(await p.reads.get(key));
      return (await roleOf(p.heir)) === 'master';
    });
    expect(p.tier.stats().tier.trackingLost).toBeGreaterThan(lost);
    expect(new Set(served)).toEqual(new Set(['one']));
    expect(p.tier.stats().l1.staleHits).toBeGreaterThan(0);
    await boundHoldsAndTrackingIsBack(p, key, 'master killed');
  });
});

describe('a tracked key moved or dropped by Redis', () => {
  it('its slot migrated to another master: the move is announced, and the new owner tracks it', async () => {
    const key = 'm:key';
    const p = await primed(key);
    const to = p.masters.find((port) => port !== p.victim) as number;
    const seen = await invalidations(p.tier);
    await migrateSlot(calculateSlot(key), p.victim, to, { masters: p.masters });
    // MIGRATE deleted the key on the source, which announces it.
    await announced(p.tier, seen);
    expect(await ownerPort(key, to)).toBe(to);
    expect(await served(p.reads, key, 'one')).toBeLessThan(BOUND_MS);
    await boundHoldsAndTrackingIsBack(p, key, 'slot migrated');
  });

  it('evicted under maxmemory: announced, and no longer served', async () => {
    const key = '{ev}:key';
    const p = await primed(key);
    const admin = adminClient(p.victim);
    const fillers: string[] = [];
    onTestFinished(async () => {
      await admin.config('SET', 'maxmemory', '0');
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      for (let i = 0; i < fillers.length; i += 100)
        await admin.unlink(...fillers.slice(i, i + 100));
    });
    const seen = await invalidations(p.tier);
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
    // Random eviction: a read of the key (ours included) cannot keep it in, as LRU would.
    await admin.config('SET', 'maxmemory-policy', 'allkeys-random');
    await admin.config('SET', 'maxmemory', String(used + 2 * 2 ** 20));
    const filler = 'x'.repeat(64 * 1024);
    while ((await admin.exists(key)) === 1) {
      if (fillers.length >= 4000) throw new Error('the key outlived 256 MiB of fillers');
      const batch = Array.from({ length: 20 }, (_, i) => `{ev}:fill:${fillers.length + i}`);
      fillers.push(...batch);
      await Promise.all(batch.map((k) => admin.set(k, filler)));
    }
    expect(Number(/evicted_keys:(\d+)/.exec(await admin.info('stats'))?.[1])).toBeGreaterThan(0);
    await announced(p.tier, seen);
    expect(await p.tier.get(key)).toBeUndefined();
  });
});
