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
import { L1_STAT_HELP, TIER_STATS, type Tier, type TierStats } from '../tier/index.ts';

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

/** Tier statistics exported as hotshield_refresher_<name>_total (help: the tier's TIER_STATS). */
const REFRESHER_METRICS = [
  'fetches',
  'joined',
  'alreadyFresh',
  'l2Batches',
  'l2Errors',
  'negativeStores',
  'writes',
  'writeErrors',
  'queueFull',
  'breakerRejected',
  'breakerOpened',
  'l2Resets',
  'respawns',
  'timeouts',
  'refreshes',
] as const satisfies ReadonlyArray<keyof TierStats['tier']>;

/** Counter statistics exported as hotshield_counter_<suffix>_total. */
const COUNTER_METRICS = {
  flushes: 'counterFlushes',
  duplicates: 'counterDuplicates',
  flush_errors: 'counterFlushErrors',
  reads: 'counterReads',
} as const satisfies Record<string, keyof TierStats['tier']>;

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The process-wide metrics, read from the tier's shared memory at each scrape. */
export function processRegistry(tier: Tier): Registry {
  const registry = new Registry();
  // One snapshot serves every metric of a scrape: stats() sums every thread's line.
  let snapshot: { at: number; stats: TierStats } | undefined;
  const stats = () => {
    const now = performance.now();
    if (snapshot === undefined || now - snapshot.at > SNAPSHOT_MS)
      snapshot = { at: now, stats: tier.stats() };
    return snapshot.stats;
  };
  const l1 = () => stats().l1;
  const t = () => stats().tier;
  for (const name of ['hits', 'staleHits', 'misses', 'evictions'] as const) {
    mirroredCounter(
      registry,
      `hotshield_l1_${snake(name)}_total`,
      L1_STAT_HELP[name],
      () => l1()[name],
    );
  }
  mirroredGauge(registry, 'hotshield_l1_bytes', L1_STAT_HELP.bytesUsed, () => l1().bytesUsed);
  mirroredGauge(registry, 'hotshield_l1_entries', L1_STAT_HELP.entries, () => l1().entries);
  mirroredGauge(
    registry,
    'hotshield_l1_budget_bytes',
    L1_STAT_HELP.budgetBytes,
    () => l1().budgetBytes,
  );
  for (const name of REFRESHER_METRICS) {
    mirroredCounter(
      registry,
      `hotshield_refresher_${snake(name)}_total`,
      TIER_STATS[name],
      () => t()[name],
    );
  }
  mirroredGauge(
    registry,
    'hotshield_counter_unflushed',
    L1_STAT_HELP.counterUnflushed,
    () => l1().counterUnflushed,
  );
  mirroredCounter(
    registry,
    'hotshield_counter_adds_total',
    L1_STAT_HELP.counterAdds,
    () => l1().counterAdds,
  );
  for (const [suffix, name] of Object.entries(COUNTER_METRICS)) {
    mirroredCounter(
      registry,
      `hotshield_counter_${suffix}_total`,
      TIER_STATS[name],
      () => t()[name],
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
