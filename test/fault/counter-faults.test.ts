/**
 * Write-hot counters when things break, on real clusters: a flush whose reply is lost, the
 * refresher killed mid-flush, every master hung, a master killed and its replica promoted,
 * and close() with Redis healthy or hung. Each test checks the count exactly against what
 * was sent (summing the shard keys straight from the masters, not through the tier) and
 * that the fault really happened (a re-send recognised as a duplicate, a respawn, …).
 * A cluster of its own, since it freezes nodes and changes what they announce; the
 * failover test starts a second one, with replicas.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type RedisClusterHandle, startRedisCluster } from '../../src/dev/redis-cluster.ts';
import { type Counter, createTier, type Tier } from '../../src/index.ts';
import { shardKeysFor } from '../../src/keys/shard-keys.ts';
import { refresherThreadsOf } from '../../src/tier/create.ts';
import { freezeNodes, tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient, nodeClient } from '../fixtures/redis/redis-clients.ts';
import { proxyCluster } from '../fixtures/redis/reply-proxy.ts';
import { timed } from '../fixtures/timing.ts';

const cluster = useOwnCluster();
const tierFor = tierMaker(cluster, { flushInterval: 50 });

/** counterShards is left at its default: every counter has 16 shard keys. */
const SHARDS = 16;

/**
 * The counter's total as the masters hold it: every shard key read straight from the
 * nodes on `ports` (bypassing cluster routing and any proxy); each key must be answered by
 * exactly one of them, the others redirect.
 */
async function redisTotal(ports: readonly number[], name: string): Promise<bigint> {
  const keys = shardKeysFor(name, SHARDS);
  const owners = new Array<number>(keys.length).fill(0);
  let total = 0n;
  await Promise.all(
    ports.map(async (port) => {
      const node = nodeClient(port);
      await Promise.all(
        keys.map(async (key, i) => {
          const value = await node.get(key).catch(() => undefined);
          if (value === undefined) return;
          owners[i]++;
          total += BigInt(value ?? 0);
        }),
      );
    }),
  );
  expect(owners).toEqual(keys.map(() => 1));
  return total;
}

const portsOf = (handle: RedisClusterHandle): number[] => handle.nodes.map((n) => n.port);

async function until(what: string, done: () => boolean | Promise<boolean>, ms = 5000) {
  const deadline = performance.now() + ms;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

interface LoadResult {
  /** Everything added (sync or not). */
  sent: bigint;
  /** What the sync increments that resolved added (Redis acknowledged them). */
  acked: bigint;
  syncs: number;
  /** Rejections of sync increments, by code, and the soonest one came after the call. */
  rejected: Record<string, number>;
  soonestRejectionMs: number;
  /** What incr threw synchronously, if anything (it never should). */
  threw?: unknown;
}

/**
 * Increment `counter` every millisecond or so, by 1, 2 or 3, until stop(); every
 * `syncEvery`-th increment (none if 0) is a sync one with `timeout` ms. stop() waits for
 * the sync ones to settle.
 */
function startLoad(counter: Counter, syncEvery: number, timeout: number) {
  const out: LoadResult = {
    sent: 0n,
    acked: 0n,
    syncs: 0,
    rejected: {},
    soonestRejectionMs: Number.POSITIVE_INFINITY,
  };
  const syncs: Promise<void>[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const by = (i % 3) + 1;
      try {
        if (syncEvery > 0 && i % syncEvery === 0) {
          const calledAt = performance.now();
          const done = counter.incr(by, { sync: true, timeout });
          out.syncs++;
          syncs.push(
            done.then(
              () => {
                out.acked += BigInt(by);
              },
              (error: { code?: string }) => {
                const code = error.code ?? String(error);
                out.rejected[code] = (out.rejected[code] ?? 0) + 1;
                out.soonestRejectionMs = Math.min(
                  out.soonestRejectionMs,
                  performance.now() - calledAt,
                );
              },
            ),
          );
        } else counter.incr(by);
        out.sent += BigInt(by);
      } catch (error) {
        out.threw = error;
        return;
      }
      await sleep(1);
    }
  })();
  return {
    async stop(): Promise<LoadResult> {
      running = false;
      await loop;
      await Promise.all(syncs);
      return out;
    },
  };
}

