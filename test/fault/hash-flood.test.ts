/**
 * Fault suite, hostile input: hash flooding the gateway's L1.
 *
 * - Keys crafted to collide under an unseeded hash: 1,024 keys whose HalfSipHash with the
 *   key 0/0 (the L1's own hash, minus its per-table random seed) all start their probe in
 *   one 32-slot window of this gateway's index, and 1,024 keys that collide under Java's
 *   String.hashCode (31·h + c: "Aa" and "BB" are interchangeable blocks). Under seed 0/0
 *   the first set would fight over ~63 slots (at most that many resident, each lookup a
 *   full probe); with the per-process random seed they spread like random keys: the same
 *   CPU per request, and nearly all of them still in L1 on a second pass.
 * - A flood of 30,000 random never-repeating keys (more than the index holds) while five
 *   hot keys are read: CPU per request stays flat from the first third of the flood to the
 *   last, the hot keys keep being answered from L1 (S3-FIFO keeps what is read), and they
 *   cost Redis about one GET per soft TTL each.
 *
 * CPU is the gateway process's own (/proc/<pid>/stat), compared as ratios with generous
 * bounds, so a busy machine does not fail the test. Redis GETs are counted on the master
 * that holds the hot keys only (hash tags put the flood on another master).
 */
import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { halfSipHash } from '../../src/l1/hash.ts';
import { encodeKey, keyScratch } from '../../src/l1/key-bytes.ts';
import { MAX_PROBE, planLayout } from '../../src/l1/layout.ts';
import { type GatewayChild, startGatewayOn } from '../fixtures/gateway/gateway-process.ts';
import { agent, request } from '../fixtures/gateway/http.ts';
import { cpuMs } from '../fixtures/proc.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { nodeClient } from '../fixtures/redis/redis-clients.ts';

const L1_BYTES = 4 * 1024 * 1024;
const MAX_VALUE_BYTES = 16 * 1024;
const MAX_COUNTERS = 256;
const SOFT_TTL_MS = 1000;
/** The gateway's index, as its flags lay it out (the seed is the only unknown). */
const layout = planLayout({
  bytes: L1_BYTES,
  maxKeyBytes: 1024,
  maxValueBytes: MAX_VALUE_BYTES,
  maxThreads: 64,
  maxCounters: MAX_COUNTERS,
  hotKeys: true,
});

const cluster = useOwnCluster();
let gw: GatewayChild;
let gatewayPid: number;
/** Hash tags on two different masters: the flood's and the hot keys'. */
let floodTag: string;
let hotTag: string;
let hotPort: number;

beforeAll(async () => {
  gw = await startGatewayOn(cluster.seeds, [
    '--threads',
    '2',
    '--l1-bytes',
    String(L1_BYTES),
    '--max-value-bytes',
    String(MAX_VALUE_BYTES),
    '--max-counters',
    String(MAX_COUNTERS),
    '--soft-ttl',
    `${SOFT_TTL_MS}ms`,
    // Absent keys stay in L1 (as negative entries) for the whole flood, so it fills the index.
    '--negative-ttl',
    '60s',
  ]);
  gatewayPid = Number(gw.logs.find((l) => l.msg === 'gateway process listening')?.pid);
  const redis = new Cluster(cluster.seeds.split(','));
  try {
    await redis.ping();
    const ownerOf = (tag: string) => redis.slots[calculateSlot(tag)][0];
    hotTag = '{hot}';
    floodTag = Array.from({ length: 50 }, (_, i) => `{f${i}}`).find(
      (t) => ownerOf(t) !== ownerOf(hotTag),
    ) as string;
    hotPort = Number(ownerOf(hotTag).split(':')[1]);
  } finally {
    redis.disconnect();
  }
});
afterAll(async () => {
  await gw?.stop();
});

/** `count` keys `prefix<n>` whose HalfSipHash-1-3 under key 0/0 starts in one window. */
function windowColliders(prefix: string, count: number): string[] {
  const mask = layout.slotCount - 1;
  const scratch = keyScratch(1024);
  const home = (key: string) =>
    halfSipHash(scratch, encodeKey(key, scratch, 1024, 'key'), 0, 0) & mask;
  const start = home(`${prefix}0`);
  const out: string[] = [];
  for (let n = 0; out.length < count; n++) {
    const key = `${prefix}${n}`;
    if (((home(key) - start) & mask) < MAX_PROBE) out.push(key);
  }
  return out;
}

