/**
 * tsunami: every request for one key, 100 connections, with and without HTTP
 * pipelining, each run on a freshly started contender (so it includes the cold start)
 * and longer than the soft TTL (so it includes L1 expiries). Records the GETs the hot
 * key's master served: the number the product exists to shrink.
 */

import { formatRate, formatRatio } from '../lib/report.ts';
import {
  compete,
  find,
  loadSettings,
  met,
  ownerPort,
  type ScenarioOutcome,
  type Suite,
  summarise,
  table,
} from '../lib/suite.ts';

const HOT_KEY = 'bench:hot';
const VALUE_BYTES = 64;

export async function tsunami(suite: Suite): Promise<ScenarioOutcome> {
  await suite.redis.set(HOT_KEY, Buffer.alloc(VALUE_BYTES, 'h'));
  const hotNodePort = await ownerPort(suite, HOT_KEY);
  const variants = [
    { name: 'p1', pipelining: 1 },
    { name: 'p10', pipelining: 10 },
  ];
  const cells = await compete(
    suite,
    'tsunami',
    variants,
    { softTtlMs: suite.softTtlMs, bodyBytes: VALUE_BYTES, l1Bytes: 64 * 1024 * 1024 },
    `/v1/kv/${HOT_KEY}`,
    hotNodePort,
  );
  const rows = summarise(cells);
  const goals: string[] = [];
  const hs = find(rows, 'hotshield', 'p1');
  const ceiling = find(rows, 'ceiling', 'p1');
  const classic = find(rows, 'classic', 'p1');
  const softS = suite.softTtlMs / 1000;
  if (hs && ceiling) {
    goals.push(
      `tsunami p1 throughput: hotshield ${formatRate(hs.requestsPerSecond)} req/s = ${formatRatio(hs.requestsPerSecond / ceiling.requestsPerSecond)} of ceiling (goal ≥ 0.90×: ${met(hs.requestsPerSecond >= 0.9 * ceiling.requestsPerSecond)})` +
        (classic
          ? `; ${formatRatio(hs.requestsPerSecond / classic.requestsPerSecond)} of classic two-tier (goal ≥ 1×: ${met(hs.requestsPerSecond >= classic.requestsPerSecond)})`
          : ''),
    );
  }
  if (hs) {
    const allowed = Math.floor(suite.seconds / softS) + 1;
    goals.push(
      `tsunami p1 hot-key GETs per ${suite.seconds} s run: hotshield ${hs.redisGets} (goal ≤ 1 process × ${suite.seconds} s ÷ ${softS} s + 1 = ${allowed}: ${met(hs.redisGets <= allowed)})` +
        (classic
          ? `; classic two-tier ${classic.redisGets} (${suite.threads} processes, no coalescing: the expiry stampede)`
          : '') +
        (find(rows, 'l2-only', 'p1') ? `; l2-only ${find(rows, 'l2-only', 'p1')?.redisGets}` : ''),
    );
  }
  const contenders = [...new Set(rows.map((r) => r.contender))];
  return {
    name: 'tsunami',
    record: {
      settings: {
        ...loadSettings(suite),
        softTtlMs: suite.softTtlMs,
        valueBytes: VALUE_BYTES,
        hotNodePort,
      },
      rows,
      runs: cells,
    },
    report:
      `### tsunami: every request for one key (${VALUE_BYTES} B), ${suite.connections} connections, ${suite.seconds} s per run, fresh start (cold L1) each run, soft TTL ${softS} s\n\n` +
      table(rows, [
        ['hot-node GETs/s', (r) => r.hotNodeGetsPerSecond.toFixed(1)],
        ['Redis CPU s', (r) => r.redisCpuSeconds.toFixed(2)],
      ]),
    goals,
    chart: [
      {
        categories: variants.map((v) => v.name),
        series: contenders.map((c) => ({
          name: c,
          values: variants.map((v) => find(rows, c, v.name)?.requestsPerSecond ?? 0),
        })),
        yLabel: 'requests/s',
      },
      {
        categories: variants.map((v) => v.name),
        series: contenders.map((c) => ({
          name: c,
          values: variants.map((v) => find(rows, c, v.name)?.hotNodeGetsPerSecond ?? 0),
        })),
        yLabel: 'GETs/s on the hot key master',
        logScale: true,
      },
    ],
  };
}