/** Kill the refresher thread and wait for its successor to be listening. */
async function killRefresher(tier: Tier): Promise<void> {
  const threads = () => refresherThreadsOf(tier);
  const generation = tier.stats().refresher.generation;
  await threads()[0]?.terminate();
  await until('the respawned refresher', () => tier.stats().refresher.generation > generation);
}

describe('a flush applied by Redis whose reply is lost', () => {
  it('is re-sent under the same seq, recognised as a duplicate, and counted once', async () => {
    // Every node announces a proxy's port, so the refresher reaches Redis only through
    // them: requests go through, replies can be dropped.
    const proxies = await proxyCluster(cluster);
    const tier = await tierFor({ redis: proxies.seeds });
    const name = 'faults:lost-reply';
    const counter = tier.counter(name);
    await counter.incr(1, { sync: true, timeout: 5000 });
    const load = startLoad(counter, 0, 0);
    await sleep(100);

    const before = tier.stats().tier;
    proxies.swallowReplies();
    // A flush went out, Redis ran it, its reply was dropped: the flush timed out (l2Timeout).
    await until(
      'a flush to time out',
      () => tier.stats().tier.counterFlushErrors > before.counterFlushErrors,
    );
    await sleep(300);
    expect(proxies.swallowedBytes).toBeGreaterThan(0);
    // No answer, so nothing acknowledged: still no duplicate seen.
    expect(tier.stats().tier.counterDuplicates).toBe(before.counterDuplicates);
    proxies.reset();
    await sleep(300);
    const r = await load.stop();
    expect(r.threw).toBeUndefined();
    // Once this one is acknowledged, so is everything before it.
    await counter.incr(1, { sync: true, timeout: 8000 });
    const sent = 1n + r.sent + 1n;

    const after = tier.stats().tier;
    // The re-send was answered "already applied": Redis had run the first send.
    expect(after.counterDuplicates).toBeGreaterThan(before.counterDuplicates);
    expect(await redisTotal(portsOf(cluster), name)).toBe(sent);
    expect(await counter.readExact()).toBe(sent);
    await tier.close();
  });
});

describe('refresher killed', () => {
  it('three times under load: nothing lost, nothing doubled, every acknowledged increment in', async () => {
    const tier = await tierFor({ requestTimeout: '5s' });
    const name = 'faults:respawn';
    const counter = tier.counter(name);
    await counter.incr(1, { sync: true });
    const load = startLoad(counter, 10, 8000);
    for (let kill = 0; kill < 3; kill++) {
      await sleep(300);
      await killRefresher(tier);
    }
    await sleep(300);
    const r = await load.stop();
    expect(r.threw).toBeUndefined();
    // Sync increments wait on the cell, not on a message: the respawns did not fail them.
    expect(r.rejected).toEqual({});
    expect(r.syncs).toBeGreaterThan(20);
    await counter.incr(1, { sync: true, timeout: 8000 });
    const sent = 1n + r.sent + 1n;

    expect(tier.stats().tier.respawns).toBe(3);
    const total = await redisTotal(portsOf(cluster), name);
    expect(r.acked).toBeLessThanOrEqual(total);
    expect(total).toBe(sent);
    await tier.close();
  });

  it('with a flush in flight: its successor re-sends the record, Redis answers duplicate', async () => {
    const tier = await tierFor();
    const name = 'faults:respawn-in-flight';
    const counter = tier.counter(name);
    await counter.incr(1, { sync: true });
    const thaw = freezeNodes(cluster);
    try {
      // The flush of these 5 reaches the hung master's socket and times out: it is in
      // flight, recorded in the cell, when the refresher dies. Redis runs it on SIGCONT.
      counter.incr(5);
      await until('a flush to time out', () => tier.stats().tier.counterFlushErrors > 0);
      await killRefresher(tier);
      counter.incr(2);
      await sleep(200);
    } finally {
      thaw();
    }
    await counter.incr(1, { sync: true, timeout: 8000 });
    expect(tier.stats().tier.respawns).toBe(1);
    // The successor's re-send came after the dead refresher's copy: "already applied".
    expect(tier.stats().tier.counterDuplicates).toBeGreaterThanOrEqual(1);
    expect(await redisTotal(portsOf(cluster), name)).toBe(9n);
    await tier.close();
  });
});