/** 2^blocks keys with one Java String.hashCode: every mix of "Aa" and "BB" blocks. */
function javaColliders(prefix: string, blocks: number): string[] {
  return Array.from({ length: 2 ** blocks }, (_, n) => {
    let key = prefix;
    for (let b = 0; b < blocks; b++) key += (n >> b) & 1 ? 'BB' : 'Aa';
    return key;
  });
}

function javaHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/** GET every key (32 at a time); the x-cache of each reply, and the gateway CPU it cost. */
async function getAll(keys: string[], pool = agent(32)) {
  const cache: Record<string, number> = {};
  const before = cpuMs(gatewayPid);
  for (let i = 0; i < keys.length; i += 32) {
    const replies = await Promise.all(
      keys
        .slice(i, i + 32)
        .map((k) => request(`${gw.url}/v1/kv/${encodeURIComponent(k)}`, { agent: pool })),
    );
    for (const r of replies) {
      const c = r.status === 200 ? String(r.headers['x-cache']) : String(r.status);
      cache[c] = (cache[c] ?? 0) + 1;
    }
  }
  return { cache, cpuMs: cpuMs(gatewayPid) - before };
}

const fromL1 = (cache: Record<string, number>, total: number) =>
  ((cache.HIT ?? 0) + (cache.STALE ?? 0)) / total;

async function storeAll(keys: string[]): Promise<void> {
  const redis = new Cluster(cluster.seeds.split(','));
  try {
    for (let i = 0; i < keys.length; i += 500) {
      const pipeline = redis.pipeline();
      for (const k of keys.slice(i, i + 500)) pipeline.set(k, `v:${k.length}`);
      await pipeline.exec();
    }
  } finally {
    redis.disconnect();
  }
}

