/**
 * `npm run bench:tier`: the embedded tier's read path against what an application would
 * otherwise run in its worker threads, side by side in one run on a real Redis Cluster:
 *
 *   hotshield   `await tier.get(key)`, T threads attached to one tier (one shared L1, one
 *               refresher)
 *   lru-cache   an lru-cache per thread in front of an ioredis Cluster client per thread
 *   ioredis     an ioredis Cluster client per thread (autopipelining), no cache
 *   hotshield (hot keys off)   the same tier with hotKeys off: what hot-key detection costs
 *
 * Two cases, T = 1 and 2 worker threads, `--concurrency` reads in flight per thread:
 *   hit    1,000 keys of 64 B or 1 KiB, all cached (warmed), long TTL: every read a hit
 *   miss   --miss-keys keys of 64 B read round-robin with a 1 ms TTL (hotshield: soft
 *          1 ms, stale 0; lru-cache: ttl 1 ms), so every read finds its entry expired
 *          and goes to Redis: what a miss costs each contender. ioredis reads Redis
 *          every time anyway.
 *
 * Rounds rotate the contenders' order; the report gives medians (ops/s summed over the
 * threads) and hotshield's ratio to each. Every read's value is checked (length and
 * first byte, which name the key).
 *
 *   npm run bench:tier [-- --quick] [-- --rounds 3 --seconds 2 --concurrency 32]
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Cluster } from 'ioredis';
import { startRedisCluster } from '../src/dev/redis-cluster.ts';
import { createTier, type Tier } from '../src/tier/index.ts';
import type {
  TierBenchContender,
  TierBenchReply,
  TierBenchRun,
  TierBenchWorkerData,
} from './fixtures/tier-bench-worker.ts';
import { machine } from './lib/machine.ts';
import { median } from './lib/measure.ts';
import { formatRate, formatRatio, markdownTable, progress, writeJson } from './lib/report.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    'miss-keys': { type: 'string', default: '100000' },
  },
});
const quick = values.quick;
const rounds = Number(values.rounds ?? (quick ? 1 : 3));
const ms = Number(values.seconds ?? (quick ? 1 : 2)) * 1000;
const concurrency = Number(values.concurrency);
const missKeys = Number(values['miss-keys']);
const HOT_KEYS = 1000;
const CONTENDERS: TierBenchContender[] = [
  'hotshield',
  'hotshield (hot keys off)',
  'lru-cache',
  'ioredis',
];
const CASES = [
  { name: 'hit, 64 B', prefix: 'bt:h64:', count: HOT_KEYS, valueBytes: 64, miss: false },
  { name: 'hit, 1 KiB', prefix: 'bt:h1k:', count: HOT_KEYS, valueBytes: 1024, miss: false },
  { name: 'miss, 64 B', prefix: 'bt:m:', count: missKeys, valueBytes: 64, miss: true },
] as const;
type Case = (typeof CASES)[number];

/** Key i's value: valueBytes of one letter, so a reader can check it is key i's. */
const letterValue = (i: number, bytes: number) => Buffer.alloc(bytes, 0x61 + (i % 26));

async function fill(redis: Cluster, c: Case): Promise<void> {
  for (let i = 0; i < c.count; i += 5000) {
    const sets: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(c.count, i + 5000); j++)
      sets.push(redis.set(c.prefix + j, letterValue(j, c.valueBytes)));
    await Promise.all(sets);
  }
}

function ask<T extends TierBenchReply>(w: Worker, message?: TierBenchRun): Promise<T> {
  return new Promise((resolve, reject) => {
    const off = () => {
      w.off('message', onMessage);
      w.off('error', reject);
    };
    const onMessage = (m: T) => {
      off();
      resolve(m);
    };
    w.on('message', onMessage);
    w.once('error', (e) => {
      off();
      reject(e);
    });
    if (message !== undefined) w.postMessage(message);
  });
}

