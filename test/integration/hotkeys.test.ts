/**
 * Hot-key detection end to end (GET /v1/hotkeys, tier.hotKeys): hot keys planted in a
 * Zipf stream over two HTTP threads are found, ranked, with their slot and the master
 * that owns it; counters' increment rates; writes; the per-master load; the guard; bad
 * input refused.
 */
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { prng } from '../../bench/lib/prng.ts';
import { zipfTrace } from '../../bench/lib/zipf.ts';
import { ADMIT_FLOOR } from '../../src/l1/heat.ts';
import { L1Table } from '../../src/l1/index.ts';
import type { HotKeysReport, Tier } from '../../src/tier/index.ts';
import { startGatewayOn } from '../fixtures/gateway/gateway-process.ts';
import { agent, errorCode, request } from '../fixtures/gateway/http.ts';
import { tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';
import { runThreads } from '../fixtures/workers/tier-threads.ts';

const cluster = useOwnCluster();
const makeTier = tierMaker(cluster);
const TOKEN = 'hotkeys-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

/** `host:port` of the master owning `key`'s slot, as the cluster says. */
async function masterOf(key: string): Promise<string> {
  const redis = clusterClient(cluster.seeds);
  const slots = await redis.cluster('SLOTS');
  const slot = calculateSlot(key);
  const range = slots.find(([from, to]) => slot >= from && slot <= to);
  const master = range?.[2];
  if (master === undefined) throw new Error(`no master for slot ${slot}`);
  return `${master[0]}:${master[1]}`;
}

describe('hot keys', () => {
  it('finds hot keys planted in a Zipf stream over two HTTP threads, with their masters', async () => {
    const gw = await startGatewayOn(cluster.seeds, [
      '--threads',
      '2',
      '--token',
      TOKEN,
      '--hot-threshold',
      '100',
    ]);
    const redis = clusterClient(cluster.seeds);
    // Three planted keys, one per master (hash tags chosen so), and 2,000 background keys.
    const planted = ['{a}:viral', '{b}:viral', '{c}:viral'];
    const masters = await Promise.all(planted.map(masterOf));
    expect(new Set(masters).size).toBe(3);
    const background = Array.from({ length: 2000 }, (_, i) => `bg:${i}`);
    await Promise.all([...planted, ...background.slice(0, 200)].map((k) => redis.set(k, 'v')));
    const trace = zipfTrace(background.length, 0.9, 12_000, prng(11)).requests;
    // Per round: the first planted key 6 times, the second 4, the third 2; Zipf between.
    const plan: string[] = [];
    for (let i = 0; i < trace.length; i++) {
      plan.push(background[trace[i]]);
      if (i % 2 === 0) plan.push(planted[0]);
      if (i % 3 === 0) plan.push(planted[1]);
      if (i % 6 === 0) plan.push(planted[2]);
    }
    const http = agent(16);
    const started = performance.now();
    let next = 0;
    const sentOf = new Map<string, number>();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < plan.length) {
          const key = plan[next++];
          const reply = await request(`${gw.url}/v1/kv/${encodeURIComponent(key)}`, {
            agent: http,
          });
          expect([200, 404]).toContain(reply.status);
          sentOf.set(key, (sentOf.get(key) ?? 0) + 1);
        }
      }),
    );
    const elapsedMs = performance.now() - started;
    const reply = await request(`${gw.url}/v1/hotkeys?limit=5`, { headers: auth });
    expect(reply.status).toBe(200);
    expect(reply.headers['cache-control']).toBe('no-store');
    const report = JSON.parse(reply.text) as HotKeysReport;
    expect(report.windowSeconds).toBe(10);
    expect(report.keys).toHaveLength(5);
    expect(report.keys.slice(0, 3).map((k) => k.key)).toEqual(planted);
    for (const [i, key] of planted.entries()) {
      const row = report.keys[i];
      expect(row.slot).toBe(calculateSlot(key));
      expect(row.node).toBe(masters[i]);
      expect(row.writesPerSecond).toBe(0);
      // Nearly all hits: one miss per process, then L1.
      expect(row.hitRatio).toBeGreaterThan(0.9);
      // The rate is requests answered over the window (the load ran well inside it).
      const sent = ((sentOf.get(key) ?? 0) * 1000) / elapsedMs;
      expect(row.readsPerSecond).toBeGreaterThan(sent * 0.3);
      expect(row.readsPerSecond).toBeLessThan(sent * 1.5);
    }
    const nodes = new Map(report.nodes.map((n) => [n.node, n]));
    expect(nodes.size).toBe(3);
    for (const m of masters) expect(nodes.get(m)?.readsPerSecond).toBeGreaterThan(0);
    const totalReads = report.nodes.reduce((a, n) => a + n.readsPerSecond, 0);
    expect(totalReads).toBeGreaterThan(report.keys[0].readsPerSecond);
    // Background keys absent from Redis are misses, counted on their masters.
    expect(report.nodes.reduce((a, n) => a + n.missesPerSecond, 0)).toBeGreaterThan(0);
    // The gateway said so in its log, with where the heat lands (it looks once a second).
    await expect
      .poll(() => gw.logs.find((l) => l.msg === 'key is hot' && l.key === planted[0]), {
        timeout: 3000,
        interval: 100,
      })
      .toMatchObject({
        level: 40,
        node: masters[0],
        slot: calculateSlot(planted[0]),
        threshold: 100,
      });
    await gw.stop();
  }, 60_000);

  it("counts counters' increments and keys' writes, and guards the route like a write", async () => {
    const gw = await startGatewayOn(cluster.seeds, ['--threads', '2', '--token', TOKEN]);
    const http = agent(8);
    for (let i = 0; i < 200; i++) {
      const r = await request(`${gw.url}/v1/counters/likes:42/incr`, {
        method: 'POST',
        headers: auth,
        agent: http,
      });
      expect(r.status).toBe(202);
    }
    for (let i = 0; i < 30; i++) {
      const r = await request(`${gw.url}/v1/kv/written`, {
        method: 'PUT',
        headers: auth,
        body: `v${i}`,
        agent: http,
      });
      expect(r.status).toBe(204);
    }
    const report = JSON.parse(
      (await request(`${gw.url}/v1/hotkeys`, { headers: auth })).text,
    ) as HotKeysReport;
    expect(report.counters.map((c) => c.name)).toEqual(['likes:42']);
    expect(report.counters[0].incrementsPerSecond).toBeGreaterThan(0);
    const written = report.keys.find((k) => k.key === 'written');
    expect(written?.writesPerSecond).toBeGreaterThan(0);
    expect(written?.readsPerSecond).toBe(0);
    expect(written?.hitRatio).toBeNull();

    const noToken = await request(`${gw.url}/v1/hotkeys`);
    expect(noToken.status).toBe(401);
    expect(errorCode(noToken)).toBe('HS_ERR_UNAUTHORIZED');
    const wrong = await request(`${gw.url}/v1/hotkeys`, { headers: { authorization: 'Bearer x' } });
    expect(wrong.status).toBe(401);
    expect(noToken.text).not.toContain('likes');
    for (const bad of ['0', '513', 'ten', '-1']) {
      const r = await request(`${gw.url}/v1/hotkeys?limit=${bad}`, { headers: auth });
      expect(r.status, bad).toBe(400);
    }
    const post = await request(`${gw.url}/v1/hotkeys`, { method: 'POST', headers: auth });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    await gw.stop();
  }, 60_000);

  it("embedded: every thread's reads count, memo hits included, in tier.hotKeys()", async () => {
    const tier = await makeTier({ codec: 'utf8' });
    await tier.set('emb:hot', 'v');
    await tier.set('emb:warm', 'w');
    const results = await runThreads(tier, [
      { op: 'hot', key: 'emb:hot', durationMs: 600 },
      { op: 'hot', key: 'emb:hot', durationMs: 600 },
      { op: 'hot', key: 'emb:warm', durationMs: 300 },
    ]);
    for (let i = 0; i < 100; i++) await tier.get('emb:warm');
    const hotReads = results[0].reads + results[1].reads;
    const warmReads = results[2].reads + 100;
    expect(hotReads).toBeGreaterThan(1000);
    // The raw counts: a thread's memo hits are flushed when it closes its tier, and this
    // thread's when it asks for the report.
    const report = await tier.hotKeys({ limit: 2 });
    const raw = new Map(
      L1Table.attach(tier.handle.l1)
        .hotKeys()
        .keys.map((k) => [k.key, k.hits + k.stale + k.misses]),
    );
    for (const [key, reads] of [
      ['emb:hot', hotReads],
      ['emb:warm', warmReads],
    ] as const) {
      // Reads before the key reached the bar are in the sketch only.
      expect(reads - (raw.get(key) ?? 0), key).toBeGreaterThanOrEqual(0);
      expect(reads - (raw.get(key) ?? 0), key).toBeLessThan(ADMIT_FLOOR);
    }
    expect(report.keys.map((k) => k.key)).toEqual(['emb:hot', 'emb:warm']);
    expect(report.keys[0].hitRatio).toBeGreaterThan(0.99);
    await expect(tier.hotKeys({ limit: 0 })).rejects.toMatchObject({ code: 'HS_ERR_OPTION' });
    const off = await makeTier({ hotKeys: false });
    await off.get('x');
    expect(await off.hotKeys()).toEqual({ windowSeconds: 10, keys: [], counters: [], nodes: [] });
  }, 30_000);
});

