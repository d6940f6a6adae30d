import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import {
  type RedisClusterHandle,
  type RedisClusterOptions,
  startRedisCluster,
} from '../../src/dev/redis-cluster.ts';
import { clusterClient, nodeClient } from '../fixtures/redis/redis-clients.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** Polls until no PID is alive; an exited node stays a zombie until its new parent reaps it. */
async function expectAllDead(pids: readonly number[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
  expect(pids.filter(isAlive)).toEqual([]);
}

/** Starts test/fixtures/redis/cluster-process.ts and waits for the cluster it launched. */
async function launchInChildProcess(): Promise<{
  launcher: ChildProcess;
  pids: number[];
  dir: string;
}> {
  const fixture = path.join(import.meta.dirname, '../fixtures/redis/cluster-process.ts');
  const launcher = spawn(process.execPath, [fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(() => {
    launcher.kill('SIGKILL');
  });
  const firstLine = once(readline.createInterface({ input: launcher.stdout }), 'line');
  const exited = once(launcher, 'exit').then(([code]) => {
    throw new Error(`cluster-process fixture exited early with code ${code}`);
  });
  const [line] = await Promise.race([firstLine, exited]);
  return { launcher, ...JSON.parse(line as string) };
}

/** One setting of the node on `port`, as CONFIG GET reports it. */
async function configOf(port: number, name: string): Promise<string | undefined> {
  const [, value] = (await nodeClient(port).config('GET', name)) as string[];
  return value;
}

function field(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(info)?.[1];
}

describe('the run-wide cluster from global setup', () => {
  it('is injected as a seed list and answers SET/GET', async () => {
    const seeds = inject('redisSeeds');
    expect(seeds).toMatch(/^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}$/);
    const redis = clusterClient(seeds);
    const key = `global-setup:${process.pid}:${Date.now()}`;
    await redis.set(key, 'reachable', 'PX', 60_000);
    expect(await redis.get(key)).toBe('reachable');
  });
});

describe('startRedisCluster with 3 masters', () => {
  let cluster: RedisClusterHandle;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
  });
  afterAll(() => cluster?.stop());

  it('runs 3 masters on free loopback ports and lists them as seeds', () => {
    expect(cluster.nodes).toHaveLength(3);
    for (const node of cluster.nodes) {
      expect(node).toMatchObject({ host: '127.0.0.1', role: 'master' });
      expect(node.port).not.toBe(6379);
      expect(node.port + 10000).toBeLessThanOrEqual(65535);
      expect(isAlive(node.pid)).toBe(true);
    }
    expect(cluster.seeds).toBe(cluster.nodes.map((node) => `127.0.0.1:${node.port}`).join(','));
    expect(path.basename(cluster.dir)).toMatch(/^hotshield-cluster-/);
  });

  it('has every node reporting cluster_state:ok with all slots assigned', async () => {
    for (const node of cluster.nodes) {
      const info = await nodeClient(node.port).cluster('INFO');
      expect(field(info, 'cluster_state')).toBe('ok');
      expect(field(info, 'cluster_slots_assigned')).toBe('16384');
      expect(field(info, 'cluster_known_nodes')).toBe('3');
      expect(field(info, 'cluster_size')).toBe('3');
    }
  });

  it('serves SET/GET through an ioredis Cluster, keys landing on every master', async () => {
    const redis = clusterClient(cluster.seeds);
    const keys = Array.from({ length: 60 }, (_, index) => `spread:${index}`);
    await Promise.all(keys.map((key) => redis.set(key, `value of ${key}`)));
    expect(await Promise.all(keys.map((key) => redis.get(key)))).toEqual(
      keys.map((key) => `value of ${key}`),
    );

    const slots = await Promise.all(keys.map((key) => redis.cluster('KEYSLOT', key)));
    expect(new Set(slots).size).toBeGreaterThan(30);
    const perMaster = await Promise.all(
      cluster.nodes.map((node) => nodeClient(node.port).dbsize()),
    );
    for (const count of perMaster) expect(count).toBeGreaterThan(0);
    expect(perMaster.reduce((sum, count) => sum + count, 0)).toBe(keys.length);
  });

  it('restarts a killed node with the same node ID and the cluster becomes ready again', async () => {
    const [victim] = cluster.nodes;
    const id = await nodeClient(victim.port).cluster('MYID');

    await cluster.killNode(victim.port);
    expect(isAlive(victim.pid)).toBe(false);

    await cluster.restartNode(victim.port);
    const restarted = cluster.nodes[0];
    expect(restarted.pid).not.toBe(victim.pid);
    expect(isAlive(restarted.pid)).toBe(true);
    expect(await nodeClient(victim.port).cluster('MYID')).toBe(id);
    await cluster.waitUntilReady();
  });

  it("leaves Redis's coverage settings at their defaults (full coverage, no reads when down)", async () => {
    for (const node of cluster.nodes) {
      expect(await configOf(node.port, 'cluster-require-full-coverage')).toBe('yes');
      expect(await configOf(node.port, 'cluster-allow-reads-when-down')).toBe('no');
      expect(await configOf(node.port, 'cluster-node-timeout')).toBe('2000');
    }
  });

  it('stop() kills every node, removes the temp dir, and is idempotent', async () => {
    const pids = cluster.nodes.map((node) => node.pid);
    await cluster.stop();
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(fs.existsSync(cluster.dir)).toBe(false);
    await expect(cluster.stop()).resolves.toBeUndefined();
  });
});

