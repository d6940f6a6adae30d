/**
 * What Redis did during a measurement, per master: command counts from
 * `INFO commandstats` and CPU seconds from `INFO cpu` (used_cpu_sys + used_cpu_user),
 * as deltas between two snapshots. Counting on the server side means every contender
 * is measured the same way, whatever client it uses.
 */

import { Redis } from 'ioredis';

export interface NodeSnapshot {
  port: number;
  calls: Record<string, number>;
  cpuSeconds: number;
}

export interface NodeDelta {
  port: number;
  gets: number;
  /** Every command, all kinds. */
  commands: number;
  cpuSeconds: number;
}

function parseInfo(text: string): { calls: Record<string, number>; cpuSeconds: number } {
  const calls: Record<string, number> = {};
  for (const m of text.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
  const sys = Number(/^used_cpu_sys:([\d.]+)/m.exec(text)?.[1] ?? 0);
  const user = Number(/^used_cpu_user:([\d.]+)/m.exec(text)?.[1] ?? 0);
  return { calls, cpuSeconds: sys + user };
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
      commands: sum(a.calls) - sum(b?.calls),
      cpuSeconds: a.cpuSeconds - (b?.cpuSeconds ?? 0),
    };
  });
}
