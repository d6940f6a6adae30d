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
  variantName,
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
    undefined,
    suite.loadgens,
  );
  const rows = summarise(cells);
  const goals: string[] = [];
  for (const tool of suite.loadgens) {
    const p1 = variantName('p1', tool);
    const p10 = variantName('p10', tool);
    const rate = (c: 'hotshield' | 'ceiling' | 'classic', v: string) =>
      find(rows, c, v)?.requestsPerSecond;
    const hs1 = rate('hotshield', p1);
    const ceil1 = rate('ceiling', p1);
    const classic1 = rate('classic', p1);
    const hs10 = rate('hotshield', p10);
    const classic10 = rate('classic', p10);
    if (hs1 !== undefined && ceil1 !== undefined) {
      goals.push(
        `tsunami ${p1} throughput: hotshield ${formatRate(hs1)} req/s = ${formatRatio(hs1 / ceil1)} of ceiling (goal ≥ 0.95×: ${met(hs1 >= 0.95 * ceil1)})` +
          (classic1 !== undefined
            ? `; ${formatRatio(hs1 / classic1)} of classic two-tier (goal ≥ 1×: ${met(hs1 >= classic1)})`
            : ''),
      );
    }
    if (hs10 !== undefined && classic10 !== undefined) {
      goals.push(
        `tsunami ${p10} throughput: hotshield ${formatRate(hs10)} req/s = ${formatRatio(hs10 / classic10)} of classic two-tier (goal ≥ 1×: ${met(hs10 >= classic10)})`,
      );
    }
  }
  const hs = find(rows, 'hotshield', 'p1');
  const classic = find(rows, 'classic', 'p1');
  const softS = suite.softTtlMs / 1000;
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
  const shown = suite.loadgens.flatMap((t) => variants.map((v) => variantName(v.name, t)));
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
        categories: shown,
        series: contenders.map((c) => ({
          name: c,
          values: shown.map((v) => find(rows, c, v)?.requestsPerSecond ?? 0),
        })),
        yLabel: 'requests/s',
      },
      {
        categories: shown,
        series: contenders.map((c) => ({
          name: c,
          values: shown.map((v) => find(rows, c, v)?.hotNodeGetsPerSecond ?? 0),
        })),
        yLabel: 'GETs/s on the hot key master',
        logScale: true,
      },
    ],
  };
}
