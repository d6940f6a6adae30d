/**
 * wrk as the suite's second load generator (when it is on PATH): a C event loop that
 * needs a fraction of autocannon's CPU for the same requests, so on two cores shared
 * with the server it hides less of the server's own cost. Same LoadSpec, same result
 * shape as fixtures/loadgen.ts; not for `drain` (wrk cannot end without cutting
 * requests in flight), so the counters scenario stays on autocannon.
 *
 * The paths (one fixed path, or the same seeded Zipf trace loadgen.ts draws) and the
 * pipelining depth reach wrk's Lua script through a file; its `done` hook prints one
 * JSON line. wrk's CPU is its children's time as its bash parent sees it once wrk has
 * been reaped (`cutime + cstime` in /proc/<bash>/stat).
 */

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadResult, LoadSpec } from '../fixtures/loadgen.ts';
import { loadTrace } from './zipf.ts';

/** True when `wrk` runs here. */
export function wrkAvailable(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

const SCRIPT = `
local paths, depth, n, i = {}, 1, 0, 0
function init(args)
  depth = tonumber(args[2])
  for line in io.lines(args[1]) do n = n + 1; paths[n] = line end
end
function request()
  local reqs = {}
  for d = 1, depth do
    i = i % n + 1
    reqs[d] = wrk.format("GET", paths[i])
  end
  return table.concat(reqs)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"wrk":true,"requests":%d,"us":%d,"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50":%.1f,"p99":%.1f,"p999":%.1f,"mean":%.1f}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.mean))
end
`;

interface WrkSummary {
  requests: number;
  us: number;
  status: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  p50: number;
  p99: number;
  p999: number;
  mean: number;
}

function pathsOf(path: LoadSpec['path']): string {
  if (typeof path === 'string') return `${path}\n`;
  const { prefix } = path.zipf;
  return `${Array.from(loadTrace(path.zipf), (k) => `${prefix}${k}`).join('\n')}\n`;
}

/** One wrk run against each of `spec.urls` at once; resolves like loadgen.ts's output. */
export async function runWrk(
  spec: LoadSpec,
): Promise<{ results: LoadResult[]; cpuSeconds: number }> {
  if (spec.drain) throw new Error('wrk cannot drain: use autocannon for this scenario');
  if ((spec.method ?? 'GET') !== 'GET') throw new Error('the wrk load generator sends GETs only');
  const dir = mkdtempSync(join(tmpdir(), 'hotshield-wrk-'));
  try {
    const script = join(dir, 'paths.lua');
    const paths = join(dir, 'paths.txt');
    writeFileSync(script, SCRIPT);
    writeFileSync(paths, pathsOf(spec.path));
    const runs = await Promise.all(spec.urls.map((url) => wrkOnce(url, spec, script, paths)));
    return {
      results: runs.map((r) => r.result),
      cpuSeconds: runs.reduce((sum, r) => sum + r.cpuSeconds, 0),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function wrkOnce(
  url: string,
  spec: LoadSpec,
  script: string,
  paths: string,
): Promise<{ result: LoadResult; cpuSeconds: number }> {
  const args = [
    '-t1',
    `-c${spec.connections}`,
    `-d${spec.seconds}s`,
    '--timeout',
    '10s',
    '-s',
    script,
    url,
    '--',
    paths,
    String(spec.pipelining),
  ];
  const ticks = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;
  return new Promise((resolve, reject) => {
    const child = spawn(
      'bash',
      ['-c', `wrk "$@"; awk '{ print "cpu", $16, $17 }' /proc/$$/stat`, 'wrk', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.once('exit', () => {
      const line = out.split('\n').find((l) => l.startsWith('{"wrk"'));
      const cpu = /^cpu (\d+) (\d+)$/m.exec(out);
      if (line === undefined || cpu === null)
        return reject(new Error(`wrk printed no result: ${out.slice(-300)} ${err.slice(-300)}`));
      const w = JSON.parse(line) as WrkSummary;
      const seconds = w.us / 1e6;
      resolve({
        result: {
          url,
          requestsPerSecond: seconds > 0 ? w.requests / seconds : 0,
          requests: w.requests,
          ok: w.requests - w.status,
          latencyMs: {
            p50: Math.round(w.p50 / 100) / 10,
            p99: Math.round(w.p99 / 100) / 10,
            p999: Math.round(w.p999 / 100) / 10,
            mean: w.mean / 1000,
          },
          non2xx: w.status,
          errors: w.connect + w.read + w.write,
          timeouts: w.timeout,
        },
        cpuSeconds: (Number(cpu[1]) + Number(cpu[2])) / ticks,
      });
    });
  });
}
