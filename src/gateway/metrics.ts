/**
 * Prometheus metrics for a gateway process, aggregated over its threads.
 *
 * Each HTTP thread counts its own requests in its own prom-client registry (no shared
 * state on the request path). The process's main thread owns the tier-wide metrics,
 * read from shared memory when scraped (L1 and refresher counters are process-wide
 * already). A scrape asks every thread for its registry as JSON and merges them with
 * prom-client's AggregatorRegistry — the same merge it does for node:cluster workers.
 */

import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Tier } from '../tier/index.ts';

export class ThreadMetrics {
  readonly registry = new Registry();
  readonly #requests = new Counter({
    name: 'hotshield_http_requests_total',
    help: 'HTTP requests answered, by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly #latency = new Histogram({
    name: 'hotshield_http_request_duration_seconds',
    help: 'Time from request to response, by route',
    labelNames: ['route'] as const,
    buckets: [
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
    ],
    registers: [this.registry],
  });

  /** Labelled children, looked up once: label hashing is most of prom-client's cost. */
  readonly #requestChildren = new Map<string, { inc(): void }>();
  readonly #latencyChildren = new Map<string, { observe(v: number): void }>();

  observe(route: string, method: string, status: number, seconds: number): void {
    const id = `${route} ${method} ${status}`;
    let counter = this.#requestChildren.get(id);
    if (counter === undefined) {
      counter = this.#requests.labels(route, method, String(status));
      this.#requestChildren.set(id, counter);
    }
    counter.inc();
    let histogram = this.#latencyChildren.get(route);
    if (histogram === undefined) {
      histogram = this.#latency.labels(route);
      this.#latencyChildren.set(route, histogram);
    }
    histogram.observe(seconds);
  }
}

/** How long one stats snapshot is reused: a scrape's collect calls come within it. */
const SNAPSHOT_MS = 100;

/** A counter whose value is read from elsewhere at scrape time. */
function mirroredCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

function mirroredGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** The process-wide metrics, read from the tier's shared memory at each scrape. */
export function processRegistry(tier: Tier): Registry {
  const registry = new Registry();
  // One snapshot serves every metric of a scrape: stats() sums every thread's line.
  let snapshot: { at: number; stats: ReturnType<Tier['stats']> } | undefined;
  const stats = () => {
    const now = performance.now();
    if (snapshot === undefined || now - snapshot.at > SNAPSHOT_MS)
      snapshot = { at: now, stats: tier.stats() };
    return snapshot.stats;
  };
  const l1 = () => stats().l1;
  const t = () => stats().tier;
  mirroredCounter(
    registry,
    'hotshield_l1_hits_total',
    'L1 reads that found a fresh value',
    () => l1().hits,
  );
  mirroredCounter(
    registry,
    'hotshield_l1_stale_hits_total',
    'L1 reads that found a stale value',
    () => l1().staleHits,
  );
  mirroredCounter(
    registry,
    'hotshield_l1_misses_total',
    'L1 reads that found nothing',
    () => l1().misses,
  );
  mirroredCounter(
    registry,
    'hotshield_l1_evictions_total',
    'L1 entries evicted',
    () => l1().evictions,
  );
  mirroredGauge(registry, 'hotshield_l1_bytes', 'Bytes of L1 entries', () => l1().bytesUsed);
  mirroredGauge(registry, 'hotshield_l1_entries', 'Entries in L1', () => l1().entries);
  mirroredGauge(registry, 'hotshield_l1_budget_bytes', 'L1 byte budget', () => l1().budgetBytes);
  const refresher: Array<[keyof ReturnType<typeof t>, string]> = [
    ['fetches', 'Redis reads started by the refresher (one per key per flight)'],
    ['joined', 'Asks that joined a fetch already in flight (coalesced)'],
    ['alreadyFresh', 'Asks answered from L1 because another ask had just refreshed the key'],
    ['l2Batches', 'Read batches sent to Redis (one pipeline per master each)'],
    ['l2Errors', 'Keys whose Redis read failed'],
    ['negativeStores', 'Absent keys cached as negative entries'],
    ['writes', 'Writes through to Redis'],
    ['writeErrors', 'Writes to Redis that failed'],
    ['queueFull', 'Asks refused because maxInFlight keys were being fetched'],
    ['breakerRejected', 'Redis calls refused by an open circuit'],
    ['breakerOpened', 'Times a Redis node circuit opened'],
    ['l2Resets', 'Redis connections reset: a node that stopped answering, a reply out of step'],
    ['respawns', 'Refresher thread restarts'],
    ['timeouts', 'Callers that gave up waiting (requestTimeout)'],
    ['refreshes', 'Background refreshes asked for by stale reads'],
  ];
  for (const [name, help] of refresher) {
    const snake = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    mirroredCounter(registry, `hotshield_refresher_${snake}_total`, help, () => t()[name]);
  }
  const counters: Array<[string, keyof ReturnType<typeof t> | 'counterAdds', string]> = [
    ['adds', 'counterAdds', 'Counter increments accepted (in shared memory)'],
    ['flushes', 'counterFlushes', 'Counter flushes sent to Redis, re-sends included'],
    ['duplicates', 'counterDuplicates', 'Counter flushes Redis had already applied (re-sends)'],
    ['flush_errors', 'counterFlushErrors', 'Counter flushes that failed (kept and re-sent)'],
    ['reads', 'counterReads', 'Counter totals read from Redis (all shards of one counter)'],
  ];
  mirroredGauge(
    registry,
    'hotshield_counter_unflushed',
    'Counter increments accepted and not yet acknowledged by Redis (lost if the process is killed)',
    () => l1().counterUnflushed,
  );
  for (const [snake, name, help] of counters) {
    mirroredCounter(registry, `hotshield_counter_${snake}_total`, help, () =>
      name === 'counterAdds' ? l1().counterAdds : t()[name],
    );
  }
  mirroredGauge(
    registry,
    'hotshield_redis_ready',
    '1 when the refresher is connected to Redis',
    () => (stats().refresher.state === 'l2Ready' ? 1 : 0),
  );
  return registry;
}

/** Merge registries exported as JSON (one per thread) into Prometheus text. */
export async function mergeMetrics(
  parts: object[][],
): Promise<{ text: string; contentType: string }> {
  const merged = AggregatorRegistry.aggregate(parts);
  return { text: await merged.metrics(), contentType: merged.contentType };
}
