/**
 * counters: one write-hot counter under load. Every request is
 * `POST /v1/counters/<name>/incr` (by 1) for the same counter, 100 connections, no HTTP
 * pipelining, each run on a fresh contender and a fresh counter:
 *
 *   direct-incr       one INCRBY per request, answered after Redis (fixtures/incr-server.ts)
 *   hotshield         the gateway: the increment lands in shared memory (202) and is
 *                     flushed by one script per counter per flush interval
 *   hotshield sync=1  the same, each request answered once Redis acknowledged its flush
 *
 * Records requests/s, the key writes per second on the hottest master (cluster-stats.ts
 * says how writes are counted) and per request, and whether the total Redis holds once
 * the contender has stopped (SIGTERM, awaited: the gateway flushes what is left) equals
 * the increments acknowledged with a 2xx. The load drains (loadgen.ts), so every request
 * sent is answered and the comparison is exact: one lost or doubled increment shows.
 */

import { type ContenderName, startContender } from '../lib/contenders.ts';
import { counterTotal, describeTotal } from '../lib/counter-total.ts';
import { type Measurement, measure } from '../lib/http-measure.ts';
import { formatRate, formatRatio, markdownTable, progress } from '../lib/report.ts';
import { loadSettings, median, met, type ScenarioOutcome, type Suite } from '../lib/suite.ts';

const FLUSH_INTERVAL_MS = 100;
/** The issue's goal: this many times fewer Redis writes than a direct INCR per request. */
const GOAL_RATIO = 1000;

interface Variant {
  label: string;
  contender: ContenderName;
  query: string;
}

const VARIANTS: readonly Variant[] = [
  { label: 'direct-incr', contender: 'direct-incr', query: '' },
  { label: 'hotshield', contender: 'hotshield', query: '' },
  { label: 'hotshield sync=1', contender: 'hotshield', query: '?sync=1' },
];

interface CounterRun {
  label: string;
  round: number;
  counter: string;
  measurement: Measurement;
  /** The master with the most key writes during the run. */
  hottestPort: number;
  hottestWrites: number;
  hottestScripts: number;
  /** What Redis holds after the contender stopped, as a decimal string (a bigint). */
  total: string;
  check: string;
}

/** 1534.2 → "1,534×": a factor of that size has no useful decimals. */
function formatFactor(x: number): string {
  return Number.isFinite(x) && x >= 100
    ? `${Math.round(x).toLocaleString('en-US')}×`
    : formatRatio(x);
}

async function runOnce(suite: Suite, v: Variant, round: number): Promise<CounterRun> {
  // A fresh counter per run: its total is this run's increments and nothing else.
  const counter = `bench:counter:${Date.now().toString(36)}:${round}:${v.contender}${v.query ? ':sync' : ''}`;
  const running = await startContender(v.contender, {
    seeds: suite.cluster.seeds,
    threads: suite.threads,
    softTtlMs: suite.softTtlMs,
    bodyBytes: 64,
    l1Bytes: 64 * 1024 * 1024,
    flushIntervalMs: FLUSH_INTERVAL_MS,
  });
  let measurement: Measurement;
  try {
    measurement = await measure({
      label: `counters ${v.label} (round ${round + 1}/${suite.rounds})`,
      serverPids: [running.pid],
      redisPorts: suite.redisPorts,
      progress,
      spec: {
        urls: [running.url('/')],
        method: 'POST',
        drain: true,
        connections: suite.connections,
        pipelining: 1,
        seconds: suite.seconds,
        path: `/v1/counters/${encodeURIComponent(counter)}/incr${v.query}`,
      },
    });
  } finally {
    // Awaited before reading: the gateway's last flush lands while it shuts down.
    await running.stop();
  }
  const total = await counterTotal(suite.redis, counter);
  const hottest = measurement.redis.reduce((a, b) => (b.writes > a.writes ? b : a));
  return {
    label: v.label,
    round,
    counter,
    measurement,
    hottestPort: hottest.port,
    hottestWrites: hottest.writes,
    hottestScripts: hottest.scripts,
    total: total.toString(),
    check:
      describeTotal(total, measurement.ok) +
      (measurement.unanswered > 0 ? ` (${measurement.unanswered} requests unanswered)` : ''),
  };
}