describe('every master hung (SIGSTOP) for about 1.5 s', () => {
  it('accepts increments, fails sync ones UNCONFIRMED, then flushes every one of them once', async () => {
    const tier = await tierFor();
    const name = 'faults:hung';
    const counter = tier.counter(name);
    await counter.incr(1, { sync: true });
    const thaw = freezeNodes(cluster);
    let r: LoadResult;
    try {
      const load = startLoad(counter, 25, 400);
      await sleep(1500);
      // (stop() waits for the last sync increments to time out: Redis is still hung.)
      r = await load.stop();
    } finally {
      thaw();
    }
    expect(r.threw).toBeUndefined();
    expect(r.syncs).toBeGreaterThan(10);
    expect(r.acked).toBe(0n);
    expect(r.rejected).toEqual({ HS_ERR_UNCONFIRMED: r.syncs });
    // After their timeout, not before (timers may fire a little early for performance.now()).
    expect(r.soonestRejectionMs).toBeGreaterThanOrEqual(399);
    expect(tier.stats().tier.counterFlushErrors).toBeGreaterThan(0);

    // Back: the unconfirmed increments were recorded, and are flushed like the rest.
    await counter.incr(1, { sync: true, timeout: 8000 });
    const sent = 1n + r.sent + 1n;
    expect(await redisTotal(portsOf(cluster), name)).toBe(sent);
    // The flush sent into the hung socket ran on SIGCONT; its re-send was a duplicate.
    expect(tier.stats().tier.counterDuplicates).toBeGreaterThanOrEqual(1);
    expect(await counter.readExact()).toBe(sent);
    await tier.close();
  });
});

describe('close', () => {
  it('flushes the increments made just before it', async () => {
    // No round would run for an hour: only close() can flush these.
    const tier = await tierFor({ flushInterval: '1h' });
    const names = ['faults:close:a', 'faults:close:b', 'faults:close:c'];
    for (let i = 0; i < 300; i++) tier.counter(names[i % 3]).incr(i + 1);
    expect(tier.stats().tier.counterFlushes).toBe(0);
    await tier.close();
    const sums = [0n, 0n, 0n];
    for (let i = 0; i < 300; i++) sums[i % 3] += BigInt(i + 1);
    for (const [i, name] of names.entries())
      expect(await redisTotal(portsOf(cluster), name)).toBe(sums[i]);
    // And a new process sees them.
    const next = await tierFor();
    expect(await Promise.all(names.map((n) => next.counter(n).readExact()))).toEqual(sums);
  });

  it('with every master hung, rejects HS_ERR_UNFLUSHED naming the counter within 5 s', async () => {
    const tier = await createTier({ redis: cluster.seeds, l1Bytes: '8mb', flushInterval: 50 });
    onTestFinished(() => tier.close().catch(() => {}));
    const name = 'faults:close-hung';
    const counter = tier.counter(name);
    await counter.incr(1, { sync: true });
    const thaw = freezeNodes(cluster);
    let closed: Awaited<ReturnType<typeof timed>>;
    try {
      counter.incr(7);
      closed = await timed(tier.close());
    } finally {
      thaw();
    }
    expect(closed.code).toBe('HS_ERR_UNFLUSHED');
    // The 7 went into the hung sockets: close says its fate is unknown, not that it is lost.
    expect(closed.message).toContain(`${name}: 7 sent without an answer`);
    expect(closed.message).not.toContain('never sent');
    expect(closed.ms).toBeLessThan(5000);
    // And indeed Redis ran it on SIGCONT, once.
    await sleep(200);
    expect(await redisTotal(portsOf(cluster), name)).toBe(8n);
  });
});

