/**
 * The gateway's per-request metrics, kept in shared memory: one block per HTTP thread
 * slot, written only by the thread that owns it, read by the process's main thread at
 * scrape time. A request costs a Map lookup and three increments, not prom-client calls
 * (label hashing, objects); a scrape reads the blocks without asking any thread, and a
 * respawned thread takes over its predecessor's block, so totals survive thread deaths.
 *
 * Block layout (Int32 words; every count is a u32 lo/hi pair with one writer, as the L1's):
 *
 *   [0]                          combos in use (published with Atomics.store)
 *   [1 .. 1+MAX_COMBOS)          combo keys: route << 16 | method << 10 | status
 *   [COUNTS .. +2·MAX_COMBOS)    request count per combo
 *   [OVERFLOW, +1]               requests of combos beyond MAX_COMBOS
 *   [LATENCY ..)                 per route: BUCKETS + 1 (the +Inf) counts, then the sum in µs
 *
 * Latency buckets are stored per bucket (not cumulative) and summed when read.
 */

import { METHODS } from 'node:http';
import { bumpCount as bump, readCount } from '../tier/index.ts';

const REQUEST_ROUTES = [
  'kv',
  'counter',
  'hotkeys',
  'dashboard',
  'healthz',
  'readyz',
  'metrics',
  'other',
] as const;

/** Upper bounds of the latency histogram's buckets, in seconds (prom-client's `le`). */
export const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
] as const;

/** Distinct (route, method, status) seen per thread; more is counted as one overflow line. */
const MAX_COMBOS = 512;
const COUNTS = 1 + MAX_COMBOS;
const OVERFLOW = COUNTS + 2 * MAX_COMBOS;
const LATENCY = OVERFLOW + 2;
const ROUTE_WORDS = 2 * (LATENCY_BUCKETS.length + 1) + 2;
const BLOCK_WORDS = LATENCY + REQUEST_ROUTES.length * ROUTE_WORDS;
const REQUEST_STATS_BYTES = BLOCK_WORDS * 4;

/** Methods Node's parser accepts, and a last index for anything else. */
const METHOD_NAMES: readonly string[] = [...METHODS, 'other'];
const METHOD_INDEX = new Map(METHOD_NAMES.map((m, i) => [m, i]));
const ROUTE_INDEX = new Map<string, number>(REQUEST_ROUTES.map((r, i) => [r, i]));
const LATENCY_US = LATENCY_BUCKETS.map((s) => s * 1e6);

/** A fresh block for one HTTP thread slot (created by the main thread, kept across respawns). */
export function requestStatsBlock(): SharedArrayBuffer {
  return new SharedArrayBuffer(REQUEST_STATS_BYTES);
}

/** The writing side, in the HTTP thread that owns `block`. */
export class RequestStats {
  readonly #words: Int32Array;
  /** combo key → index of its count, as published in the block. */
  readonly #combos = new Map<number, number>();

  constructor(block: SharedArrayBuffer) {
    if (block.byteLength !== REQUEST_STATS_BYTES)
      throw new RangeError(`a request stats block is ${REQUEST_STATS_BYTES} bytes`);
    this.#words = new Int32Array(block);
    // A respawned thread continues its predecessor's combos.
    const n = Atomics.load(this.#words, 0);
    for (let i = 0; i < n; i++) this.#combos.set(this.#words[1 + i], COUNTS + 2 * i);
  }

  /** Count one answered request of `route` (a REQUEST_ROUTES name) that took `seconds`. */
  observe(route: string, method: string, status: number, seconds: number): void {
    const w = this.#words;
    const r = ROUTE_INDEX.get(route) ?? REQUEST_ROUTES.length - 1;
    const m = METHOD_INDEX.get(method) ?? METHOD_NAMES.length - 1;
    const key = (r << 16) | (m << 10) | (status & 1023);
    let at = this.#combos.get(key);
    if (at === undefined) at = this.#addCombo(key);
    bump(w, at, 1);
    const us = seconds > 0 ? Math.round(seconds * 1e6) : 0;
    let b = 0;
    while (b < LATENCY_US.length && us > LATENCY_US[b]) b++;
    const base = LATENCY + r * ROUTE_WORDS;
    bump(w, base + 2 * b, 1);
    bump(w, base + ROUTE_WORDS - 2, us);
  }

  #addCombo(key: number): number {
    const w = this.#words;
    const n = w[0];
    if (n >= MAX_COMBOS) return OVERFLOW;
    w[1 + n] = key;
    // publish: pairs with readRequestStats' Atomics.load of the combo count.
    Atomics.store(w, 0, n + 1);
    const at = COUNTS + 2 * n;
    this.#combos.set(key, at);
    return at;
  }
}

/** One sample of prom-client's metric JSON (what AggregatorRegistry.aggregate merges). */
interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

const REQUESTS = 'hotshield_http_requests_total';
const DURATION = 'hotshield_http_request_duration_seconds';

/**
 * Every block's counts as prom-client metric JSON, one part per block, for mergeMetrics:
 * the same names, labels and histogram shape the gateway has always exported.
 */
export function readRequestStats(blocks: readonly SharedArrayBuffer[]): object[][] {
  return blocks.map((block) => {
    const w = new Int32Array(block);
    const requests: Sample[] = [];
    const n = Math.min(Atomics.load(w, 0), MAX_COMBOS);
    for (let i = 0; i < n; i++) {
      const key = w[1 + i];
      requests.push({
        labels: {
          route: REQUEST_ROUTES[key >>> 16] ?? 'other',
          method: METHOD_NAMES[(key >>> 10) & 63] ?? 'other',
          status: String(key & 1023),
        },
        value: readCount(w, COUNTS + 2 * i),
      });
    }
    const overflow = readCount(w, OVERFLOW);
    if (overflow > 0)
      requests.push({
        labels: { route: 'other', method: 'other', status: 'other' },
        value: overflow,
      });
    const durations: Sample[] = [];
    REQUEST_ROUTES.forEach((route, r) => {
      const base = LATENCY + r * ROUTE_WORDS;
      let count = 0;
      const buckets: Sample[] = [];
      for (let b = 0; b <= LATENCY_BUCKETS.length; b++) {
        count += readCount(w, base + 2 * b);
        buckets.push({
          labels: { le: b < LATENCY_BUCKETS.length ? LATENCY_BUCKETS[b] : '+Inf', route },
          value: count,
          metricName: `${DURATION}_bucket`,
        });
      }
      if (count === 0) return;
      durations.push(
        ...buckets,
        {
          labels: { route },
          value: readCount(w, base + ROUTE_WORDS - 2) / 1e6,
          metricName: `${DURATION}_sum`,
        },
        { labels: { route }, value: count, metricName: `${DURATION}_count` },
      );
    });
    return [
      {
        name: REQUESTS,
        help: 'HTTP requests answered, by route, method and status',
        type: 'counter',
        aggregator: 'sum',
        values: requests,
      },
      {
        name: DURATION,
        help: 'Time from request to response, by route',
        type: 'histogram',
        aggregator: 'sum',
        values: durations,
      },
    ];
  });
}
