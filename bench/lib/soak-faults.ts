/**
 * The soak's faults, one at a time in rotation, each with what it did and how long the
 * cluster (or the gateway) took to be whole again:
 *
 *   kill-master      SIGKILL a master; its replica is promoted; the old node is restarted
 *                    and rejoins as a replica
 *   pause-master     SIGSTOP a master for 5 s (longer than cluster-node-timeout: the
 *                    cluster fails it over), then SIGCONT
 *   failover         CLUSTER FAILOVER on a replica: a planned, graceful role swap
 *   kill-gateway     SIGKILL the gateway process; its supervisor starts another (the L1
 *                    and its unflushed counter increments die with it, as documented)
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { RedisClusterHandle } from '../../src/dev/redis-cluster.ts';
import { childPids } from './proc.ts';

export const FAULTS = ['kill-master', 'pause-master', 'failover', 'kill-gateway'] as const;
export type FaultName = (typeof FAULTS)[number];

export interface FaultRecord {
  /** Seconds since the soak started. */
  at: number;
  name: FaultName;
  detail: string;
  /** Seconds from the fault until the cluster (or gateway) was whole again. */
  recoveredAfterS: number | undefined;
}

interface ClusterNode {
  port: number;
  role: 'master' | 'replica';
  /** The master's port, for a replica. */
  masterPort?: number;
  failed: boolean;
}

function client(port: number): Redis {
  return new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: 500,
    commandTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
}

/** One node's view of the cluster, from CLUSTER NODES (undefined if it does not answer). */
async function viewFrom(port: number): Promise<ClusterNode[] | undefined> {
  const c = client(port);
  c.on('error', () => {});
  try {
    await c.connect();
    const text = (await c.call('CLUSTER', 'NODES')) as string;
    const byId = new Map<string, number>();
    const rows = text
      .trim()
      .split('\n')
      .map((line) => line.split(' '));
    for (const r of rows) byId.set(r[0], Number(r[1].split('@')[0].split(':')[1]));
    return rows.map((r) => ({
      port: byId.get(r[0]) ?? 0,
      role: r[2].includes('master') ? 'master' : 'replica',
      masterPort: r[3] === '-' ? undefined : byId.get(r[3]),
      failed: r[2].includes('fail') || r[7] !== 'connected',
    }));
  } catch {
    return undefined;
  } finally {
    c.disconnect();
  }
}

