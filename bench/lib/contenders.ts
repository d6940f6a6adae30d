/**
 * The contenders, each started as its own process group on a free port with the same
 * thread/process budget, and stopped with SIGTERM to the group (awaited: the gateway
 * flushes its counters before it exits):
 *
 *   ceiling      bare Node HTTP server answering a constant body of the value's size
 *   l2-only      one Redis GET per request (ioredis Cluster, auto-pipelining)
 *   classic      node:cluster processes, each with its own lru-cache in front of Redis
 *   hotshield    the gateway: one process, T HTTP threads over one shared L1
 *   direct-incr  one Redis INCRBY per counter increment (the counters scenario only)
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The hot-key scenarios' contenders: each serves `GET /v1/kv/<key>`. */
export const CONTENDERS = ['ceiling', 'l2-only', 'classic', 'hotshield'] as const;
/** The counters scenario's contenders: each serves `POST /v1/counters/:name/incr`. */
export const COUNTER_CONTENDERS = ['direct-incr', 'hotshield'] as const;
export const ALL_CONTENDERS = [...new Set([...CONTENDERS, ...COUNTER_CONTENDERS])];
export type ContenderName = (typeof ALL_CONTENDERS)[number];

export interface ContenderOptions {
  seeds: string;
  /** HTTP threads (ceiling, l2-only, hotshield) or processes (classic). */
  threads: number;
  softTtlMs: number;
  /** Value size, for the ceiling's constant body. */
  bodyBytes: number;
  /** L1 bytes in total (hotshield: its one L1; classic: split over its processes). */
  l1Bytes: number;
  /** hotshield's counter flush interval; unset: the gateway's default. */
  flushIntervalMs?: number;
  /** More flags for the hotshield gateway (e.g. `--coherence off`). */
  extraArgs?: readonly string[];
}

export interface Running {
  name: ContenderName;
  pid: number;
  port: number;
  url(path: string): string;
  stop(): Promise<void>;
}

const file = (relative: string) => fileURLToPath(new URL(relative, import.meta.url));

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, r));
  const a = s.address();
  await new Promise((r) => s.close(r));
  return typeof a === 'object' && a !== null ? a.port : 0;
}

function argsFor(name: ContenderName, port: number, o: ContenderOptions): string[] {
  switch (name) {
    case 'ceiling':
      return [
        file('../fixtures/ceiling-server.ts'),
        String(port),
        String(o.threads),
        String(o.bodyBytes),
      ];
    case 'l2-only':
      return [file('../fixtures/l2-only-server.ts'), String(port), o.seeds, String(o.threads)];
    case 'classic':
      return [
        file('../fixtures/classic-server.ts'),
        String(port),
        o.seeds,
        String(o.threads),
        String(o.softTtlMs),
        String(o.l1Bytes),
      ];
    case 'hotshield':
      return [
        file('../../src/cli/main.ts'),
        '--redis',
        o.seeds,
        '--port',
        String(port),
        '--threads',
        String(o.threads),
        '--soft-ttl',
        `${o.softTtlMs}ms`,
        '--l1-bytes',
        String(o.l1Bytes),
        '--max-value-bytes',
        '64kb',
        '--log-level',
        'info',
        ...(o.flushIntervalMs === undefined ? [] : ['--flush-interval', `${o.flushIntervalMs}ms`]),
        ...(o.extraArgs ?? []),
      ];
    case 'direct-incr':
      return [file('../fixtures/incr-server.ts'), String(port), o.seeds, String(o.threads)];
  }
}

const READY: Record<ContenderName, RegExp> = {
  ceiling: /listening/,
  'l2-only': /listening/,
  classic: /listening/,
  hotshield: /gateway process listening/,
  'direct-incr': /listening/,
};

export async function startContender(name: ContenderName, o: ContenderOptions): Promise<Running> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, argsFor(name, port, o), {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start: ${seen.slice(-500)}`)),
      30_000,
    );
    child.stdout?.on('data', (c: Buffer) => {
      seen += c.toString();
      if (READY[name].test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening: ${seen.slice(-500)}`));
    });
  });
  // Keep draining stdout so a chatty server never blocks on a full pipe.
  child.stdout?.resume();
  const pid = child.pid ?? 0;
  return {
    name,
    pid,
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      const kill = setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }, 15_000);
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        // gone already
      }
      await exited;
      clearTimeout(kill);
    },
  };
}