describe('refresh-ahead', () => {
  it('a hot key is refreshed before it turns stale: no stale hit, no miss while hot', async () => {
    // A 2 s soft TTL: refreshes start 500 to 125 ms before it runs out.
    const options = { softTtl: '2s', coherence: false, hotThreshold: 100, codec: 'utf8' } as const;
    const hot = await makeTier(options);
    const cold = await makeTier({ ...options, hotKeys: false });
    const redis = clusterClient(cluster.seeds);
    await redis.set('ahead:hot', 'v');
    const read = async (tier: Tier, ms: number) => {
      const seen = { hit: 0, stale: 0, miss: 0 };
      const end = performance.now() + ms;
      while (performance.now() < end) {
        const found = await tier.lookup('ahead:hot');
        if (found !== undefined) seen[found.cache]++;
        await new Promise((r) => setTimeout(r, 1));
      }
      return seen;
    };
    // Warm: a second of reads makes the key hot (hundreds a second) in `hot`.
    await Promise.all([read(hot, 1500), read(cold, 1500)]);
    const [withAhead, without] = await Promise.all([read(hot, 6000), read(cold, 6000)]);
    // Without refresh-ahead the soft TTL shows: stale hits every 2 s.
    expect(without.stale).toBeGreaterThan(0);
    expect(withAhead).toMatchObject({ stale: 0, miss: 0 });
    expect(withAhead.hit).toBeGreaterThan(400);
    // About one refresh per soft TTL, as without.
    const ahead = hot.stats().tier.refreshesAhead;
    expect(ahead).toBeGreaterThanOrEqual(3);
    expect(ahead).toBeLessThanOrEqual(6);
  }, 30_000);
});