describe('hash flooding', () => {
  it('keys crafted to collide under an unseeded hash cost what random keys cost, and stay in L1', async () => {
    const crafted = windowColliders(`${floodTag}sip:`, 1024);
    const java = javaColliders(`${floodTag}java:`, 10);
    // The attack is real: under seed 0/0 every crafted key starts in one 32-slot window,
    // and every Java key has one hashCode.
    expect(new Set(java.map(javaHash)).size).toBe(1);
    const random = Array.from({ length: 1024 }, (_, i) => `${floodTag}rnd:${i}:${Math.random()}`);
    await storeAll([...crafted, ...java, ...random]);
    // Warm the JIT on keys of another shape, so the first phase is not penalised.
    await getAll(Array.from({ length: 1500 }, (_, i) => `${floodTag}warm:${i}`));

    // First pass (misses, read from Redis), interleaved in rounds against machine drift.
    const cpu = { random: 0, crafted: 0, java: 0 };
    const rounds = 4;
    const part = (keys: string[], r: number) =>
      keys.slice((r * keys.length) / rounds, ((r + 1) * keys.length) / rounds);
    for (let r = 0; r < rounds; r++) {
      cpu.random += (await getAll(part(random, r))).cpuMs;
      cpu.crafted += (await getAll(part(crafted, r))).cpuMs;
      cpu.java += (await getAll(part(java, r))).cpuMs;
    }
    // Second pass: who is still in L1?
    const again = {
      random: fromL1((await getAll(random)).cache, random.length),
      crafted: fromL1((await getAll(crafted)).cache, crafted.length),
      java: fromL1((await getAll(java)).cache, java.length),
    };
    const perRequest = {
      random: cpu.random / random.length,
      crafted: cpu.crafted / crafted.length,
      java: cpu.java / java.length,
    };
    console.log(
      `hash-flood: gateway CPU per first-pass request (ms): random ${perRequest.random.toFixed(3)}, ` +
        `HalfSipHash(0/0) window colliders ${perRequest.crafted.toFixed(3)}, Java hashCode colliders ${perRequest.java.toFixed(3)}; ` +
        `still in L1 on a second pass: random ${(again.random * 100).toFixed(1)} %, crafted ${(again.crafted * 100).toFixed(1)} %, java ${(again.java * 100).toFixed(1)} % ` +
        `(under seed 0/0 at most ${(((2 * MAX_PROBE - 1) / crafted.length) * 100).toFixed(1)} % of the crafted keys could be)`,
    );
    expect(perRequest.crafted / perRequest.random).toBeLessThan(2.5);
    expect(perRequest.java / perRequest.random).toBeLessThan(2.5);
    expect(again.random).toBeGreaterThan(0.9);
    expect(again.crafted).toBeGreaterThan(0.9);
    expect(again.java).toBeGreaterThan(0.9);
  });

  it('a flood of 30,000 never-repeating keys: CPU per request stays flat, hot keys keep their hits and ~1 GET per soft TTL', async () => {
    const hot = Array.from({ length: 5 }, (_, i) => `${hotTag}:item:${i}`);
    await storeAll(hot);
    const pool = agent(32);
    await getAll(hot, pool); // in L1 before the flood
    const hotNode = nodeClient(hotPort);
    const getsOnHotNode = async () =>
      Number(/cmdstat_get:calls=(\d+)/.exec(await hotNode.info('commandstats'))?.[1] ?? 0);
    const getsBefore = await getsOnHotNode();
    const started = performance.now();
    const hotCache: Record<string, number> = {};
    const thirds: number[] = [];
    const FLOOD = 30_000;
    let next = 0;
    for (let third = 0; third < 3; third++) {
      const cpuBefore = cpuMs(gatewayPid);
      const end = ((third + 1) * FLOOD) / 3;
      while (next < end) {
        // 45 flood keys (misses, absent in Redis) and the 5 hot keys, all at once.
        const flood = Array.from({ length: 45 }, () => `${floodTag}flood:${next++}`);
        const replies = await Promise.all(
          [...flood, ...hot].map((k) => request(`${gw.url}/v1/kv/${k}`, { agent: pool })),
        );
        for (const r of replies.slice(45)) {
          const c = r.status === 200 ? String(r.headers['x-cache']) : String(r.status);
          hotCache[c] = (hotCache[c] ?? 0) + 1;
        }
        for (const r of replies.slice(0, 45)) expect(r.status).toBe(404);
      }
      thirds.push((cpuMs(gatewayPid) - cpuBefore) / (FLOOD / 3 + (FLOOD / 3 / 45) * 5));
    }
    const seconds = (performance.now() - started) / 1000;
    const hotGets = (await getsOnHotNode()) - getsBefore;
    const hotReads = Object.values(hotCache).reduce((a, b) => a + b, 0);
    const metrics = (await request(`${gw.url}/metrics`)).text;
    const evictions = Number(/^hotshield_l1_evictions_total (\d+)/m.exec(metrics)?.[1]);
    console.log(
      `hash-flood: ${FLOOD} flood keys in ${seconds.toFixed(1)} s (${evictions} L1 evictions); CPU per request by third (ms): ${thirds.map((t) => t.toFixed(3)).join(', ')}; ` +
        `hot keys: ${JSON.stringify(hotCache)} (${(fromL1(hotCache, hotReads) * 100).toFixed(1)} % from L1), ${hotGets} Redis GETs for ${hot.length} keys over ${seconds.toFixed(1)} s at soft TTL ${SOFT_TTL_MS} ms`,
    );
    // The flood overflowed the index (maxLiveEntries) several times over.
    expect(FLOOD).toBeGreaterThan(layout.maxLiveEntries);
    expect(evictions).toBeGreaterThan(FLOOD - layout.maxLiveEntries);
    expect(Math.max(...thirds) / Math.min(...thirds)).toBeLessThan(2.5);
    expect(fromL1(hotCache, hotReads)).toBeGreaterThan(0.95);
    // One refresh per key per soft TTL, plus one per key of slack at each end.
    expect(hotGets).toBeLessThanOrEqual(
      hot.length * (Math.ceil((seconds * 1000) / SOFT_TTL_MS) + 2),
    );
  });
});
