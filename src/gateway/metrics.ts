/**
 * Prometheus metrics for a gateway process, aggregated over its threads.
 *
 * Each HTTP thread counts its own requests in its own shared-memory block
 * (request-stats.ts: no prom-client call on the request path). The process's main thread
 * owns the tier-wide metrics, read from shared memory when scraped (L1 and refresher
 * counters are process-wide already). A scrape reads every thread's block and the
 * refresher's registry as prom-client JSON and merges them with AggregatorRegistry — the
 * same merge it does for node:cluster workers.
 */

import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import {
  type HotKeysReport,
  L1_STAT_HELP,
  TIER_STATS,
  type Tier,
  type TierStats,
} from '../tier/index.ts';

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
  'refreshesAhead',
  'heatErrors',
  'invalidations',
  'invalidatedEntries',
  'invalidationFlushes',
  'trackingLost',
  'trackingRefused',
] as const satisfies ReadonlyArray<keyof TierStats['tier']>;

/** Counter statistics exported as hotshield_counter_<suffix>_total. */
const COUNTER_METRICS = {
  flushes: 'counterFlushes',
  duplicates: 'counterDuplicates',
  flush_errors: 'counterFlushErrors',
  reads: 'counterReads',
} as const satisfies Record<string, keyof TierStats['tier']>;

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** How many hot keys `--hot-key-metrics` exports (keys in labels are unbounded otherwise). */
const HOT_KEY_METRICS = 10;

/**
 * Per master, the reads and misses a second this process answered (the hot-key table's
 * window); with `hotKeyMetrics`, the hottest keys' reads a second too. Off with hotKeys off.
 */
function heatGauges(registry: Registry, tier: Tier, hotKeyMetrics: boolean): void {
  let report: { at: number; value: Promise<HotKeysReport> } | undefined;
  const read = () => {
    const now = performance.now();
    if (report === undefined || now - report.at > SNAPSHOT_MS)
      report = { at: now, value: tier.hotKeys({ limit: HOT_KEY_METRICS }) };
    return report.value;
  };
  const perNode = (name: string, help: string, field: 'readsPerSecond' | 'missesPerSecond') =>
    new Gauge({
      name,
      help,
      labelNames: ['node'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const n of (await read()).nodes) this.set({ node: n.node }, n[field]);
      },
    });
  perNode(
    'hotshield_node_reads_per_second',
    'Reads a second this process answered for keys of each Redis master (hits and misses, over the hot-key window)',
    'readsPerSecond',
  );
  perNode(
    'hotshield_node_misses_per_second',
    'Reads a second of keys of each Redis master that L1 could not answer',
    'missesPerSecond',
  );
  if (!hotKeyMetrics) return;
  new Gauge({
    name: 'hotshield_hot_key_reads_per_second',
    help: `Reads a second of the ${HOT_KEY_METRICS} hottest keys (--hot-key-metrics: keys are labels)`,
    labelNames: ['key', 'node'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const k of (await read()).keys)
        this.set({ key: k.key, node: k.node ?? '' }, k.readsPerSecond);
    },
  });
}

/** The process-wide metrics, read from the tier's shared memory at each scrape. */
export function processRegistry(
  tier: Tier,
  options: { hotKeyMetrics: boolean } = { hotKeyMetrics: false },
): Registry {
  const registry = new Registry();
  if (tier.handle.config.hotKeys) heatGauges(registry, tier, options.hotKeyMetrics);
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
  mirroredGauge(
    registry,
    'hotshield_coherence_tracked_masters',
    'Redis masters that track the reads of this process (coherence); 0 when it is off',
    () => stats().refresher.coherence.tracked,
  );
  mirroredGauge(
    registry,
    'hotshield_coherence_masters',
    'Redis masters the refresher reads from, tracked or not (0 when coherence is off)',
    () => stats().refresher.coherence.masters,
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
