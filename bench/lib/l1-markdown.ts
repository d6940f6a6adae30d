/** The markdown report of `bench/l1.ts`: one table per part, then the key ratios. */

import { GET } from './l1-get.ts';
import type { HitRatioResult } from './l1-hit-ratio.ts';
import type { SetResult } from './l1-set.ts';
import type { ThreadRow } from './l1-threads.ts';
import type { CpuShare, Machine } from './machine.ts';
import { median, type Plan, type Summary } from './measure.ts';
import {
  formatBytes,
  formatNsRange,
  formatPercent,
  formatRate,
  formatRatio,
  markdownTable,
} from './report.ts';

export interface KeyRatios {
  /** ops/s of the L1 get over Map.get with a fresh key, per value size. */
  readonly l1VsMapFreshByValueBytes: Record<number, number>;
  readonly twoThreadsVsOne: { valueBytes: number; contender: string; ratio: number }[];
  readonly zipfHitRatio: { hotshield: number; lruCache: number };
}

export interface L1Report {
  readonly machine: Machine;
  readonly quick: boolean;
  readonly plan: Plan;
  readonly entries: number;
  readonly seconds: number;
  readonly cpu: Record<'get' | 'threads' | 'set' | 'zipf', CpuShare | undefined>;
  readonly get: { valueBytes: number; rows: Summary[] }[];
  readonly threads: ThreadRow[];
  readonly set: SetResult[];
  readonly zipf: HitRatioResult;
  readonly ratios: KeyRatios;
}

export const rowNamed = (rows: Summary[], name: string): Summary => {
  const row = rows.find((r) => r.name === name);
  if (row === undefined) throw new Error(`no result for ${name}`);
  return row;
};

function noise(c: CpuShare | undefined): string {
  if (c === undefined) return '_CPU taken by other processes meanwhile: not measurable here._';
  return (
    `_CPU taken meanwhile by other processes: ${c.otherCores.toFixed(2)} cores; ` +
    `hypervisor steal: ${c.stealCores.toFixed(2)} cores._`
  );
}

function header(r: L1Report): string {
  const m = r.machine;
  const edits = m.srcModified.length > 0 ? ` + uncommitted ${m.srcModified.join(', ')}` : '';
  return (
    `Node ${m.node} · ${m.cpuModel} · ${m.cores} cores · commit ${m.gitCommit}${edits} · ` +
    `${m.date.slice(0, 10)} · lru-cache ${m.lruCacheVersion} · each figure: median of ` +
    `${r.plan.rounds} rounds × ${r.plan.roundMs} ms after ${r.plan.warmupMs} ms warm-up, ` +
    `[min–max] over the rounds · run took ${r.seconds.toFixed(0)} s`
  );
}

function getTable(r: L1Report): string {
  return markdownTable(
    ['value', 'contender', 'ns/op median [min–max]', 'ops/s', 'vs Map.get (fresh key)'],
    r.get.flatMap((g) => {
      const base = rowNamed(g.rows, GET.mapFresh).medianNs;
      return g.rows.map((row) => [
        formatBytes(g.valueBytes),
        row.name,
        formatNsRange(row.medianNs, row.nsPerOp),
        formatRate(row.opsPerSec),
        formatRatio(base / row.medianNs),
      ]);
    }),
  );
}

function threadsTable(r: L1Report): string {
  return markdownTable(
    ['value', 'contender', '1 thread ops/s', '2 threads ops/s (total)', '2 threads / 1 thread'],
    r.threads.map((t) => [
      formatBytes(t.valueBytes),
      t.contender,
      formatRate(median(t.oneThread)),
      formatRate(median(t.twoThreads)),
      formatRatio(median(t.twoThreads) / median(t.oneThread)),
    ]),
  );
}