async function clusterOk(port: number): Promise<boolean> {
  const c = client(port);
  c.on('error', () => {});
  try {
    await c.connect();
    return /cluster_state:ok/.test((await c.call('CLUSTER', 'INFO')) as string);
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

export class SoakFaults {
  readonly #cluster: RedisClusterHandle;
  readonly #supervisorPid: number;
  readonly #readyUrl: string;
  readonly #startedAt: number;
  #next = 0;
  #pick = 0;

  constructor(cluster: RedisClusterHandle, supervisorPid: number, readyUrl: string) {
    this.#cluster = cluster;
    this.#supervisorPid = supervisorPid;
    this.#readyUrl = readyUrl;
    this.#startedAt = performance.now();
  }

  /** Run the next fault of the rotation and wait until things are whole again. */
  async next(): Promise<FaultRecord> {
    const name = FAULTS[this.#next++ % FAULTS.length];
    const at = (performance.now() - this.#startedAt) / 1000;
    const started = performance.now();
    const detail = await this.#inject(name);
    const whole = name === 'kill-gateway' ? await this.#gatewayReady() : await this.#healthy();
    return {
      at: Math.round(at),
      name,
      detail,
      recoveredAfterS: whole ? Math.round((performance.now() - started) / 100) / 10 : undefined,
    };
  }

  async #inject(name: FaultName): Promise<string> {
    switch (name) {
      case 'kill-master': {
        const port = await this.#master();
        const replicas = await this.#replicasOf(port);
        await this.#cluster.killNode(port, 'SIGKILL');
        // Restart only once a replica has taken over: a master without persistence that
        // comes back first comes back empty, still a master, and its replicas copy that.
        const promoted = await this.#until(() => this.#anyMaster(replicas), 30_000);
        await this.#cluster.restartNode(port);
        return `SIGKILL master :${port}; ${promoted ? 'a replica took over; ' : 'NO replica took over within 30 s; '}restarted it`;
      }
      case 'pause-master': {
        const port = await this.#master();
        const pid = this.#pidOf(port);
        process.kill(pid, 'SIGSTOP');
        try {
          await sleep(5000);
        } finally {
          process.kill(pid, 'SIGCONT');
        }
        return `SIGSTOP master :${port} for 5 s`;
      }
      case 'failover': {
        const master = await this.#master();
        const view = (await this.#view()) ?? [];
        const replica = view.find(
          (n) => n.role === 'replica' && n.masterPort === master && !n.failed,
        );
        if (replica === undefined) return `no healthy replica of :${master}; skipped`;
        const c = client(replica.port);
        c.on('error', () => {});
        try {
          await c.connect();
          await c.call('CLUSTER', 'FAILOVER');
        } finally {
          c.disconnect();
        }
        const swapped = await this.#until(() => this.#anyMaster([replica.port]), 30_000);
        return `CLUSTER FAILOVER: replica :${replica.port} ${swapped ? 'took over' : 'did NOT take over within 30 s'} from :${master}`;
      }
      case 'kill-gateway': {
        const [pid] = childPids(this.#supervisorPid);
        if (pid === undefined) return 'no gateway process found; skipped';
        process.kill(pid, 'SIGKILL');
        return `SIGKILL gateway process ${pid}`;
      }
    }
  }

  /** A master that has a healthy replica, in rotation. */
  async #master(): Promise<number> {
    const view = (await this.#view()) ?? [];
    const masters = view.filter(
      (m) =>
        m.role === 'master' &&
        !m.failed &&
        view.some((r) => r.role === 'replica' && r.masterPort === m.port && !r.failed),
    );
    if (masters.length === 0) throw new Error('no master with a healthy replica');
    return masters[this.#pick++ % masters.length].port;
  }

  async #replicasOf(master: number): Promise<number[]> {
    const view = (await this.#view()) ?? [];
    return view.filter((n) => n.role === 'replica' && n.masterPort === master).map((n) => n.port);
  }

  /** Has one of `ports` become a master (as the other nodes see it)? */
  async #anyMaster(ports: readonly number[]): Promise<boolean> {
    for (const port of ports) {
      const view = await viewFrom(port);
      const self = view?.find((n) => n.port === port);
      if (self?.role === 'master' && !self.failed) return true;
    }
    return false;
  }

  async #view(except?: number): Promise<ClusterNode[] | undefined> {
    for (const n of this.#cluster.nodes) {
      if (n.port === except) continue;
      const v = await viewFrom(n.port);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  #pidOf(port: number): number {
    const node = this.#cluster.nodes.find((n) => n.port === port);
    if (node === undefined) throw new Error(`no node on :${port}`);
    return node.pid;
  }

  /** Every node answers, none is marked failed, and the cluster says ok. */
  async #healthy(): Promise<boolean> {
    return this.#until(async () => {
      const view = await this.#view();
      if (view === undefined || view.some((n) => n.failed)) return false;
      for (const n of this.#cluster.nodes) if (!(await clusterOk(n.port))) return false;
      return true;
    }, 60_000);
  }

  async #gatewayReady(): Promise<boolean> {
    return this.#until(async () => {
      try {
        return (await fetch(this.#readyUrl, { signal: AbortSignal.timeout(1000) })).status === 200;
      } catch {
        return false;
      }
    }, 30_000);
  }

  async #until(done: () => Promise<boolean>, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (performance.now() < deadline) {
      if (await done()) return true;
      await sleep(100);
    }
    return false;
  }
}