const cluster = await startRedisCluster({ masters: 3 });
const tiers: Tier[] = [];
const workers: Worker[] = [];
try {
  const redis = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0].port }], {
    enableAutoPipelining: true,
  });
  progress('filling the cluster');
  for (const c of CASES) await fill(redis, c);
  await redis.quit();
  // One tier for hits (long TTLs), one whose entries expire at once (every read a miss).
  const hitTier = await createTier({ redis: cluster.seeds, codec: 'raw', softTtl: '10m' });
  const missTier = await createTier({
    redis: cluster.seeds,
    codec: 'raw',
    softTtl: 1,
    staleTtl: 0,
    negativeTtl: 0,
  });
  const coldOptions = { hotKeys: false } as const;
  const coldHitTier = await createTier({
    redis: cluster.seeds,
    codec: 'raw',
    softTtl: '10m',
    ...coldOptions,
  });
  const coldMissTier = await createTier({
    redis: cluster.seeds,
    codec: 'raw',
    softTtl: 1,
    staleTtl: 0,
    negativeTtl: 0,
    ...coldOptions,
  });
  tiers.push(hitTier, missTier, coldHitTier, coldMissTier);
  const tierFor = (contender: TierBenchContender, miss: boolean) =>
    contender === 'hotshield (hot keys off)'
      ? miss
        ? coldMissTier
        : coldHitTier
      : miss
        ? missTier
        : hitTier;
  const file = new URL('./fixtures/tier-bench-worker.ts', import.meta.url);
  /** Two threads per contender and tier, started once and reused by every run. */
  const pool = new Map<string, Worker[]>();
  for (const contender of CONTENDERS) {
    for (const miss of [false, true]) {
      const data = (lruMax: number): TierBenchWorkerData => ({
        contender,
        seeds: cluster.seeds,
        handle: tierFor(contender, miss).handle,
        lruMax,
        lruTtlMs: miss ? 1 : 600_000,
      });
      const ws = [0, 1].map(() => new Worker(file, { workerData: data(missKeys + HOT_KEYS * 2) }));
      workers.push(...ws);
      await Promise.all(ws.map((w) => ask(w)));
      pool.set(`${contender} ${miss}`, ws);
    }
  }
  const runOnce = async (contender: TierBenchContender, c: Case, threads: number) => {
    const ws = (pool.get(`${contender} ${c.miss}`) ?? []).slice(0, threads);
    const share = Math.floor(c.count / threads);
    const replies = await Promise.all(
      ws.map((w, t) =>
        ask<Extract<TierBenchReply, { t: 'ran' }>>(w, {
          t: 'run',
          prefix: c.prefix,
          first: t * share,
          count: share,
          valueBytes: c.valueBytes,
          ms,
          concurrency,
        }),
      ),
    );
    return replies.reduce((sum, r) => sum + r.ops / r.seconds, 0);
  };
  // Warm: every hit key into every cache, every thread's code path compiled.
  progress('warming');
  for (const contender of CONTENDERS) for (const c of CASES) await runOnce(contender, c, 2);
  const results: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    const order = CONTENDERS.map((_, i) => CONTENDERS[(i + round) % CONTENDERS.length]);
    for (const c of CASES) {
      for (const threads of [1, 2]) {
        for (const contender of order) {
          const rate = await runOnce(contender, c, threads);
          const id = `${c.name}|${threads}|${contender}`;
          results[id] = [...(results[id] ?? []), rate];
          progress(
            `round ${round + 1}/${rounds}: ${c.name}, ${threads} thread(s), ${contender}: ${formatRate(rate)} ops/s`,
          );
          await sleep(50);
        }
      }
    }
  }
  const rows: string[][] = [];
  for (const c of CASES) {
    for (const threads of [1, 2]) {
      const m = (contender: TierBenchContender) =>
        median(results[`${c.name}|${threads}|${contender}`]);
      const hs = m('hotshield');
      rows.push([
        c.name,
        String(threads),
        formatRate(hs),
        `${formatRate(m('lru-cache'))} (${formatRatio(hs / m('lru-cache'))})`,
        `${formatRate(m('ioredis'))} (${formatRatio(hs / m('ioredis'))})`,
        `${formatRate(m('hotshield (hot keys off)'))} (${formatRatio(hs / m('hotshield (hot keys off)'))})`,
      ]);
    }
  }
  const settings = { rounds, ms, concurrency, missKeys, hotKeys: HOT_KEYS };
  console.log(
    `\n### tier.get, ops/s summed over the threads (median of ${rounds} round(s) × ${ms / 1000} s, ${concurrency} reads in flight per thread; in brackets hotshield ÷ that contender)\n`,
  );
  console.log(
    markdownTable(
      [
        'case',
        'threads',
        'hotshield tier.get',
        'lru-cache + ioredis per thread',
        'ioredis per thread',
        'hotshield, hot keys off',
      ],
      rows,
    ),
  );
  const date = new Date().toISOString().slice(0, 10);
  writeJson(
    new URL(`./results/${date}-tier${quick ? '-quick' : ''}.json`, import.meta.url).pathname,
    { settings, machine: machine(), results },
  );
} finally {
  await Promise.all(workers.map((w) => w.terminate()));
  for (const t of tiers) await t.close().catch(() => {});
  await cluster.stop();
}