describe('startRedisCluster with 3 masters and 1 replica each', () => {
  it('reaches cluster_state:ok with one synced replica under every master', async () => {
    const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    onTestFinished(() => cluster.stop());
    const masters = cluster.nodes.filter((node) => node.role === 'master');
    const replicas = cluster.nodes.filter((node) => node.role === 'replica');
    expect(masters).toHaveLength(3);
    expect(replicas).toHaveLength(3);

    for (const node of cluster.nodes) {
      const info = await nodeClient(node.port).cluster('INFO');
      expect(field(info, 'cluster_state')).toBe('ok');
      expect(field(info, 'cluster_known_nodes')).toBe('6');
    }

    // One view of the topology: every master has exactly one replica pointing at it.
    const lines = String(await nodeClient(masters[0].port).cluster('NODES'))
      .trim()
      .split('\n');
    const rows = lines.map((line) => line.split(' '));
    const masterIds = rows.filter(([, , flags]) => flags.includes('master')).map(([id]) => id);
    const replicaOf = rows.filter(([, , flags]) => flags.includes('slave')).map((row) => row[3]);
    expect(masterIds).toHaveLength(3);
    expect(replicaOf.toSorted()).toEqual(masterIds.toSorted());

    const masterPorts = new Set(masters.map((node) => String(node.port)));
    const replicaMasterPorts = new Set<string | undefined>();
    for (const replica of replicas) {
      const info = await nodeClient(replica.port).info('replication');
      expect(field(info, 'role')).toBe('slave');
      expect(field(info, 'master_link_status')).toBe('up');
      replicaMasterPorts.add(field(info, 'master_port'));
    }
    expect(replicaMasterPorts).toEqual(masterPorts);
    for (const master of masters) {
      const info = await nodeClient(master.port).info('replication');
      expect(field(info, 'connected_slaves')).toBe('1');
    }
  });
});

describe('startRedisCluster with the coverage settings of a cache cluster', () => {
  it('applies requireFullCoverage, allowReadsWhenDown and nodeTimeoutMs on every node, replicas included', async () => {
    const cluster = await startRedisCluster({
      masters: 3,
      replicasPerMaster: 1,
      nodeTimeoutMs: 1000,
      requireFullCoverage: false,
      allowReadsWhenDown: true,
    });
    onTestFinished(() => cluster.stop());
    expect(cluster.nodes).toHaveLength(6);
    for (const node of cluster.nodes) {
      expect(await configOf(node.port, 'cluster-require-full-coverage')).toBe('no');
      expect(await configOf(node.port, 'cluster-allow-reads-when-down')).toBe('yes');
      expect(await configOf(node.port, 'cluster-node-timeout')).toBe('1000');
    }
    // Written to the config file, so a restarted node keeps them.
    const [victim] = cluster.nodes;
    await cluster.restartNode(victim.port);
    expect(await configOf(victim.port, 'cluster-require-full-coverage')).toBe('no');
    expect(await configOf(victim.port, 'cluster-allow-reads-when-down')).toBe('yes');
    await cluster.waitUntilReady();
  });

  it('writes the opposite values too (false / true are not just "set")', async () => {
    const cluster = await startRedisCluster({
      masters: 1,
      requireFullCoverage: true,
      allowReadsWhenDown: false,
    });
    onTestFinished(() => cluster.stop());
    const [node] = cluster.nodes;
    expect(await configOf(node.port, 'cluster-require-full-coverage')).toBe('yes');
    expect(await configOf(node.port, 'cluster-allow-reads-when-down')).toBe('no');
  });
});

