/**
 * zipf: Zipf(0.99) over many 1 KiB keys with an L1 budget of 10 % of the working set
 * (the classic two-tier splits the same total over its processes). Compares hit ratios
 * (1 − Redis GETs / requests) and throughput.
 */

import { formatBytes, formatPercent, formatRate, formatRatio, progress } from '../lib/report.ts';
import {
  compete,
  find,
  met,
  type ScenarioOutcome,
  type Suite,
  storeKeys,
  summarise,
  table,
  variantName,
} from '../lib/suite.ts';

export async function zipf(suite: Suite): Promise<ScenarioOutcome> {
  const keys = suite.quick ? 10_000 : 100_000;
  const valueBytes = 1024;
  const value = Buffer.alloc(valueBytes, 'z');
  progress(`zipf: storing ${keys} keys of ${valueBytes} B`);
  await storeKeys(suite, 'bench:z:', keys, value);
  const l1Bytes = Math.floor(keys * valueBytes * 0.1);
  const cells = await compete(
    suite,
    'zipf',
    [{ name: 'p1', pipelining: 1 }],
    { softTtlMs: suite.softTtlMs, bodyBytes: valueBytes, l1Bytes },
    { zipf: { keys, s: 0.99, seed: 42, prefix: '/v1/kv/bench:z:' } },
    undefined,
    undefined,
    suite.loadgens,
  );
  const rows = summarise(cells);
  const goals: string[] = [];
  for (const tool of suite.loadgens) {
    const v = variantName('p1', tool);
    const hs = find(rows, 'hotshield', v);
    const classic = find(rows, 'classic', v);
    const l2 = find(rows, 'l2-only', v);
    if (hs === undefined) continue;
    const vs = (other: typeof hs | undefined, name: string, goal: number) =>
      other === undefined
        ? []
        : [
            `${formatRatio(hs.requestsPerSecond / other.requestsPerSecond)} of ${name} (goal ≥ ${goal.toFixed(2)}×: ${met(hs.requestsPerSecond >= goal * other.requestsPerSecond)})`,
          ];
    const parts = [...vs(l2, 'l2-only', 1.25), ...vs(classic, 'classic two-tier', 1.1)];
    if (parts.length > 0)
      goals.push(
        `zipf ${v} throughput: hotshield ${formatRate(hs.requestsPerSecond)} req/s = ${parts.join('; ')}`,
      );
    if (l2 !== undefined)
      goals.push(
        `zipf ${v} server CPU per request: hotshield ${hs.serverCpuPerRequestUs.toFixed(1)} µs, l2-only ${l2.serverCpuPerRequestUs.toFixed(1)} µs (goal ≤: ${met(hs.serverCpuPerRequestUs <= l2.serverCpuPerRequestUs)})`,
      );
    if (classic !== undefined)
      goals.push(
        `zipf ${v} hit ratio: hotshield ${formatPercent(hs.l1HitRatio)} vs classic two-tier ${formatPercent(classic.l1HitRatio)} with the same total L1 bytes (goal ≥: ${met(hs.l1HitRatio >= classic.l1HitRatio)})`,
      );
  }
  const label = (r: (typeof rows)[number]) =>
    r.variant === 'p1' ? r.contender : `${r.contender} (${r.variant})`;
  const served = rows.filter((r) => r.contender !== 'ceiling');
  return {
    name: 'zipf',
    record: {
      settings: {
        threads: suite.threads,
        rounds: suite.rounds,
        seconds: suite.seconds,
        keys,
        valueBytes,
        l1Bytes,
        s: 0.99,
      },
      rows,
      runs: cells,
    },
    report:
      `### zipf: Zipf(0.99) over ${keys} keys of ${valueBytes} B, L1 budget ${formatBytes(l1Bytes)} (10 % of the working set; classic splits it over its ${suite.threads} processes)\n\n` +
      table(rows, [
        ['Redis GETs', (r) => String(r.redisGets)],
        ['hit ratio', (r) => (r.contender === 'ceiling' ? 'n/a' : formatPercent(r.l1HitRatio))],
      ]),
    goals,
    chart: [
      {
        categories: ['requests/s'],
        series: rows.map((r) => ({ name: label(r), values: [r.requestsPerSecond] })),
        yLabel: 'requests/s',
      },
      {
        categories: ['hit ratio %'],
        series: served.map((r) => ({
          name: label(r),
          values: [Math.round(r.l1HitRatio * 1000) / 10],
        })),
        yLabel: 'L1 hit ratio (%)',
      },
    ],
  };
}
