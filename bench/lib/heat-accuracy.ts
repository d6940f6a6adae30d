/**
 * How well the L1's hot-key table (src/l1/heat.ts) knows a Zipf stream, against exact
 * counts of the same stream: one thread feeds a seeded Zipf(s) trace over `keys` keys at
 * `rate` events a second of real time (the keeper ticks every second on the table clock,
 * as in the refresher), then reads the hot set back and compares it with the trace's own
 * counts over the window the report covers.
 *
 * - precision@k: of the k keys the table ranks highest by reads, how many are among the
 *   trace's k most read over the window (ties at the k-th count included);
 * - rate error: for the trace's 10 most read keys, |reported − exact| / exact, where
 *   exact counts that key's events over the very window its report covers.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { createL1, HEAT_KIND, L1Table, L1Writer } from '../../src/l1/index.ts';
import { prng } from './prng.ts';
import { zipfTrace } from './zipf.ts';

export interface AccuracyCell {
  s: number;
  keys: number;
  rate: number;
  seconds: number;
  events: number;
  /** The window of the hottest key's report, ms. */
  windowMs: number;
  precisionAt10: number;
  precisionAt100: number;
  /** Over the trace's 10 most read keys. */
  rateErrorMax: number;
  rateErrorMean: number;
  /** Records the table held at the end. */
  records: number;
  /** What feeding cost, per event (the caller's loop included). */
  feedNsPerEvent: number;
}

const CHUNK = 1000;

export async function heatAccuracy(o: {
  s: number;
  keys: number;
  rate: number;
  seconds: number;
  seed: number;
}): Promise<AccuracyCell> {
  const handle = createL1({ bytes: 8 * 1024 * 1024, maxValueBytes: 1024 });
  const table = L1Table.attach(handle);
  const writer = L1Writer.open(handle);
  const names = Array.from({ length: o.keys }, (_, i) => `key:${i}`);
  const trace = zipfTrace(o.keys, o.s, Math.round(o.rate * o.seconds), prng(o.seed)).requests;
  const chunks = Math.ceil(trace.length / CHUNK);
  const chunkAt = new Float64Array(chunks);
  const tick = setInterval(() => writer.tickHeat('node'), 1000);
  writer.tickHeat('node');
  const started = table.now();
  let feeding = 0;
  try {
    for (let c = 0; c < chunks; c++) {
      const due = started + (c * CHUNK * 1000) / o.rate;
      const wait = due - table.now();
      if (wait > 1) await sleep(wait);
      else await new Promise((r) => setImmediate(r));
      const t0 = performance.now();
      chunkAt[c] = table.now();
      const end = Math.min(trace.length, (c + 1) * CHUNK);
      for (let i = c * CHUNK; i < end; i++) table.heat(names[trace[i]], 0, HEAT_KIND.HIT);
      feeding += performance.now() - t0;
    }
  } finally {
    clearInterval(tick);
  }
  const now = table.now();
  const report = table.hotKeys().keys;
  writer.close();
  table.close();
  const byReads = [...report].sort((a, b) => b.hits - a.hits);
  const windowMs = byReads[0]?.windowMs ?? 0;
  /** Every key's events in the trace over the last `ms` before `now`. */
  const exactOver = (ms: number): Uint32Array => {
    const counts = new Uint32Array(o.keys);
    for (let c = 0; c < chunks; c++) {
      if (chunkAt[c] < now - ms) continue;
      const end = Math.min(trace.length, (c + 1) * CHUNK);
      for (let i = c * CHUNK; i < end; i++) counts[trace[i]]++;
    }
    return counts;
  };
  const exact = exactOver(windowMs);
  const ranked = Array.from({ length: o.keys }, (_, i) => i).sort((a, b) => exact[b] - exact[a]);
  const precision = (k: number): number => {
    const bar = exact[ranked[k - 1]];
    const top = new Set(byReads.slice(0, k).map((r) => Number(r.key.slice(4))));
    let hits = 0;
    for (const i of top) if (exact[i] >= bar) hits++;
    return hits / k;
  };
  const errors = ranked.slice(0, 10).map((i) => {
    const row = report.find((r) => r.key === names[i]);
    if (row === undefined) return 1;
    const truth = exactOver(row.windowMs)[i];
    return truth === 0 ? 1 : Math.abs(row.hits - truth) / truth;
  });
  return {
    s: o.s,
    keys: o.keys,
    rate: o.rate,
    seconds: o.seconds,
    events: trace.length,
    windowMs,
    precisionAt10: precision(10),
    precisionAt100: precision(100),
    rateErrorMax: Math.max(...errors),
    rateErrorMean: errors.reduce((a, b) => a + b, 0) / errors.length,
    records: report.length,
    feedNsPerEvent: (feeding * 1e6) / trace.length,
  };
}