export async function counters(suite: Suite): Promise<ScenarioOutcome> {
  const variants = VARIANTS.filter((v) => suite.contenders.includes(v.contender));
  const runs: CounterRun[] = [];
  for (let round = 0; round < suite.rounds; round++) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length]);
    for (const v of order) runs.push(await runOnce(suite, v, round));
  }
  const rows = variants.map((v) => {
    const mine = runs.filter((r) => r.label === v.label);
    const pick = (f: (r: CounterRun) => number) => median(mine.map(f));
    return {
      label: v.label,
      rounds: mine.length,
      requestsPerSecond: pick((r) => r.measurement.requestsPerSecond),
      p50: pick((r) => r.measurement.latencyMs.p50),
      p99: pick((r) => r.measurement.latencyMs.p99),
      failures: pick((r) => r.measurement.non2xx + r.measurement.errors),
      hottestWritesPerSecond: pick((r) => r.hottestWrites / suite.seconds),
      hottestScriptsPerSecond: pick((r) => r.hottestScripts / suite.seconds),
      writesPerRequest: pick((r) => r.hottestWrites / Math.max(1, r.measurement.requests)),
      scriptsPerRequest: pick((r) => r.hottestScripts / Math.max(1, r.measurement.requests)),
      redisCpuSeconds: pick((r) => r.measurement.redis.reduce((s, n) => s + n.cpuSeconds, 0)),
      serverCpuSeconds: pick((r) => r.measurement.serverCpuSeconds),
      loadgenCpuSeconds: pick((r) => r.measurement.loadgenCpuSeconds),
      totals: mine.map((r) => `${r.measurement.ok} / ${r.total}`).join('; '),
      checks: mine.map((r) => r.check),
      exact: mine.every((r) => r.check === 'exact'),
    };
  });
  const direct = rows.find((r) => r.label === 'direct-incr');
  const fewer = (r: (typeof rows)[number]) =>
    direct === undefined ? Number.NaN : direct.writesPerRequest / r.writesPerRequest;
  const goals: string[] = [];
  const hs = rows.find((r) => r.label === 'hotshield');
  if (hs && direct) {
    // A flush is one EVALSHA from the client and two key writes: counting client commands
    // instead halves hotshield's figure (direct-incr's writes are all client INCRBYs).
    const perClientCommand = direct.writesPerRequest / hs.scriptsPerRequest;
    goals.push(
      `counters: hotshield makes ${formatFactor(fewer(hs))} fewer key writes per request on the hottest master than direct INCR (goal ≥ ${GOAL_RATIO}×: ${met(fewer(hs) >= GOAL_RATIO)}); counting client write commands instead (one EVALSHA per flush): ${formatFactor(perClientCommand)}`,
    );
  }
  if (rows.length > 0) {
    goals.push(
      `counters: totals in Redis equal the increments acknowledged (goal exact): ${rows.map((r) => `${r.label} ${r.checks.join(', ')}`).join('; ')}: ${met(rows.every((r) => r.exact))}`,
    );
  }
  return {
    name: 'counters',
    record: {
      settings: {
        ...loadSettings(suite),
        pipelining: 1,
        flushIntervalMs: FLUSH_INTERVAL_MS,
        writes:
          'calls of string-key write commands on a master (INFO commandstats), inside scripts too; script calls counted apart',
      },
      rows,
      runs,
    },
    report:
      `### counters: every request increments one counter, ${suite.connections} connections, ${suite.seconds} s per run, fresh start each run, flush interval ${FLUSH_INTERVAL_MS} ms\n\n` +
      'Writes: key writes Redis executed on the master with the most of them (a flush script counts its INCRBY and SET, not the EVALSHA itself; "scripts/s" counts those). ' +
      'Totals: increments answered 2xx / total in Redis after the contender stopped, per round.\n\n' +
      markdownTable(
        [
          'contender',
          'req/s (median)',
          'p50 / p99 ms',
          'non-2xx + errors',
          'writes/s, hottest master',
          'scripts/s, hottest master',
          'writes per 1,000 requests',
          'direct-incr ÷ this, writes per request',
          'acknowledged / in Redis',
          'total check',
          'Redis CPU s',
          'server CPU s',
          'loadgen CPU s',
        ],
        rows.map((r) => [
          r.label,
          formatRate(r.requestsPerSecond),
          `${r.p50} / ${r.p99}`,
          String(r.failures),
          r.hottestWritesPerSecond.toFixed(1),
          r.hottestScriptsPerSecond.toFixed(1),
          (r.writesPerRequest * 1000).toFixed(2),
          formatFactor(fewer(r)),
          r.totals,
          r.exact ? 'exact' : r.checks.join('; '),
          r.redisCpuSeconds.toFixed(2),
          r.serverCpuSeconds.toFixed(1),
          r.loadgenCpuSeconds.toFixed(1),
        ]),
      ),
    goals,
    chart: [
      {
        categories: ['requests/s'],
        series: rows.map((r) => ({ name: r.label, values: [r.requestsPerSecond] })),
        yLabel: 'requests/s',
      },
      {
        categories: ['writes/s on the hottest master'],
        series: rows.map((r) => ({ name: r.label, values: [r.hottestWritesPerSecond] })),
        yLabel: 'key writes/s on the hottest master',
        logScale: true,
      },
    ],
  };
}
