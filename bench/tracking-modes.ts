/**
 * `npm run bench:tracking`: Redis's two client-tracking modes side by side, for the choice
 * coherence.ts makes (default mode, not BCAST), on a one-master cluster of its own.
 *
 *   default   `CLIENT TRACKING ON REDIRECT <sub> NOLOOP`: Redis remembers the keys each
 *             connection read and announces a change to those only (once per read)
 *   bcast     `… BCAST PREFIX <p> NOLOOP`: no memory of reads; every change of a key
 *             under a prefix is announced to every subscribed process
 *
 * Each of `--readers` readers (a data connection and its subscriber, as one hotshield
 * process has per master) reads its own `--hot` keys out of `--keys` and reads a key
 * again each time it is announced (what the refresher does on the next ask). A writer
 * then changes random keys of the whole keyspace at `--writes` per second and increments
 * 16 counter shards at `--incrs` per second for `--seconds`. Measured, per mode: the
 * invalidations each reader received, its re-reads, the node's CPU (INFO used_cpu_*) and
 * memory over the write phase, and `tracking_total_keys`. BCAST runs twice: prefix ''
 * (every key, the only prefix a cache in front of any application can know) and the
 * application's key prefix (counters excluded), the best case for it.
 *
 *   npm run bench:tracking [-- --readers 4 --keys 10000 --hot 100 --writes 2000 --seconds 5]
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedisCluster } from '../src/dev/redis-cluster.ts';
import { INVALIDATE_CHANNEL } from '../src/refresher/coherence.ts';
import { snapshot } from './lib/cluster-stats.ts';
import { machine } from './lib/machine.ts';
import { formatRatio, markdownTable, progress, writeJson } from './lib/report.ts';

const { values } = parseArgs({
  options: {
    readers: { type: 'string' },
    keys: { type: 'string' },
    hot: { type: 'string' },
    writes: { type: 'string' },
    incrs: { type: 'string' },
    seconds: { type: 'string' },
  },
});
const READERS = Number(values.readers ?? 4);
const KEYS = Number(values.keys ?? 10_000);
const HOT = Number(values.hot ?? 100);
const WRITES = Number(values.writes ?? 2000);
const INCRS = Number(values.incrs ?? 1000);
const SECONDS = Number(values.seconds ?? 5);
const KEY_PREFIX = 'app:';
const keyOf = (i: number) => `${KEY_PREFIX}${i}`;

interface Mode {
  name: string;
  tracking: string[];
}
const MODES: Mode[] = [
  { name: 'default', tracking: [] },
  { name: "bcast, prefix ''", tracking: ['BCAST', 'PREFIX', ''] },
  { name: `bcast, prefix '${KEY_PREFIX}'`, tracking: ['BCAST', 'PREFIX', KEY_PREFIX] },
];

interface Row {
  mode: string;
  invalidationsPerReaderPerSecond: number;
  rereadsPerReaderPerSecond: number;
  redisCpuMsPerSecond: number;
  trackingKeys: number;
  memoryDeltaKiB: number;
}

async function info(node: Redis, section: string, field: string): Promise<number> {
  const text = await node.info(section);
  return Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(text)?.[1] ?? Number.NaN);
}

async function cpuSeconds(port: number): Promise<number> {
  return (await snapshot([port]))[0].cpuSeconds;
}

/** One reader: its pair of connections, its hot keys, what it heard. */
async function reader(port: number, mode: Mode, hot: string[]) {
  const data = new Redis({ port, protocol: 2 });
  const sub = new Redis({ port, protocol: 2 });
  const mine = new Set(hot);
  const heard = { invalidations: 0, rereads: 0 };
  const id = await sub.client('ID');
  await sub.subscribe(INVALIDATE_CHANNEL);
  sub.on('messageBuffer', (_channel: Buffer, message: unknown) => {
    const keys = Array.isArray(message) ? message : [message];
    for (const k of keys) {
      heard.invalidations++;
      const key = String(k);
      // hotshield drops the entry; the next ask of a key it holds reads it again.
      if (mine.has(key)) {
        heard.rereads++;
        void data.get(key);
      }
    }
  });
  await data.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), ...mode.tracking, 'NOLOOP');
  await Promise.all(hot.map((k) => data.get(k)));
  return {
    heard,
    close: () => {
      data.disconnect();
      sub.disconnect();
    },
  };
}

