/**
 * `npm run soak -- --minutes 10`: the gateway on a 3-master + 3-replica Redis Cluster
 * under steady Zipf load with counter increments, and one fault a minute (a master
 * killed, a master paused, a planned failover, the gateway process killed, in turn).
 * Reports per minute: requests, statuses, errors by kind, p50/p99, cache hits and the
 * gateway's RSS; the faults with their recovery times; and the counter check (Jepsen's:
 * acknowledged ≤ read ≤ attempted). Not part of CI: it runs for minutes.
 *
 * Flags: --minutes (10), --connections (32), --keys (10000), --seed (1).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Cluster } from 'ioredis';
import { startRedisCluster } from '../src/dev/redis-cluster.ts';
import { startContender } from './lib/contenders.ts';
import { counterTotal } from './lib/counter-total.ts';
import { makeKeys } from './lib/keys.ts';
import { treeRssBytes } from './lib/proc.ts';
import { formatBytes, formatRate, markdownTable, progress, writeJson } from './lib/report.ts';
import { type FaultRecord, SoakFaults } from './lib/soak-faults.ts';
import { type MinuteStats, percentile, SoakLoad } from './lib/soak-load.ts';

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    keys: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
  },
});
const MINUTES = Number(flags.minutes);
const CONNECTIONS = Number(flags.connections);
const KEYS = Number(flags.keys);
const SEED = Number(flags.seed);
for (const [name, v] of Object.entries({ MINUTES, CONNECTIONS, KEYS, SEED })) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name.toLowerCase()} must be positive`);
}
const VALUE_BYTES = 256;
const COUNTER = 'soak:likes';
const SOFT_TTL_MS = 3000;
/** Into each minute, when its fault starts: the first half-minute is the steady state. */
const FAULT_AT_S = 30;

async function seed(seeds: string, keys: readonly string[]): Promise<void> {
  const redis = new Cluster(seeds.split(','));
  const value = Buffer.alloc(VALUE_BYTES, 'v');
  for (let i = 0; i < keys.length; i += 500)
    await Promise.all(keys.slice(i, i + 500).map((k) => redis.set(k, value)));
  redis.disconnect();
}

function minuteRow(m: MinuteStats, rss: number): string[] {
  const sorted = [...m.latenciesMs].sort((a, b) => a - b);
  const ok = Object.entries(m.statuses)
    .filter(([s]) => s.startsWith('2'))
    .reduce((n, [, c]) => n + c, 0);
  const errors = Object.entries(m.errors)
    .sort((a, b) => b[1] - a[1])
    .map(([k, c]) => `${k} ${c}`)
    .join(', ');
  const hits = (m.cache.HIT ?? 0) + (m.cache.STALE ?? 0);
  const reads = hits + (m.cache.MISS ?? 0);
  return [
    String(m.minute + 1),
    String(m.requests),
    formatRate(m.requests / 60),
    String(m.requests - ok),
    errors || '—',
    `${percentile(sorted, 0.5).toFixed(1)} / ${percentile(sorted, 0.99).toFixed(1)}`,
    reads === 0 ? '—' : `${((hits / reads) * 100).toFixed(1)} %`,
    formatBytes(rss),
  ];
}