describe('a master killed mid-run, its replica promoted', () => {
  let replicated: RedisClusterHandle | undefined;
  beforeAll(async () => {
    replicated = await startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 });
  });
  afterAll(() => replicated?.stop());

  it('Jepsen counter check: acknowledged ≤ read ≤ attempted', async () => {
    const rc = replicated!;
    const tier = await tierMaker(rc, {
      flushInterval: 50,
      slotsRefreshInterval: '500ms',
      requestTimeout: '3s',
    })();
    const name = 'faults:failover';
    const counter = tier.counter(name);
    await counter.incr(1, { sync: true });
    // The master holding this process's flush mark is the one its flushes go to: kill it.
    const masters = rc.nodes.filter((n) => n.role === 'master');
    const marks = await Promise.all(
      masters.map(async (m) => {
        // Not nodeClient: this one must not try to reconnect to the node about to die.
        const admin = new Redis({ host: '127.0.0.1', port: m.port });
        try {
          return await admin.keys('*:__hotshield:flushed:*');
        } finally {
          admin.disconnect();
        }
      }),
    );
    const victimAt = marks.findIndex((k) => k.length > 0);
    expect(marks.flat()).toHaveLength(1);
    const victim = masters[victimAt];
    // Replicas follow the masters in `nodes`, one per master, in the same order.
    const heir = rc.nodes[masters.length + victimAt];

    const load = startLoad(counter, 5, 3000);
    await sleep(500);
    const killedAt = performance.now();
    await rc.killNode(victim.port, 'SIGKILL');
    const heirClient = nodeClient(heir.port);
    await until(
      'the replica to be promoted',
      async () => (await heirClient.role())[0] === 'master',
      15_000,
    );
    const failoverMs = Math.round(performance.now() - killedAt);
    // Keep incrementing on the new master, then bring the old one back: it rejoins as a
    // replica of its heir (it restarts empty and syncs). The launcher runs without
    // persistence (save "", appendonly no), so a master restarted with no replica to take
    // over comes back empty and the counts in its shards are gone by design: not tested.
    await sleep(1000);
    await rc.restartNode(victim.port);
    const back = nodeClient(victim.port);
    await until(
      'the old master to rejoin as a replica',
      async () => /master_link_status:up/.test(await back.info('replication')),
      15_000,
    );
    await sleep(300);
    const r = await load.stop();
    expect(r.threw).toBeUndefined();
    await counter.incr(1, { sync: true, timeout: 10_000 });
    const attempted = 1n + r.sent + 1n;
    const acknowledged = 1n + r.acked + 1n;
    const stats = tier.stats().tier;
    await tier.close();

    const read = await redisTotal(portsOf(rc), name);
    const redis = clusterClient(rc.seeds);
    const viaCluster = (
      await Promise.all(shardKeysFor(name, SHARDS).map((k) => redis.get(k)))
    ).reduce((sum, v) => sum + BigInt(v ?? 0), 0n);
    console.info(
      `failover after ${failoverMs} ms: attempted ${attempted}, acknowledged ${acknowledged} (${r.syncs} sync, rejected ${JSON.stringify(r.rejected)}), read ${read}; flush errors ${stats.counterFlushErrors}, duplicates ${stats.counterDuplicates}`,
    );
    expect(viaCluster).toBe(read);
    expect(stats.counterFlushErrors).toBeGreaterThan(0);
    // With asynchronous replication a flush the old master acknowledged can be lost when
    // its replica takes over before receiving it (reliability.md section 3: WAIT closes
    // most of that window; the flusher does not send it). Then read < acknowledged is a
    // real loss, not a test error: on loopback the window is tiny and it has not shown.
    expect(acknowledged).toBeLessThanOrEqual(read);
    expect(read).toBeLessThanOrEqual(attempted);
  });
});