async function runMode(port: number, mode: Mode): Promise<Row> {
  const admin = new Redis({ port });
  await admin.flushall();
  const value = 'v'.repeat(100);
  for (let i = 0; i < KEYS; i += 500) {
    const p = admin.pipeline();
    for (let j = i; j < Math.min(KEYS, i + 500); j++) p.set(keyOf(j), value);
    await p.exec();
  }
  const readers = await Promise.all(
    Array.from({ length: READERS }, (_, r) =>
      reader(
        port,
        mode,
        Array.from({ length: HOT }, (_, i) => keyOf((r * HOT + i * 97) % KEYS)),
      ),
    ),
  );
  const writer = new Redis({ port });
  const memoryBefore = await info(admin, 'memory', 'used_memory');
  const trackingKeys = await info(admin, 'stats', 'tracking_total_keys');
  const cpuBefore = await cpuSeconds(port);
  const started = performance.now();
  const tickMs = 20;
  for (let tick = 0; performance.now() - started < SECONDS * 1000; tick++) {
    const p = writer.pipeline();
    for (let i = 0; i < (WRITES * tickMs) / 1000; i++)
      p.set(keyOf(Math.floor(Math.random() * KEYS)), value);
    for (let i = 0; i < (INCRS * tickMs) / 1000; i++) p.incrby(`counter#${i % 16}`, 1);
    await p.exec();
    await sleep(Math.max(0, started + (tick + 1) * tickMs - performance.now()));
  }
  await sleep(200);
  const elapsed = (performance.now() - started) / 1000;
  const cpu = (await cpuSeconds(port)) - cpuBefore;
  const memoryDelta = (await info(admin, 'memory', 'used_memory')) - memoryBefore;
  const sum = (f: (h: { invalidations: number; rereads: number }) => number) =>
    readers.reduce((s, r) => s + f(r.heard), 0);
  for (const r of readers) r.close();
  writer.disconnect();
  admin.disconnect();
  return {
    mode: mode.name,
    invalidationsPerReaderPerSecond: sum((h) => h.invalidations) / READERS / elapsed,
    rereadsPerReaderPerSecond: sum((h) => h.rereads) / READERS / elapsed,
    redisCpuMsPerSecond: (cpu * 1000) / elapsed,
    trackingKeys,
    memoryDeltaKiB: memoryDelta / 1024,
  };
}

const cluster = await startRedisCluster({ masters: 1 });
try {
  const port = cluster.nodes[0].port;
  const rows: Row[] = [];
  for (const mode of MODES) {
    const row = await runMode(port, mode);
    progress(
      `${mode.name}: ${row.invalidationsPerReaderPerSecond.toFixed(0)} invalidations/s per reader, Redis CPU ${row.redisCpuMsPerSecond.toFixed(0)} ms/s`,
    );
    rows.push(row);
  }
  const base = rows[0];
  const m = machine();
  console.log(
    `## Client tracking: default mode against BCAST (${m.node}, ${m.cpuModel}, ${m.cores} cores, commit ${m.gitCommit}, ${new Date().toISOString().slice(0, 10)})\n\n` +
      `${READERS} readers × ${HOT} hot keys of ${KEYS}; ${WRITES} writes/s to random keys and ${INCRS} counter increments/s for ${SECONDS} s; one master.\n\n` +
      markdownTable(
        [
          'mode',
          'invalidations/s per reader',
          're-reads/s per reader',
          'Redis CPU ms/s',
          'CPU vs default',
          'tracking_total_keys',
        ],
        rows.map((r) => [
          r.mode,
          r.invalidationsPerReaderPerSecond.toFixed(0),
          r.rereadsPerReaderPerSecond.toFixed(1),
          r.redisCpuMsPerSecond.toFixed(0),
          formatRatio(r.redisCpuMsPerSecond / base.redisCpuMsPerSecond),
          String(r.trackingKeys),
        ]),
      ),
  );
  writeJson(
    `bench/results/${new Date().toISOString().slice(0, 10)}-tracking-modes-${READERS}-readers.json`,
    {
      settings: { READERS, KEYS, HOT, WRITES, INCRS, SECONDS },
      rows,
    },
  );
} finally {
  await cluster.stop();
}