async function main(): Promise<void> {
  progress(`soak: ${MINUTES} min, ${CONNECTIONS} connections, ${KEYS} keys`);
  const cluster = await startRedisCluster({
    masters: 3,
    replicasPerMaster: 1,
    nodeTimeoutMs: 1000,
  });
  try {
    const keys = makeKeys(KEYS, SEED);
    await seed(cluster.seeds, keys);
    const gateway = await startContender('hotshield', {
      seeds: cluster.seeds,
      threads: 2,
      softTtlMs: SOFT_TTL_MS,
      bodyBytes: VALUE_BYTES,
      l1Bytes: 64 * 2 ** 20,
      flushIntervalMs: 100,
    });
    const load = new SoakLoad({
      baseUrl: `http://127.0.0.1:${gateway.port}`,
      keys,
      connections: CONNECTIONS,
      counter: COUNTER,
      incrShare: 0.1,
      seed: SEED,
      timeoutMs: 5000,
    });
    const faults = new SoakFaults(cluster, gateway.pid, gateway.url('/readyz'));
    const rssPerMinute: number[] = [];
    const faultLog: FaultRecord[] = [];
    const started = performance.now();
    const elapsedS = () => (performance.now() - started) / 1000;
    load.start();
    const sampler = setInterval(() => {
      const minute = Math.floor(elapsedS() / 60);
      rssPerMinute[minute] = Math.max(rssPerMinute[minute] ?? 0, treeRssBytes(gateway.pid));
      const m = load.current();
      progress(
        `soak ${elapsedS().toFixed(0)} s: minute ${minute + 1}, ${m.requests} requests, errors ${JSON.stringify(m.errors)}`,
      );
    }, 5000);
    for (let minute = 0; minute < MINUTES; minute++) {
      const faultAt = minute * 60 + FAULT_AT_S;
      if (elapsedS() < faultAt) await sleep((faultAt - elapsedS()) * 1000);
      if (elapsedS() >= MINUTES * 60) break;
      const record = await faults.next();
      faultLog.push(record);
      progress(`soak fault: ${JSON.stringify(record)}`);
    }
    if (elapsedS() < MINUTES * 60) await sleep((MINUTES * 60 - elapsedS()) * 1000);
    const minutes = await load.stop();
    clearInterval(sampler);
    // SIGTERM: the gateway flushes what it holds before it exits.
    await gateway.stop();
    const redis = new Cluster(cluster.seeds.split(','));
    await new Promise((resolve) => redis.once('ready', resolve));
    const read = await counterTotal(redis, COUNTER);
    redis.disconnect();
    const { attempted, accepted, acknowledged } = load.tally;
    const verdict =
      BigInt(acknowledged) <= read && read <= BigInt(attempted)
        ? 'acknowledged ≤ read ≤ attempted: holds'
        : 'acknowledged ≤ read ≤ attempted: VIOLATED';
    const report = [
      `## hotshield soak: ${MINUTES} min, ${CONNECTIONS} connections, Zipf(0.99) over ${KEYS} keys of ${VALUE_BYTES} B, 10 % counter increments (half sync=1); 3 masters + 3 replicas, cluster-node-timeout 1 s`,
      '',
      markdownTable(
        [
          'minute',
          'requests',
          'req/s',
          'non-2xx',
          'errors by kind',
          'p50 / p99 ms',
          'cache hits',
          'gateway RSS (max)',
        ],
        // The load stops a moment after the last minute: that tail is left out.
        minutes
          .filter((m) => m !== undefined && m.minute < MINUTES)
          .map((m) => minuteRow(m, rssPerMinute[m.minute] ?? 0)),
      ),
      '',
      markdownTable(
        ['at (s)', 'fault', 'what', 'whole again after (s)'],
        faultLog.map((f) => [
          String(f.at),
          f.name,
          f.detail,
          f.recoveredAfterS?.toFixed(1) ?? 'not within the wait',
        ]),
      ),
      '',
      `Counter ${COUNTER}: attempted ${attempted}, accepted 202 ${accepted}, acknowledged 200 (sync=1) ${acknowledged}; read from Redis after a graceful stop: ${read}. ${verdict}. Answered 2xx minus read: ${BigInt(accepted + acknowledged) - read} (what killed gateway processes held unflushed, less any increment whose answer was lost but which was applied).`,
    ].join('\n');
    process.stdout.write(`${report}\n`);
    const date = new Date().toISOString().slice(0, 10);
    writeJson(new URL(`results/${date}-soak.json`, import.meta.url).pathname, {
      minutes: minutes.filter(Boolean).map((m) => ({ ...m, latenciesMs: undefined })),
      rssPerMinute,
      faults: faultLog,
      counter: { attempted, accepted, acknowledged, read: read.toString(), verdict },
      report,
    });
  } finally {
    await cluster.stop();
  }
}

await main();
