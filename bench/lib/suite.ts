/**
 * What every scenario of `npm run bench` shares: the run's settings and cluster, running
 * contenders in rotated order over rounds (this VM's speed drifts by ±20 % over minutes,
 * so contenders alternate and each cell is the median), and the result table.
 */

import calculateSlot from 'cluster-key-slot';
import type { Cluster } from 'ioredis';
import type { RedisClusterHandle } from '../../src/dev/redis-cluster.ts';
import type { LoadSpec, LoadTool } from '../fixtures/loadgen.ts';
import {
  CONTENDERS,
  type ContenderName,
  type ContenderOptions,
  startContender,
} from './contenders.ts';
import { type Measurement, measure, runLoad } from './http-measure.ts';
import type { Machine } from './machine.ts';
import { formatBytes, formatRate, formatRatio, markdownTable, progress } from './report.ts';

export interface Suite {
  quick: boolean;
  rounds: number;
  seconds: number;
  threads: number;
  connections: number;
  softTtlMs: number;
  contenders: readonly ContenderName[];
  cluster: RedisClusterHandle;
  redis: Cluster;
  redisPorts: number[];
  machine: Machine;
  /** The load generators the throughput scenarios run (autocannon, and wrk when on PATH). */
  loadgens: readonly LoadTool[];
  /**
   * Seconds of load on JIT_WARM_PATH before each measured run (0: none), so that a fresh
   * process's JIT warm-up, the same for every request whatever the scenario, is not
   * what a short run measures. The warm key is not a scenario key: the scenario's keys
   * still start cold.
   */
  jitWarmSeconds: number;
}

/** The key every contender serves during its JIT warm-up (run.ts stores it). */
export const JIT_WARM_KEY = 'bench:jit-warm';

/** A variant's name in the tables: autocannon's as it is, wrk's with " wrk". */
export function variantName(name: string, tool: LoadTool = 'autocannon'): string {
  return tool === 'autocannon' ? name : `${name} wrk`;
}

/** What a scenario hands back: its JSON record, its report section, its goal lines. */
export interface ScenarioOutcome {
  name: string;
  record: unknown;
  report: string;
  goals: string[];
  chart?: {
    categories: string[];
    series: Array<{ name: string; values: number[] }>;
    yLabel: string;
    logScale?: boolean;
  }[];
}

/** The settings every HTTP scenario records with its results. */
export function loadSettings(suite: Suite) {
  return {
    threads: suite.threads,
    rounds: suite.rounds,
    seconds: suite.seconds,
    connections: suite.connections,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * SET `${prefix}0` … `${prefix}${count - 1}` to `value`. The keys spread over every
 * master, so concurrent SETs (1,000 at a time) rather than one single-slot pipeline.
 */
export async function storeKeys(
  suite: Suite,
  prefix: string,
  count: number,
  value: Buffer,
): Promise<void> {
  for (let i = 0; i < count; i += 1000) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(count, i + 1000); j++)
      batch.push(suite.redis.set(`${prefix}${j}`, value));
    await Promise.all(batch);
  }
}

/** The port of the master that owns `key`'s slot. */
export async function ownerPort(suite: Suite, key: string): Promise<number> {
  await suite.redis.cluster('SLOTS');
  const owner = suite.redis.slots[calculateSlot(key)]?.[0] ?? '';
  return Number(owner.split(':')[1]);
}

export interface Cell {
  contender: ContenderName;
  variant: string;
  runs: Measurement[];
}