describe('startRedisCluster failures', () => {
  it('throws HS_ERR_REDIS_SERVER_MISSING, naming the apt package, for a missing binary', async () => {
    const missing = {
      code: 'HS_ERR_REDIS_SERVER_MISSING',
      message: expect.stringContaining('apt-get install redis-server'),
    };
    await expect(
      startRedisCluster({ redisServerPath: '/nonexistent/bin/redis-server' }),
    ).rejects.toMatchObject(missing);

    const emptyDir = await mkdtemp(path.join(os.tmpdir(), 'hotshield-empty-path-'));
    onTestFinished(() => rm(emptyDir, { recursive: true, force: true }));
    vi.stubEnv('PATH', emptyDir);
    onTestFinished(() => {
      vi.unstubAllEnvs();
    });
    await expect(startRedisCluster()).rejects.toMatchObject(missing);
  });

  it('rejects bad options with HS_ERR_INVALID_CLUSTER_OPTION before spawning anything', async () => {
    const invalid = { code: 'HS_ERR_INVALID_CLUSTER_OPTION' };
    await expect(startRedisCluster({ masters: 0 })).rejects.toMatchObject(invalid);
    await expect(startRedisCluster({ masters: 1.5 })).rejects.toMatchObject(invalid);
    await expect(startRedisCluster({ replicasPerMaster: -1 })).rejects.toMatchObject(invalid);
    await expect(startRedisCluster({ nodeTimeoutMs: 0 })).rejects.toMatchObject(invalid);
    await expect(
      startRedisCluster({ host: '0.0.0.0' } as unknown as RedisClusterOptions),
    ).rejects.toMatchObject(invalid);
    await expect(startRedisCluster({ password: 'a\nb' })).rejects.toMatchObject(invalid);
    await expect(
      startRedisCluster({ requireFullCoverage: 'no' as unknown as boolean }),
    ).rejects.toMatchObject(invalid);
    await expect(
      startRedisCluster({ allowReadsWhenDown: 1 as unknown as boolean }),
    ).rejects.toMatchObject(invalid);
    await expect(
      startRedisCluster({ extraConfig: ['maxmemory 1mb\nbind 0.0.0.0'] }),
    ).rejects.toMatchObject(invalid);
  });

  it('reports a node that cannot boot with HS_ERR_REDIS_NODE_START and its log, leaving no dir', async () => {
    const privateTmp = await mkdtemp(path.join(os.tmpdir(), 'hotshield-private-tmp-'));
    onTestFinished(() => rm(privateTmp, { recursive: true, force: true }));
    vi.stubEnv('TMPDIR', privateTmp);
    onTestFinished(() => {
      vi.unstubAllEnvs();
    });

    await expect(
      startRedisCluster({ masters: 1, extraConfig: ['no-such-directive yes'] }),
    ).rejects.toMatchObject({
      code: 'HS_ERR_REDIS_NODE_START',
      message: expect.stringContaining('no-such-directive'),
    });
    expect(await readdir(privateTmp)).toEqual([]);
  });
});

describe('startRedisCluster with a password', () => {
  it('requires AUTH and still forms a ready cluster', async () => {
    const cluster = await startRedisCluster({ masters: 3, password: 's3cret "quoted"' });
    onTestFinished(() => cluster.stop());
    const [node] = cluster.nodes;
    const anonymous = nodeClient(node.port);
    // The refused handshake is also emitted as an 'error' event; the rejection is the check.
    anonymous.on('error', () => {});
    await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    const info = await nodeClient(node.port, 's3cret "quoted"').cluster('INFO');
    expect(field(info, 'cluster_state')).toBe('ok');
  });
});

describe('a launching process that dies', () => {
  it('takes its nodes and temp dir with it when it gets SIGTERM', async () => {
    const { launcher, pids, dir } = await launchInChildProcess();
    expect(pids.every(isAlive)).toBe(true);
    launcher.kill('SIGTERM');
    const [, signal] = await once(launcher, 'exit');
    expect(signal).toBe('SIGTERM');
    await expectAllDead(pids);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it.skipIf(process.platform !== 'linux')(
    'takes its nodes with it even when SIGKILLed (Linux: setpriv --pdeathsig)',
    async () => {
      const { launcher, pids, dir } = await launchInChildProcess();
      // No hook runs on SIGKILL, so the temp dir stays; this test removes it.
      onTestFinished(() => rm(dir, { recursive: true, force: true }));
      launcher.kill('SIGKILL');
      await once(launcher, 'exit');
      await expectAllDead(pids);
    },
  );
});
