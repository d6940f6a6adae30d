/**
 * What a result was measured on and with: recorded next to every number, because a
 * micro-benchmark figure means nothing without its Node version, CPU and commit.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';

export interface Machine {
  readonly date: string;
  readonly node: string;
  readonly v8: string;
  readonly cpuModel: string;
  readonly cores: number;
  readonly availableParallelism: number;
  readonly totalMemoryGiB: number;
  readonly os: string;
  readonly loadAverageAtStart: number[];
  readonly gitCommit: string;
  /** Files under src/ that differ from the commit: the run measured those edits too. */
  readonly srcModified: string[];
  readonly lruCacheVersion: string;
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

/** The installed version of a dependency (its package.json may not be exported). */
function packageVersion(name: string): string {
  try {
    let dir = dirname(createRequire(import.meta.url).resolve(name));
    for (;;) {
      const file = join(dir, 'package.json');
      if (existsSync(file)) {
        const pkg = JSON.parse(readFileSync(file, 'utf8'));
        if (pkg.name === name) return pkg.version;
      }
      const up = dirname(dir);
      if (up === dir) return 'unknown';
      dir = up;
    }
  } catch {
    return 'unknown';
  }
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    gitCommit: git(['rev-parse', '--short', 'HEAD'])?.trim() ?? 'unknown',
    srcModified: (git(['status', '--porcelain', '--', 'src']) ?? '')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.slice(3)),
    lruCacheVersion: packageVersion('lru-cache'),
  };
}

export interface CpuShare {
  /** Average cores busy with anything other than this process (from /proc/stat). */
  readonly otherCores: number;
  /** Average cores' worth of time the hypervisor gave to other guests. */
  readonly stealCores: number;
}

interface CpuSample {
  readonly at: number;
  readonly busySec: number;
  readonly stealSec: number;
  readonly ownSec: number;
}

function sampleCpu(): CpuSample | undefined {
  let line: string;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  } catch {
    return undefined;
  }
  // cpu user nice system idle iowait irq softirq steal …, in USER_HZ (100 per second).
  const t = line.trim().split(/\s+/).slice(1).map(Number);
  const own = process.cpuUsage(); // every thread of this process, workers included
  return {
    at: performance.now(),
    busySec: (t[0] + t[1] + t[2] + t[5] + t[6]) / 100,
    stealSec: (t[7] ?? 0) / 100,
    ownSec: (own.user + own.system) / 1e6,
  };
}

/**
 * Measures how much CPU other processes took while a section ran: on a 2-core box a
 * neighbour's test run halves the machine, and this is how a result shows it.
 * Undefined where /proc/stat does not exist.
 */
export function cpuMeter(): () => CpuShare | undefined {
  const a = sampleCpu();
  return () => {
    const b = sampleCpu();
    if (a === undefined || b === undefined) return undefined;
    const wall = (b.at - a.at) / 1e3;
    const round = (x: number) => Math.round(Math.max(0, x) * 100) / 100;
    return {
      otherCores: round((b.busySec - a.busySec - (b.ownSec - a.ownSec)) / wall),
      stealCores: round((b.stealSec - a.stealSec) / wall),
    };
  };
}
