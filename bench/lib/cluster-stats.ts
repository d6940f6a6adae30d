/**
 * What Redis did during a measurement, per master: command counts from
 * `INFO commandstats` and CPU seconds from `INFO cpu` (used_cpu_sys + used_cpu_user),
 * as deltas between two snapshots. Counting on the server side means every contender
 * is measured the same way, whatever client it uses.
 *
 * Writes are counted as Redis counts commands: a command a script runs is listed under
 * its own name, like one a client sent (Redis 7 does so in commandstats). So `writes`
 * are the key writes Redis executed, wherever they came from, and `scripts` the
 * EVAL/EVALSHA/FCALL calls that may have run some of them: a hotshield counter flush is
 * one EVALSHA from the client and two writes (INCRBY of the shard, SET of the writer's
 * flush mark). The script call itself is not a write: counting it too would count each
 * flush three times.
 */

import { Redis } from 'ioredis';

export interface NodeSnapshot {
  port: number;
  calls: Record<string, number>;
  cpuSeconds: number;
}

/** The commands that write a string key: those hotshield and the baselines send, and their siblings. */
export const KEY_WRITE_COMMANDS: readonly string[] = [
  'set',
  'setex',
  'psetex',
  'setnx',
  'getset',
  'getdel',
  'mset',
  'incr',
  'incrby',
  'incrbyfloat',
  'decr',
  'decrby',
  'del',
  'unlink',
  'expire',
  'pexpire',
];
export const SCRIPT_COMMANDS: readonly string[] = [
  'eval',
  'evalsha',
  'eval_ro',
  'evalsha_ro',
  'fcall',
];

export interface NodeDelta {
  port: number;
  gets: number;
  /** Calls of KEY_WRITE_COMMANDS, inside scripts too (see the header). */
  writes: number;
  /** Calls of SCRIPT_COMMANDS. */
  scripts: number;
  /** Every command, all kinds. */
  commands: number;
  cpuSeconds: number;
}

export function parseInfo(text: string): { calls: Record<string, number>; cpuSeconds: number } {
  const calls: Record<string, number> = {};
  for (const m of text.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
  const sys = Number(/^used_cpu_sys:([\d.]+)/m.exec(text)?.[1] ?? 0);
  const user = Number(/^used_cpu_user:([\d.]+)/m.exec(text)?.[1] ?? 0);
  return { calls, cpuSeconds: sys + user };
}

/** The calls of `commands` in one snapshot's counts. */
export function callsOf(
  calls: Record<string, number> | undefined,
  commands: readonly string[],
): number {
  return commands.reduce((s, c) => s + (calls?.[c] ?? 0), 0);
}

export async function snapshot(ports: readonly number[]): Promise<NodeSnapshot[]> {
  return Promise.all(
    ports.map(async (port) => {
      const client = new Redis({
        host: '127.0.0.1',
        port,
        lazyConnect: true,
        connectTimeout: 2000,
        maxRetriesPerRequest: 1,
      });
      try {
        await client.connect();
        const [commandstats, cpu] = await Promise.all([
          client.info('commandstats'),
          client.info('cpu'),
        ]);
        return { port, ...parseInfo(`${commandstats}\n${cpu}`) };
      } finally {
        client.disconnect();
      }
    }),
  );
}

export function delta(
  before: readonly NodeSnapshot[],
  after: readonly NodeSnapshot[],
): NodeDelta[] {
  return after.map((a) => {
    const b = before.find((x) => x.port === a.port);
    const sum = (calls: Record<string, number> | undefined) =>
      Object.entries(calls ?? {})
        .filter(([name]) => name !== 'info')
        .reduce((s, [, n]) => s + n, 0);
    return {
      port: a.port,
      gets: (a.calls.get ?? 0) - (b?.calls.get ?? 0),
      writes: callsOf(a.calls, KEY_WRITE_COMMANDS) - callsOf(b?.calls, KEY_WRITE_COMMANDS),
      scripts: callsOf(a.calls, SCRIPT_COMMANDS) - callsOf(b?.calls, SCRIPT_COMMANDS),
      commands: sum(a.calls) - sum(b?.calls),
      cpuSeconds: a.cpuSeconds - (b?.cpuSeconds ?? 0),
    };
  });
}