/** Every contender × variant, `rounds` times in rotated order, each on a fresh start (cold, unless `warmPath`). */
export async function compete(
  suite: Suite,
  scenario: string,
  variants: Array<{ name: string; pipelining: number }>,
  options: Omit<ContenderOptions, 'seeds' | 'threads'> & { seeds?: string },
  path: LoadSpec['path'],
  hotNodePort?: number,
  /** Requested once before measuring, so the run starts warm instead of cold. */
  warmPath?: string,
  /** Each variant runs once per load generator (named by variantName). */
  tools: readonly LoadTool[] = ['autocannon'],
): Promise<Cell[]> {
  // Only those that serve GET /v1/kv/<key> (not direct-incr, the counters baseline).
  const chosen = suite.contenders.filter((c) => (CONTENDERS as readonly string[]).includes(c));
  const runs = tools.flatMap((tool) =>
    variants.map((v) => ({ ...v, tool, name: variantName(v.name, tool) })),
  );
  const cells: Cell[] = runs.flatMap((v) =>
    chosen.map((contender) => ({ contender, variant: v.name, runs: [] })),
  );
  for (let round = 0; round < suite.rounds; round++) {
    for (const variant of runs) {
      const order = chosen.map((_, i) => chosen[(i + round) % chosen.length]);
      for (const contender of order) {
        // A fresh process each time: the run includes the cold start (empty L1).
        const running = await startContender(contender, {
          seeds: suite.cluster.seeds,
          threads: suite.threads,
          ...options,
        });
        try {
          if (suite.jitWarmSeconds > 0) {
            await runLoad({
              tool: variant.tool,
              urls: [running.url('/')],
              connections: suite.connections,
              pipelining: variant.pipelining,
              seconds: suite.jitWarmSeconds,
              path: `/v1/kv/${JIT_WARM_KEY}`,
            });
          }
          if (warmPath !== undefined) {
            const warm = await fetch(running.url(warmPath));
            await warm.arrayBuffer();
          }
          const result = await measure({
            label: `${scenario} ${contender} ${variant.name} (round ${round + 1}/${suite.rounds})`,
            serverPids: [running.pid],
            redisPorts: suite.redisPorts,
            hotNodePort,
            progress,
            spec: {
              tool: variant.tool,
              urls: [running.url('/')],
              connections: suite.connections,
              pipelining: variant.pipelining,
              seconds: suite.seconds,
              path,
            },
          });
          cells
            .find((c) => c.contender === contender && c.variant === variant.name)
            ?.runs.push(result);
        } finally {
          await running.stop();
        }
      }
    }
  }
  return cells;
}

export function summarise(cells: Cell[]) {
  return cells.map((c) => {
    const pick = (f: (r: Measurement) => number) => median(c.runs.map(f));
    const rates = c.runs.map((r) => r.requestsPerSecond);
    return {
      contender: c.contender,
      variant: c.variant,
      rounds: c.runs.length,
      requestsPerSecond: pick((r) => r.requestsPerSecond),
      requestsPerSecondRange: [Math.min(...rates), Math.max(...rates)],
      p50: pick((r) => r.latencyMs.p50),
      p99: pick((r) => r.latencyMs.p99),
      p999: pick((r) => r.latencyMs.p999),
      failures: pick((r) => r.non2xx + r.errors),
      redisGets: pick((r) => r.redis.reduce((s, n) => s + n.gets, 0)),
      hotNodeGetsPerSecond: pick((r) => r.hotNodeGetsPerSecond ?? 0),
      redisCpuSeconds: pick((r) => r.redis.reduce((s, n) => s + n.cpuSeconds, 0)),
      l1HitRatio: pick((r) => r.l1HitRatio),
      serverCpuSeconds: pick((r) => r.serverCpuSeconds),
      serverCpuPerRequestUs: pick((r) => r.serverCpuPerRequestUs),
      loadgenCpuSeconds: pick((r) => r.loadgenCpuSeconds),
      serverRssBytes: pick((r) => r.serverRssBytes),
    };
  });
}

export type Row = ReturnType<typeof summarise>[number];

export function find(rows: Row[], contender: ContenderName, variant: string): Row | undefined {
  return rows.find((r) => r.contender === contender && r.variant === variant);
}

/** The scenario table: throughput with ratios to ceiling and l2-only, latency, costs. */
export function table(rows: Row[], extra: Array<[string, (r: Row) => string]>): string {
  const rate = (name: ContenderName, variant: string) =>
    find(rows, name, variant)?.requestsPerSecond ?? Number.NaN;
  return markdownTable(
    [
      'contender',
      'variant',
      'req/s (median)',
      'vs ceiling',
      'vs l2-only',
      'p50 / p99 / p99.9 ms',
      'non-2xx + errors',
      ...extra.map(([h]) => h),
      'server CPU s',
      'server µs/req',
      'loadgen CPU s',
      'server RSS',
    ],
    rows.map((r) => [
      r.contender,
      r.variant,
      formatRate(r.requestsPerSecond),
      formatRatio(r.requestsPerSecond / rate('ceiling', r.variant)),
      formatRatio(r.requestsPerSecond / rate('l2-only', r.variant)),
      [r.p50, r.p99, r.p999].map(ms).join(' / '),
      String(r.failures),
      ...extra.map(([, f]) => f(r)),
      r.serverCpuSeconds.toFixed(1),
      r.serverCpuPerRequestUs.toFixed(1),
      r.loadgenCpuSeconds.toFixed(1),
      formatBytes(r.serverRssBytes),
    ]),
  );
}

export const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');

/** A latency in ms as the table shows it: whole (autocannon's) or to 0.1 ms (wrk's). */
const ms = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(1));