function setTable(r: L1Report): string {
  const timing = (row: Summary) => [
    formatNsRange(row.medianNs, row.nsPerOp),
    formatRate(row.opsPerSec),
  ];
  return markdownTable(
    ['scenario', 'value', 'contender', 'ns/op median [min–max]', 'ops/s', 'after the run'],
    r.set.flatMap((x) => {
      const size = formatBytes(x.valueBytes);
      const table = `L1 ${formatBytes(x.tableBytes)}`;
      const ow = x.overwriteL1;
      const ins = x.insertL1;
      return [
        ...x.overwrite.map((row, i) => [
          `overwrite, ${r.entries} keys`,
          size,
          row.name,
          ...timing(row),
          i === 0
            ? `${table}: ${ow.entries} entries; ${ow.updates} updates, ${ow.inserts} inserts, ` +
              `${ow.evictions} evictions, ${ow.refused} refused`
            : '',
        ]),
        ...x.insert.map((row, i) => [
          'insert + evict, unique keys',
          size,
          row.name,
          ...timing(row),
          i === 0
            ? `${table}: ${ins.entries} entries; ${ins.inserts} inserts, ${ins.evictions} evictions, ` +
              `${ins.refused} refused`
            : `${x.insertLruEntries} entries`,
        ]),
      ];
    }),
  );
}

function hitRatioTable(z: HitRatioResult): string {
  return markdownTable(
    ['cache', 'hit ratio', 'hit ratio, 2nd half', 'entries at end', 'notes'],
    [
      [
        'hotshield L1 (`bytes` = budget)',
        formatPercent(z.l1.hitRatio),
        formatPercent(z.l1.hitRatioSecondHalf),
        `${z.l1.entries}`,
        `${z.l1.inserts} inserts, ${z.l1.evictions} evictions, ${z.l1.promotions} promotions, ` +
          `${z.l1.reinsertions} reinsertions, ${z.l1.refused} refused; ${(z.l1.ms / 1e3).toFixed(2)} s`,
      ],
      [
        'lru-cache (`maxSize` = budget, key + value bytes)',
        formatPercent(z.lru.hitRatio),
        formatPercent(z.lru.hitRatioSecondHalf),
        `${z.lru.entries}`,
        `${(z.lru.ms / 1e3).toFixed(2)} s`,
      ],
      [
        'reference: static top-K, preloaded',
        formatPercent(z.staticTopK.hitRatio),
        '',
        `${z.staticTopK.keys}`,
        'the most popular keys that fit (key + value bytes)',
      ],
    ],
  );
}

export function renderMarkdown(r: L1Report): string {
  const z = r.zipf;
  const q = r.ratios;
  return [
    `## hotshield L1 micro-benchmark${r.quick ? ' (--quick: indicative only)' : ''}`,
    '',
    header(r),
    '',
    `### 1. get-hit, 1 thread (${r.entries} entries, all hits, keys 16–64 B, pseudo-random order)`,
    '',
    noise(r.cpu.get),
    '',
    getTable(r),
    '',
    '### 2. get-hit, 1 vs 2 worker threads (L1: one shared table; Map: one per thread)',
    '',
    noise(r.cpu.threads),
    '',
    threadsTable(r),
    '',
    '### 3. set, 1 thread (key strings fresh; Map and lru-cache store a reference, L1 copies the bytes)',
    '',
    noise(r.cpu.set),
    '',
    setTable(r),
    '',
    `### 4. hit ratio, Zipf(${z.s}) read-through: ${z.requests} requests over ${z.keys} keys, ` +
      `${formatBytes(z.valueBytes)} values, budget ${formatBytes(z.budgetBytes)} ` +
      `(${z.budgetFraction * 100} % of ${formatBytes(z.workingSetBytes)})`,
    '',
    noise(r.cpu.zipf),
    '',
    hitRatioTable(z),
    '',
    '### key ratios',
    '',
    `- hotshield / Map.get (fresh key), 1 thread: ${r.get
      .map(
        (g) =>
          `${formatBytes(g.valueBytes)} ${formatRatio(q.l1VsMapFreshByValueBytes[g.valueBytes])}`,
      )
      .join(', ')}`,
    `- 2 threads / 1 thread: ${q.twoThreadsVsOne
      .map(
        (t) =>
          `${t.contender === GET.l1 ? 'L1' : 'Map'} ${formatBytes(t.valueBytes)} ${formatRatio(t.ratio)}`,
      )
      .join(', ')}`,
    `- Zipf hit ratio: hotshield ${formatPercent(q.zipfHitRatio.hotshield)} vs lru-cache ` +
      `${formatPercent(q.zipfHitRatio.lruCache)}`,
    '',
  ].join('\n');
}