describe('the fleet hot set', () => {
  it("scope=cluster merges every live gateway process: each sees the other's hot keys", async () => {
    const [a, b] = await Promise.all([
      startGatewayOn(cluster.seeds, ['--threads', '1', '--token', TOKEN]),
      startGatewayOn(cluster.seeds, ['--threads', '1', '--token', TOKEN]),
    ]);
    const redis = clusterClient(cluster.seeds);
    await Promise.all(['fleet:a', 'fleet:b', 'fleet:both'].map((k) => redis.set(k, 'v')));
    const hammer = async (url: string, keys: string[], n: number) => {
      const http = agent(4);
      for (let i = 0; i < n; i++)
        await request(`${url}/v1/kv/${keys[i % keys.length]}`, { agent: http });
    };
    await Promise.all([
      hammer(a.url, ['fleet:a', 'fleet:both'], 1200),
      hammer(b.url, ['fleet:b', 'fleet:both'], 1200),
    ]);
    const report = async (url: string, scope: string) => {
      const r = await request(`${url}/v1/hotkeys?scope=${scope}&limit=50`, { headers: auth });
      expect(r.status).toBe(200);
      return JSON.parse(r.text) as HotKeysReport;
    };
    // Each process publishes once a second: both reports are in Redis within about two.
    await expect
      .poll(async () => (await report(a.url, 'cluster')).processes, {
        timeout: 5000,
        interval: 200,
      })
      .toBeGreaterThanOrEqual(2);
    // Reports are up to a second old: let both publish once more after the load.
    await new Promise((r) => setTimeout(r, 1500));
    const fleet = await report(a.url, 'cluster');
    const local = await report(a.url, 'process');
    const localB = await report(b.url, 'process');
    const names = (r: HotKeysReport) => r.keys.map((k) => k.key);
    expect(names(local)).toContain('fleet:a');
    expect(names(local)).not.toContain('fleet:b');
    expect(names(fleet)).toEqual(expect.arrayContaining(['fleet:a', 'fleet:b', 'fleet:both']));
    // Both processes read the shared key: the fleet's rate is about the sum of theirs (the
    // reports and these answers are up to a second apart, and rates fall once load stops).
    const both = (r: HotKeysReport) =>
      r.keys.find((k) => k.key === 'fleet:both')?.readsPerSecond ?? 0;
    expect(both(fleet)).toBeGreaterThan(1.2 * Math.max(both(local), both(localB)));
    expect(fleet.nodes.length).toBe(3);
    // The guard holds for the fleet too, and a bad scope is refused.
    expect((await request(`${a.url}/v1/hotkeys?scope=cluster`)).status).toBe(401);
    const bad = await request(`${a.url}/v1/hotkeys?scope=galaxy`, { headers: auth });
    expect(bad.status).toBe(400);
    // A process that stops publishing leaves the fleet within the reports' TTL.
    await b.stop();
    await expect
      .poll(async () => (await report(a.url, 'cluster')).processes, {
        timeout: 10_000,
        interval: 500,
      })
      .toBe(1);
    await a.stop();
  }, 60_000);
});
