/**
 * `npm run bench:l1 [-- --quick]`: micro-benchmark of hotshield's L1 table next to the
 * plain alternatives, all in one run on one machine (see bench/README.md).
 *
 * 1. get-hit, 1 thread: L1 get (fresh key string, value copied out) vs Map.get with a
 *    cached key, Map.get with a fresh key, lru-cache get (ttl set) with a fresh key.
 * 2. get-hit, 1 vs 2 worker threads on one shared table; Map per thread as reference.
 * 3. writer set: overwrite-heavy and insert-with-eviction (Map / lru-cache as reference).
 * 4. hit ratio on a Zipf(0.99) read-through trace, L1 vs lru-cache at the same byte budget.
 *
 * Progress goes to stderr, the markdown tables to stdout, everything (with raw rounds)
 * to bench/results/<date>-l1.json. Not a test: nothing here passes or fails on speed;
 * it throws only when a result is wrong (a miss where every lookup must hit).
 */

import { makeKeys, makeUrls } from './lib/keys.ts';
import { GET, getOneThread } from './lib/l1-get.ts';
import { hitRatio } from './lib/l1-hit-ratio.ts';
import { type L1Report, renderMarkdown, rowNamed } from './lib/l1-markdown.ts';
import { setCases } from './lib/l1-set.ts';
import { getTwoThreads } from './lib/l1-threads.ts';
import { cpuMeter, machine } from './lib/machine.ts';
import { checksum, median } from './lib/measure.ts';
import { progress, writeJson } from './lib/report.ts';

const quick = process.argv.includes('--quick');
const CONFIG = {
  quick,
  plan: quick
    ? { warmupMs: 40, roundMs: 40, rounds: 3 }
    : { warmupMs: 300, roundMs: 300, rounds: 5 },
  entries: 10_000,
  getValueBytes: [64, 1024, 16 * 1024],
  setValueBytes: [64, 1024],
  /** Length of the precomputed access order (a power of two). */
  orderLength: 1 << 16,
  /** Unique keys cycled by the insert-with-eviction case: several times what either cache holds. */
  insertKeyPool: 1 << 18,
  zipf: {
    keys: quick ? 10_000 : 100_000,
    requests: quick ? 100_000 : 1_000_000,
    s: 0.99,
    valueBytes: 1024,
    budgetFraction: 0.1,
  },
} as const;

const m = machine();
progress(
  `hotshield L1 bench${quick ? ' (--quick)' : ''}: Node ${m.node}, ${m.cpuModel} × ${m.cores}, ` +
    `commit ${m.gitCommit}, load ${m.loadAverageAtStart.join(' ')}`,
);
const started = performance.now();
const keys = makeKeys(CONFIG.entries, 0);
const urls = makeUrls(keys);
const { plan, orderLength } = CONFIG;

let meter = cpuMeter();
const get = CONFIG.getValueBytes.map((valueBytes) =>
  getOneThread(keys, urls, valueBytes, plan, orderLength),
);
const cpuGet = meter();

meter = cpuMeter();
const threads = await getTwoThreads(
  keys,
  get.map((g) => ({ valueBytes: g.valueBytes, handle: g.handle })),
  plan,
  orderLength,
);
const cpuThreads = meter();
for (const g of get) {
  const misses = g.table.stats().misses;
  if (misses !== 0) throw new Error(`L1 reported ${misses} misses`);
  g.table.close();
}

meter = cpuMeter();
const set = CONFIG.setValueBytes.map((valueBytes) =>
  setCases(keys, urls, valueBytes, plan, orderLength, CONFIG.insertKeyPool),
);
const cpuSet = meter();

meter = cpuMeter();
const zipf = hitRatio(CONFIG.zipf);
const cpuZipf = meter();

const report: L1Report = {
  machine: m,
  quick,
  plan,
  entries: CONFIG.entries,
  seconds: (performance.now() - started) / 1e3,
  cpu: { get: cpuGet, threads: cpuThreads, set: cpuSet, zipf: cpuZipf },
  get: get.map((g) => ({ valueBytes: g.valueBytes, rows: g.rows })),
  threads,
  set,
  zipf,
  ratios: {
    l1VsMapFreshByValueBytes: Object.fromEntries(
      get.map((g) => [
        g.valueBytes,
        rowNamed(g.rows, GET.mapFresh).medianNs / rowNamed(g.rows, GET.l1).medianNs,
      ]),
    ),
    twoThreadsVsOne: threads.map((t) => ({
      valueBytes: t.valueBytes,
      contender: t.contender,
      ratio: median(t.twoThreads) / median(t.oneThread),
    })),
    zipfHitRatio: { hotshield: zipf.l1.hitRatio, lruCache: zipf.lru.hitRatio },
  },
};
process.stdout.write(`${renderMarkdown(report)}\n`);

const file = new URL(
  `results/${m.date.slice(0, 10)}-l1${quick ? '-quick' : ''}.json`,
  import.meta.url,
);
writeJson(file.pathname, { ...report, config: CONFIG, checksum: checksum() });
progress(`wrote ${file.pathname} (checksum ${checksum()})`);
