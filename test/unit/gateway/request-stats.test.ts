import { AggregatorRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  LATENCY_BUCKETS,
  RequestStats,
  readRequestStats,
  requestStatsBlock,
} from '../../../src/gateway/request-stats.ts';
import { nextMessage, startWorker } from '../../fixtures/workers/threads.ts';

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };
type Metric = { name: string; values: Sample[] };

/** The request counts of one block part, as "route method status" → count. */
function requestCounts(part: object[]): Record<string, number> {
  const [requests] = part as Metric[];
  return Object.fromEntries(
    requests.values.map((s) => [
      `${s.labels.route} ${s.labels.method} ${s.labels.status}`,
      s.value,
    ]),
  );
}

function histogram(part: object[], route: string): Sample[] {
  const [, durations] = part as Metric[];
  return durations.values.filter((s) => s.labels.route === route);
}

describe('request stats (shared-memory request metrics)', () => {
  it('counts each (route, method, status) and buckets latency cumulatively, as prom-client would', () => {
    const block = requestStatsBlock();
    const stats = new RequestStats(block);
    stats.observe('kv', 'GET', 200, 0.00005);
    stats.observe('kv', 'GET', 200, 0.0003);
    stats.observe('kv', 'HEAD', 404, 0.002);
    stats.observe('counter', 'POST', 202, 3);
    stats.observe('healthz', 'GET', 200, 0.0001);
    const [part] = readRequestStats([block]);
    expect(requestCounts(part)).toEqual({
      'kv GET 200': 2,
      'kv HEAD 404': 1,
      'counter POST 202': 1,
      'healthz GET 200': 1,
    });
    const kv = histogram(part, 'kv');
    const buckets = kv.filter((s) => s.metricName?.endsWith('_bucket'));
    expect(buckets.map((s) => s.labels.le)).toEqual([...LATENCY_BUCKETS, '+Inf']);
    // 50 µs ≤ 0.1 ms; 300 µs ≤ 0.5 ms; 2 ms ≤ 2.5 ms: cumulative counts.
    expect(buckets.map((s) => s.value)).toEqual([1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
    expect(kv.find((s) => s.metricName?.endsWith('_count'))?.value).toBe(3);
    expect(kv.find((s) => s.metricName?.endsWith('_sum'))?.value).toBeCloseTo(0.00235, 9);
    // A request exactly on a bucket's bound is in that bucket (le: less or equal).
    const healthz = histogram(part, 'healthz').filter((s) => s.metricName?.endsWith('_bucket'));
    expect(healthz[0].value).toBe(1);
    // 3 s is past the last bound: only +Inf has it.
    const counter = histogram(part, 'counter').filter((s) => s.metricName?.endsWith('_bucket'));
    expect(counter.at(-2)?.value).toBe(0);
    expect(counter.at(-1)?.value).toBe(1);
    // Routes never asked have no series at all.
    expect(histogram(part, 'readyz')).toEqual([]);
  });

  it('unknown route and method names are counted as "other", never dropped', () => {
    const block = requestStatsBlock();
    new RequestStats(block).observe('nonsense', 'BREW', 418, 0.001);
    expect(requestCounts(readRequestStats([block])[0])).toEqual({ 'other other 418': 1 });
  });

  it('a new writer on a block (a respawned thread) continues its counts', () => {
    const block = requestStatsBlock();
    const first = new RequestStats(block);
    for (let i = 0; i < 5; i++) first.observe('kv', 'GET', 200, 0.001);
    const second = new RequestStats(block);
    for (let i = 0; i < 3; i++) second.observe('kv', 'GET', 200, 0.001);
    second.observe('kv', 'GET', 304, 0.001);
    expect(requestCounts(readRequestStats([block])[0])).toEqual({
      'kv GET 200': 8,
      'kv GET 304': 1,
    });
  });

  it('past 512 distinct combinations, the rest is counted on one overflow line', () => {
    const block = requestStatsBlock();
    const stats = new RequestStats(block);
    let n = 0;
    for (let status = 100; status < 700 && n < 600; status++, n++)
      stats.observe('kv', 'GET', status, 0);
    const counts = requestCounts(readRequestStats([block])[0]);
    expect(Object.keys(counts)).toHaveLength(513);
    expect(counts['other other other']).toBe(600 - 512);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(600);
  });

  it('merges over blocks into the Prometheus text the gateway has always exported', async () => {
    const blocks = [requestStatsBlock(), requestStatsBlock()];
    new RequestStats(blocks[0]).observe('kv', 'GET', 200, 0.001);
    new RequestStats(blocks[1]).observe('kv', 'GET', 200, 0.001);
    const text = await AggregatorRegistry.aggregate(readRequestStats(blocks) as never).metrics();
    expect(text).toMatch(
      /^hotshield_http_requests_total\{route="kv",method="GET",status="200"\} 2$/m,
    );
    expect(text).toMatch(
      /^hotshield_http_request_duration_seconds_bucket\{le="0\.001",route="kv"\} 2$/m,
    );
    expect(text).toMatch(/^hotshield_http_request_duration_seconds_count\{route="kv"\} 2$/m);
  });

  it('torture: two threads record 10^6 requests each while the main thread reads; no count lost or going back', async () => {
    const count = 1_000_000;
    const blocks = [requestStatsBlock(), requestStatsBlock()];
    const workers = blocks.map((block) =>
      startWorker(new URL('../../fixtures/workers/request-stats-worker.ts', import.meta.url), {
        block,
        count,
      }),
    );
    const done = Promise.all(workers.map((w) => nextMessage(w)));
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    let last = [0, 0, 0, 0];
    let reads = 0;
    while (!finished) {
      const now = readRequestStats(blocks).flatMap((p) => {
        const c = requestCounts(p);
        const hist = histogram(p, 'kv').find((s) => s.metricName?.endsWith('_count'))?.value ?? 0;
        return [(c['kv GET 200'] ?? 0) + (c['kv GET 404'] ?? 0), hist];
      });
      for (let i = 0; i < now.length; i++) expect(now[i]).toBeGreaterThanOrEqual(last[i]);
      last = now;
      reads++;
      await new Promise((r) => setImmediate(r));
    }
    for (const part of readRequestStats(blocks)) {
      expect(requestCounts(part)).toEqual({ 'kv GET 200': count / 2, 'kv GET 404': count / 2 });
      expect(histogram(part, 'kv').find((s) => s.metricName?.endsWith('_count'))?.value).toBe(
        count,
      );
    }
    expect(reads).toBeGreaterThan(1);
  });
});
