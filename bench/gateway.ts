/**
 * Hot-key GET throughput through the gateway against the ceiling (a bare Node HTTP
 * server answering a constant of the same size with the same thread count), measured
 * with autocannon in one run on one machine. The full suite (l2-only, classic two-tier,
 * scenarios) is `npm run bench`; this is the gateway's own smoke figure.
 *
 *   npm run bench:gateway [-- --threads 1 --seconds 10 --connections 100 --bytes 64]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Cluster } from 'ioredis';
import { startRedisCluster } from '../src/dev/redis-cluster.ts';
import { machine } from './lib/machine.ts';
import { formatRate, formatRatio, markdownTable, progress, writeJson } from './lib/report.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '100' },
    bytes: { type: 'string', default: '64' },
  },
});
const threads = Number(values.threads);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const bytes = Number(values.bytes);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, r));
  const a = s.address();
  await new Promise((r) => s.close(r));
  return typeof a === 'object' && a !== null ? a.port : 0;
}

/** Start a server process in its own group; resolve once `ready` matches a stdout line. */
async function serve(args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (c: Buffer) => {
      seen += c.toString();
      if (ready.test(seen)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${seen}`)));
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = once(child, 'exit');
  process.kill(-child.pid, 'SIGTERM');
  await exited;
}

interface Run {
  contender: string;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

async function load(contender: string, url: string): Promise<Run> {
  progress(`${contender}: ${connections} connections for ${seconds} s → ${url}`);
  const result = await autocannon({ url, connections, duration: seconds });
  return {
    contender,
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

const cluster = await startRedisCluster({ masters: 3 });
const runs: Run[] = [];
try {
  const redis = new Cluster(cluster.seeds.split(','));
  await redis.set('bench:hot', Buffer.alloc(bytes, 'v'));
  redis.disconnect();
  const ceilingPort = await freePort();
  const ceiling = await serve(
    [
      fileURLToPath(new URL('./fixtures/ceiling-server.ts', import.meta.url)),
      String(ceilingPort),
      String(threads),
      String(bytes),
    ],
    /listening/,
  );
  try {
    runs.push(await load('ceiling', `http://127.0.0.1:${ceilingPort}/`));
  } finally {
    await stop(ceiling);
  }
  const gatewayPort = await freePort();
  const gateway = await serve(
    [
      fileURLToPath(new URL('../src/cli/main.ts', import.meta.url)),
      '--redis',
      cluster.seeds,
      '--port',
      String(gatewayPort),
      '--threads',
      String(threads),
      '--log-level',
      'info',
    ],
    /gateway process listening/,
  );
  try {
    runs.push(await load('hotshield', `http://127.0.0.1:${gatewayPort}/v1/kv/bench:hot`));
  } finally {
    await stop(gateway);
  }
} finally {
  await cluster.stop();
}

const ceilingRate = runs[0].requestsPerSecond;
const rows = runs.map((r) => [
  r.contender,
  formatRate(r.requestsPerSecond),
  formatRatio(r.requestsPerSecond / ceilingRate),
  `${r.p50Ms} / ${r.p99Ms} ms`,
  String(r.non2xx + r.errors),
]);
const m = machine();
console.log(
  `\nHot-key GET, ${bytes} B value, ${threads} HTTP thread(s), ${connections} connections, ${seconds} s each; ` +
    `autocannon runs in this process on the same ${m.cores} cores (Node ${m.node}, ${m.cpuModel}, commit ${m.gitCommit.slice(0, 7)}).\n`,
);
console.log(
  markdownTable(
    ['contender', 'requests/s', 'vs ceiling', 'latency p50 / p99', 'non-2xx + errors'],
    rows,
  ),
);
writeJson(
  fileURLToPath(
    new URL(`./results/${m.date.slice(0, 10)}-gateway-hotkey-${threads}t.json`, import.meta.url),
  ),
  { machine: m, threads, seconds, connections, bytes, runs },
);
