/**
 * The refresher's Redis client against real clusters: per-node batching, redirects,
 * deadlines on a hung master, a cluster that is not there, and option validation. The
 * tests count commands on the masters, so they use clusters no other test file touches.
 */
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type RedisClusterHandle, startRedisCluster } from '../../src/dev/redis-cluster.ts';
import { HotshieldError } from '../../src/errors.ts';
import { L2Client, type L2ClientOptions } from '../../src/refresher/l2-client.ts';
import { clusterClient, nodeClient } from '../fixtures/redis/redis-clients.ts';

async function connect(options: L2ClientOptions): Promise<L2Client> {
  const client = new L2Client(options);
  onTestFinished(() => client.close());
  await client.ready(10_000);
  return client;
}

/** One key's value through a batch of one; its error, if it failed, is thrown. */
async function getOne(l2: L2Client, key: string): Promise<Buffer | null> {
  const [read] = await l2.getMany([key]);
  if (read instanceof HotshieldError) throw read;
  return read;
}

async function getCalls(port: number): Promise<number> {
  const info = await nodeClient(port).info('commandstats');
  return Number(/cmdstat_get:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

let shared: RedisClusterHandle;
beforeAll(async () => {
  shared = await startRedisCluster({ masters: 3 });
});
afterAll(() => shared?.stop());

describe('L2Client', () => {
  it('reads many keys with one pipeline per master, straight to the owner of each slot', async () => {
    const seeds = shared.seeds;
    const writer = clusterClient(seeds);
    const keys = Array.from({ length: 300 }, (_, i) => `l2:batch:${i}`);
    await Promise.all(keys.map((k, i) => (i % 10 === 0 ? writer.del(k) : writer.set(k, `v${i}`))));
    const l2 = await connect({ redis: seeds });
    const ports = seeds.split(',').map((s) => Number(s.split(':')[1]));
    const before = await Promise.all(ports.map(getCalls));
    const values = await l2.getMany(keys);
    const after = await Promise.all(ports.map(getCalls));
    values.forEach((v, i) => {
      if (i % 10 === 0) expect(v).toBeNull();
      else expect(v?.toString()).toBe(`v${i}`);
    });
    // Each master served exactly the GETs of its own slots: no redirect, no detour.
    await writer.cluster('SLOTS');
    const perPort = new Map<number, number>();
    for (const k of keys) {
      const owner = writer.slots[calculateSlot(k)][0];
      const port = Number(owner.split(':')[1]);
      perPort.set(port, (perPort.get(port) ?? 0) + 1);
    }
    ports.forEach((port, n) => {
      expect(after[n] - before[n], `GETs on :${port}`).toBe(perPort.get(port) ?? 0);
    });
    expect([...perPort.keys()].length).toBe(3);
  });

  it('follows a redirect for a key whose slot it routed to the wrong master', async () => {
    const seeds = shared.seeds;
    const writer = clusterClient(seeds);
    await writer.set('l2:moved', 'here');
    const cluster = clusterClient(seeds);
    const l2 = await connect({ redis: cluster });
    await cluster.cluster('SLOTS');
    await getOne(l2, 'l2:moved');
    // Make the client's slot table point at another master, as after a reshard it has
    // not seen yet: the pipeline gets MOVED and the key is re-read through redirects.
    const slot = calculateSlot('l2:moved');
    const owner = cluster.slots[slot][0];
    const other = cluster
      .nodes('master')
      .find((n) => `${n.options.host}:${n.options.port}` !== owner)!;
    cluster.slots[slot] = [`${other.options.host}:${other.options.port}`];
    const moved = async () =>
      Number(
        /errorstat_MOVED:count=(\d+)/.exec(
          await nodeClient(other.options.port!).info('errorstats'),
        )?.[1] ?? 0,
      );
    const movedBefore = await moved();
    const [value] = await l2.getMany(['l2:moved']);
    expect(value?.toString()).toBe('here');
    // The wrong master did answer MOVED: the redirect path really ran.
    expect(await moved()).toBeGreaterThan(movedBefore);
  });

  it('talks to a standalone Redis by redis:// URL (here one cluster node, which answers MOVED for slots it does not own)', async () => {
    const writer = clusterClient(shared.seeds);
    await writer.cluster('SLOTS');
    const port = shared.nodes[0].port;
    const ownedBy = (k: string, p: number) =>
      writer.slots[calculateSlot(k)][0] === `127.0.0.1:${p}`;
    const mine = Array.from({ length: 200 }, (_, i) => `sa:${i}`).find((k) => ownedBy(k, port))!;
    const theirs = Array.from({ length: 200 }, (_, i) => `sa:${i}`).find((k) => !ownedBy(k, port))!;
    await writer.set(mine, 'local');
    const l2 = await connect({ redis: `redis://127.0.0.1:${port}` });
    // A standalone client: every key is on the one node, whatever its slot.
    expect([l2.nodeOf(mine), l2.nodeOf(theirs)]).toEqual(['redis', 'redis']);
    const [a, b] = await l2.getMany([mine, theirs]);
    expect(a?.toString()).toBe('local');
    expect(b).toBeInstanceOf(HotshieldError);
    expect((b as HotshieldError).code).toBe('HS_ERR_L2_UNAVAILABLE');
    expect((b as Error).message).toMatch(/MOVED/);
  });

  it('writes with a TTL and deletes', async () => {
    const seeds = shared.seeds;
    const l2 = await connect({ redis: seeds });
    await l2.set('l2:ttl', Buffer.from([0, 1, 2, 255]), 60_000);
    expect([...((await getOne(l2, 'l2:ttl')) ?? [])]).toEqual([0, 1, 2, 255]);
    const pttl = await clusterClient(seeds).pttl('l2:ttl');
    expect(pttl).toBeGreaterThan(50_000);
    expect(await l2.del('l2:ttl')).toBe(true);
    expect(await l2.del('l2:ttl')).toBe(false);
    expect(await getOne(l2, 'l2:ttl')).toBeNull();
  });

  it('a hung master (SIGSTOP) costs its keys a timeout within the deadline, not the others', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    onTestFinished(() => cluster.stop());
    const writer = clusterClient(cluster.seeds);
    const keys = Array.from({ length: 60 }, (_, i) => `hung:${i}`);
    await Promise.all(keys.map((k) => writer.set(k, k)));
    const l2 = await connect({ redis: cluster.seeds, l2TimeoutMs: 300 });
    await writer.cluster('SLOTS');
    const victim = cluster.nodes[0];
    const onVictim = (k: string) =>
      writer.slots[calculateSlot(k)][0] === `127.0.0.1:${victim.port}`;
    process.kill(victim.pid, 'SIGSTOP');
    onTestFinished(() => {
      try {
        process.kill(victim.pid, 'SIGCONT');
      } catch {}
    });
    const start = performance.now();
    const values = await l2.getMany(keys);
    const took = performance.now() - start;
    expect(took).toBeLessThan(300 + 1500); // the deadline, plus slack for a loaded machine
    let timedOut = 0;
    values.forEach((v, i) => {
      if (onVictim(keys[i])) {
        expect(v).toBeInstanceOf(HotshieldError);
        expect((v as HotshieldError).code).toBe('HS_ERR_L2_TIMEOUT');
        timedOut++;
      } else {
        expect(v?.toString()).toBe(keys[i]);
      }
    });
    expect(timedOut).toBeGreaterThan(0);
    process.kill(victim.pid, 'SIGCONT');
    // Recovery: once the node answers again, its keys read normally.
    let recovered = false;
    for (let attempt = 0; attempt < 50 && !recovered; attempt++) {
      const again = await l2.getMany(keys);
      recovered = again.every((v, i) => v?.toString() === keys[i]);
      if (!recovered) await new Promise((r) => setTimeout(r, 100));
    }
    expect(recovered).toBe(true);
  });

  it('with no cluster there, calls fail fast with a typed error instead of queueing', async () => {
    const l2 = new L2Client({ redis: '127.0.0.1:1', l2TimeoutMs: 200, connectTimeoutMs: 200 });
    onTestFinished(() => l2.close());
    const start = performance.now();
    const [v] = await l2.getMany(['anything']);
    expect(performance.now() - start).toBeLessThan(1000);
    expect(v).toBeInstanceOf(HotshieldError);
    expect(['HS_ERR_L2_UNAVAILABLE', 'HS_ERR_L2_TIMEOUT']).toContain((v as HotshieldError).code);
    await expect(getOne(l2, 'anything')).rejects.toBeInstanceOf(HotshieldError);
    await expect(l2.set('k', Buffer.from('v'), 0)).rejects.toBeInstanceOf(HotshieldError);
  });

  it('with Redis unreachable, calls stop waiting for it once `breakerThreshold` waits have timed out', async () => {
    const l2 = new L2Client({
      redis: 'redis://127.0.0.1:1',
      l2TimeoutMs: 100,
      connectTimeoutMs: 100,
      breakerThreshold: 2,
      breakerCooldownMs: 60_000,
    });
    onTestFinished(() => l2.close());
    // Each of these waits for a connection within its deadline, and times out.
    for (const key of ['a', 'b']) {
      const [v] = await l2.getMany([key]);
      expect((v as HotshieldError).code).toBe('HS_ERR_L2_TIMEOUT');
    }
    // Now every call fails at once (the cool-down is a minute): 50 calls one after the
    // other take nowhere near 50 deadlines, and each says why.
    const rejectedBefore = l2.breakerState().rejected;
    const start = performance.now();
    const messages: string[] = [];
    for (let i = 0; i < 50; i++) {
      const [v] = await l2.getMany([`k${i}`]);
      messages.push(`${(v as HotshieldError).code}: ${(v as HotshieldError).message}`);
    }
    await expect(l2.set('k', Buffer.from('v'), 0)).rejects.toThrow(/not connected|connection is/);
    expect(performance.now() - start).toBeLessThan(25 * 100);
    expect(
      messages.filter(
        (m) => !/^HS_ERR_L2_UNAVAILABLE: Redis (is not connected|: the connection is)/.test(m),
      ),
    ).toEqual([]);
    expect(l2.breakerState().rejected - rejectedBefore).toBeGreaterThan(25);
  });

  it('validates its options, naming the one to fix', () => {
    const bad = (options: L2ClientOptions, name: RegExp) => {
      try {
        new L2Client(options);
      } catch (e) {
        expect((e as HotshieldError).code).toBe('HS_ERR_OPTION');
        expect((e as Error).message).toMatch(name);
        return;
      }
      throw new Error('expected HS_ERR_OPTION');
    };
    bad({ redis: '' }, /seed/);
    bad({ redis: 'localhost' }, /host:port/);
    bad({ redis: '127.0.0.1:70000' }, /host:port/);
    bad({ redis: 42 as unknown as string }, /redis must be/);
    bad({ redis: '127.0.0.1:7000', l2TimeoutMs: 0 }, /l2TimeoutMs/);
    bad({ redis: '127.0.0.1:7000', connectTimeoutMs: 1.5 }, /connectTimeoutMs/);
    bad({ redis: '127.0.0.1:7000', slotsRefreshIntervalMs: -1 }, /slotsRefreshIntervalMs/);
  });
});
