/**
 * One HTTP measurement: Redis snapshots before and after, the contender's CPU and RSS,
 * and the load generator run as its own process (bench/fixtures/loadgen.ts), with a
 * live progress line while it runs.
 */

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadResult, LoadSpec } from '../fixtures/loadgen.ts';
import { delta, type NodeDelta, snapshot } from './cluster-stats.ts';
import { treeCpuSeconds, treeRssBytes } from './proc.ts';
import { runWrk } from './wrk.ts';

export interface Measurement {
  label: string;
  seconds: number;
  requestsPerSecond: number;
  requests: number;
  /** Responses with a 2xx status. */
  ok: number;
  /** With `spec.drain`: requests sent that got no answer (an error or timeout cut them). */
  unanswered: number;
  latencyMs: { p50: number; p99: number; p999: number };
  non2xx: number;
  errors: number;
  /** Per master: GETs, writes, all commands, CPU seconds during the run. */
  redis: NodeDelta[];
  /** GETs on the master that owns the hot key (tsunami), per second. */
  hotNodeGetsPerSecond?: number;
  /** 1 − L2 GETs / requests: the share of requests answered without Redis. */
  l1HitRatio: number;
  serverCpuSeconds: number;
  /** The contender's CPU per request answered, in µs. */
  serverCpuPerRequestUs: number;
  loadgenCpuSeconds: number;
  serverRssBytes: number;
}

const LOADGEN = fileURLToPath(new URL('../fixtures/loadgen.ts', import.meta.url));

function runLoadgen(
  spec: LoadSpec,
  onTick: (requests: number) => void,
): Promise<{ results: LoadResult[]; cpuSeconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOADGEN, JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      const text = c.toString();
      for (const m of text.matchAll(/^tick (\d+)$/gm)) onTick(Number(m[1]));
      err += text.replace(/^tick \d+\n/gm, '');
    });
    child.once('exit', (code) => {
      if (code !== 0)
        return reject(new Error(`load generator exited with ${code}: ${err.slice(-500)}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? ''));
      } catch {
        reject(
          new Error(`load generator printed no result: ${out.slice(-300)} ${err.slice(-300)}`),
        );
      }
    });
  });
}

/**
 * Run the load generator `spec` names and return what it reports; `onTick` hears
 * autocannon's requests of each second (wrk reports only at its end).
 */
export function runLoad(
  spec: LoadSpec,
  onTick: (requests: number) => void = () => {},
): Promise<{ results: LoadResult[]; cpuSeconds: number }> {
  return spec.tool === 'wrk' ? runWrk(spec) : runLoadgen(spec, onTick);
}

export async function measure(options: {
  label: string;
  serverPids: number[];
  redisPorts: number[];
  spec: LoadSpec;
  hotNodePort?: number;
  progress: (line: string) => void;
}): Promise<Measurement> {
  const { label, spec } = options;
  const before = await snapshot(options.redisPorts);
  const cpuBefore = options.serverPids.reduce((s, pid) => s + treeCpuSeconds(pid), 0);
  const started = performance.now();
  const load = await runLoad(spec, (n) =>
    options.progress(
      `${label}: ${((performance.now() - started) / 1000).toFixed(0)} s, ${n} req/s`,
    ),
  );
  const serverCpuSeconds =
    options.serverPids.reduce((s, pid) => s + treeCpuSeconds(pid), 0) - cpuBefore;
  const serverRssBytes = options.serverPids.reduce((s, pid) => s + treeRssBytes(pid), 0);
  const redis = delta(before, await snapshot(options.redisPorts));
  const requests = load.results.reduce((s, r) => s + r.requests, 0);
  const gets = redis.reduce((s, n) => s + n.gets, 0);
  const hot = redis.find((n) => n.port === options.hotNodePort);
  const worst = (pick: (r: LoadResult) => number) => Math.max(...load.results.map(pick));
  return {
    label,
    seconds: spec.seconds,
    requestsPerSecond: load.results.reduce((s, r) => s + r.requestsPerSecond, 0),
    requests,
    ok: load.results.reduce((s, r) => s + r.ok, 0),
    unanswered: load.results.reduce((s, r) => s + (r.sent ?? r.requests) - r.requests, 0),
    latencyMs: {
      p50: worst((r) => r.latencyMs.p50),
      p99: worst((r) => r.latencyMs.p99),
      p999: worst((r) => r.latencyMs.p999),
    },
    non2xx: load.results.reduce((s, r) => s + r.non2xx, 0),
    errors: load.results.reduce((s, r) => s + r.errors + r.timeouts, 0),
    redis,
    hotNodeGetsPerSecond: hot === undefined ? undefined : hot.gets / spec.seconds,
    l1HitRatio: requests === 0 ? 0 : Math.max(0, 1 - gets / requests),
    serverCpuSeconds,
    serverCpuPerRequestUs: requests === 0 ? 0 : (serverCpuSeconds / requests) * 1e6,
    loadgenCpuSeconds: load.cpuSeconds,
    serverRssBytes,
  };
}
