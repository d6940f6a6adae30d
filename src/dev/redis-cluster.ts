/**
 * A throwaway local Redis Cluster: `redis-server` child processes on 127.0.0.1, for
 * integration tests, benchmarks and `npm start`. Never for production. One node's
 * process, port and cleanup live in redis-node.ts.
 *
 * Invariants:
 * - The cluster is formed by hand (SET-CONFIG-EPOCH, ADDSLOTSRANGE, MEET, REPLICATE)
 *   instead of `redis-cli --cluster create`, which waits in 1 s steps and needs one more
 *   binary. "Ready" means every node reports cluster_state:ok, every node sees exactly
 *   the planned topology, and every replica's link to its master is up.
 * - stop() and a failed start stop every node spawned and remove the temp dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import {
  ClusterNotReadyError,
  DevClusterError,
  InvalidClusterOptionError,
  RedisServerMissingError,
} from './errors.ts';
import {
  adminClient,
  findExecutable,
  installExitHooks,
  LOOPBACK,
  launchNode,
  type NodeSettings,
  pollUntil,
  type RedisNode,
  type RedisNodeRole,
  serverCommand,
  tailOf,
  trackTempDir,
  untrackTempDir,
} from './redis-node.ts';

export type { RedisNodeRole } from './redis-node.ts';

const SLOT_COUNT = 16384;
const READY_TIMEOUT_MS = 20_000;

export interface RedisClusterOptions {
  /** Masters, sharing the 16384 slots evenly. Default 3. */
  masters?: number;
  /** Replicas attached to each master. Default 0. */
  replicasPerMaster?: number;
  /** `cluster-node-timeout`: how long a silent node takes to be marked failed. Default 2000. */
  nodeTimeoutMs?: number;
  /** Only loopback is supported; the option exists so callers can say so explicitly. */
  host?: '127.0.0.1';
  /** Sets `requirepass` and `masterauth` on every node. */
  password?: string;
  /**
   * `cluster-require-full-coverage`. Unset: Redis's default, yes, under which one slot
   * without a live master makes every node refuse every query (CLUSTERDOWN). `false` keeps
   * the other masters' slots answering: what a cache wants (README, "Running Redis").
   */
  requireFullCoverage?: boolean;
  /**
   * `cluster-allow-reads-when-down`. Unset: Redis's default, no. `true` lets a node
   * answer reads of the slots it holds while the cluster is down (writes still fail).
   */
  allowReadsWhenDown?: boolean;
  /** Extra `redis.conf` lines appended to every node's config (later lines win). */
  extraConfig?: readonly string[];
  /** Command name looked up on PATH, or a path. Default `redis-server`. */
  redisServerPath?: string;
  /** Receives one progress line per event (node started, cluster ready). */
  log?: (line: string) => void;
}

export interface RedisNodeInfo {
  readonly host: string;
  readonly port: number;
  /** PID of the current process of this node; changes on restartNode(). */
  readonly pid: number;
  /** Role as launched; a failover is not reflected here. */
  readonly role: RedisNodeRole;
}

export interface RedisClusterHandle {
  readonly nodes: readonly RedisNodeInfo[];
  /** Comma-separated `127.0.0.1:port` of every node, masters first. */
  readonly seeds: string;
  /** Temp dir holding one subdirectory (config, nodes.conf, redis.log) per node. */
  readonly dir: string;
  /** Signals one node and resolves once it has exited (SIGTERM escalates to SIGKILL). */
  killNode(port: number, signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** Stops the node if running, starts it again on the same port and dir (same node ID). */
  restartNode(port: number): Promise<void>;
  /** Resolves once the cluster is back in its launched topology; throws after 20 s. */
  waitUntilReady(): Promise<void>;
  /** Stops every node and removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

interface ResolvedOptions extends NodeSettings {
  readonly masters: number;
  readonly replicasPerMaster: number;
  readonly redisServerPath: string;
}

export async function startRedisCluster(
  options: RedisClusterOptions = {},
): Promise<RedisClusterHandle> {
  const config = resolveOptions(options);
  const serverPath = findExecutable(config.redisServerPath);
  if (serverPath === undefined) throw new RedisServerMissingError(config.redisServerPath);
  const command = serverCommand(serverPath);

  const startedAt = Date.now();
  const deadline = startedAt + READY_TIMEOUT_MS;
  installExitHooks();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hotshield-cluster-'));
  trackTempDir(dir);

  const spawned: RedisNode[] = [];
  const roles = plannedRoles(config);
  const reservedPorts = new Set<number>();
  const launches = await Promise.allSettled(
    roles.map((role) =>
      launchNode({ role, dir, reservedPorts, config, command, deadline, spawned }),
    ),
  );
  const failedLaunch = launches.find((launch) => launch.status === 'rejected');
  if (failedLaunch !== undefined) {
    await stopCluster(spawned, dir);
    throw failedLaunch.reason;
  }
  const nodes = launches.map((launch) => (launch as PromiseFulfilledResult<RedisNode>).value);

  let expectedTopology: string;
  try {
    expectedTopology = await formCluster(nodes, config, deadline);
    await waitForTopology(nodes, expectedTopology, config.password, deadline);
  } catch (error) {
    await stopCluster(nodes, dir);
    if (error instanceof DevClusterError) throw error;
    // A command refused while forming, e.g. ADDSLOTSRANGE on a Redis older than 7.0.
    const reason = error instanceof Error ? error.message : String(error);
    throw new ClusterNotReadyError(`forming the Redis Cluster failed: ${reason}`, { cause: error });
  }

  const seeds = nodes.map((node) => node.address).join(',');
  config.log(`Redis Cluster ready in ${Date.now() - startedAt} ms: ${seeds}`);

  let stopping: Promise<void> | undefined;
  const nodeAt = (port: number): RedisNode => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (node === undefined)
      throw new InvalidClusterOptionError(`no node of this cluster on port ${port}`);
    return node;
  };
  return Object.freeze({
    get nodes(): readonly RedisNodeInfo[] {
      return nodes.map((node) => ({
        host: LOOPBACK,
        port: node.port,
        pid: node.pid,
        role: node.role,
      }));
    },
    seeds,
    dir,
    killNode: (port: number, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL') =>
      nodeAt(port).stop(signal),
    restartNode: async (port: number) => {
      const node = nodeAt(port);
      await node.stop('SIGTERM');
      await node.start(command, config.password, Date.now() + READY_TIMEOUT_MS);
    },
    waitUntilReady: () =>
      waitForTopology(nodes, expectedTopology, config.password, Date.now() + READY_TIMEOUT_MS),
    stop: () => {
      stopping ??= stopCluster(nodes, dir);
      return stopping;
    },
  });
}

async function stopCluster(nodes: readonly RedisNode[], dir: string): Promise<void> {
  await Promise.all(nodes.map((node) => node.stop('SIGTERM')));
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  untrackTempDir(dir);
}

// ---------------------------------------------------------------------------------------
// Options

function resolveOptions(options: RedisClusterOptions): ResolvedOptions {
  const masters = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 0;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000;
  if (!Number.isInteger(masters) || masters < 1 || masters > SLOT_COUNT) {
    throw new InvalidClusterOptionError(
      `options.masters must be an integer from 1 to ${SLOT_COUNT} (got ${masters})`,
    );
  }
  if (!Number.isInteger(replicasPerMaster) || replicasPerMaster < 0) {
    throw new InvalidClusterOptionError(
      `options.replicasPerMaster must be a non-negative integer (got ${replicasPerMaster})`,
    );
  }
  if (!Number.isInteger(nodeTimeoutMs) || nodeTimeoutMs < 1) {
    throw new InvalidClusterOptionError(
      `options.nodeTimeoutMs must be a positive integer (got ${nodeTimeoutMs})`,
    );
  }
  for (const name of ['requireFullCoverage', 'allowReadsWhenDown'] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== 'boolean') {
      throw new InvalidClusterOptionError(`options.${name} must be a boolean (got ${value})`);
    }
  }
  if (options.host !== undefined && options.host !== LOOPBACK) {
    throw new InvalidClusterOptionError(`options.host must be ${LOOPBACK} (got ${options.host})`);
  }
  // A control character would end the config line and inject directives.
  if (options.password !== undefined && !/^[^\p{Cc}]+$/u.test(options.password)) {
    throw new InvalidClusterOptionError(
      'options.password must be non-empty, without control characters',
    );
  }
  const extraConfig = [...(options.extraConfig ?? [])];
  if (extraConfig.some((line) => /[\r\n]/.test(line))) {
    throw new InvalidClusterOptionError('options.extraConfig lines must not contain line breaks');
  }
  return Object.freeze({
    masters,
    replicasPerMaster,
    nodeTimeoutMs,
    password: options.password,
    requireFullCoverage: options.requireFullCoverage,
    allowReadsWhenDown: options.allowReadsWhenDown,
    extraConfig,
    redisServerPath: options.redisServerPath ?? 'redis-server',
    log: options.log ?? (() => {}),
  });
}

function plannedRoles(config: ResolvedOptions): RedisNodeRole[] {
  const replicas = config.masters * config.replicasPerMaster;
  return [
    ...Array<RedisNodeRole>(config.masters).fill('master'),
    ...Array<RedisNodeRole>(replicas).fill('replica'),
  ];
}

// ---------------------------------------------------------------------------------------
// Cluster formation and readiness

/** Forms the cluster; returns the expected topology in `describeTopology` form. */
async function formCluster(
  nodes: readonly RedisNode[],
  config: ResolvedOptions,
  deadline: number,
): Promise<string> {
  return withAdminClients(nodes, config.password, async (clients) => {
    const ids = await Promise.all(clients.map((client) => client.cluster('MYID')));
    // Distinct epochs up front spare the cluster its slow epoch-collision resolution.
    await Promise.all(
      clients.map((client, index) => client.cluster('SET-CONFIG-EPOCH', index + 1)),
    );
    const expected: TopologyEntry[] = [];
    await Promise.all(
      clients.slice(0, config.masters).map((client, index) => {
        const first = Math.floor((index * SLOT_COUNT) / config.masters);
        const last = Math.floor(((index + 1) * SLOT_COUNT) / config.masters) - 1;
        const slots = first === last ? `${first}` : `${first}-${last}`;
        expected.push({ id: ids[index], role: 'master', masterId: '-', slots });
        return client.cluster('ADDSLOTSRANGE', first, last);
      }),
    );
    await Promise.all(
      nodes.slice(1).map((node) => clients[0].cluster('MEET', LOOPBACK, node.port)),
    );

    // REPLICATE needs the replica to know its master by ID, which takes a gossip round.
    const knowsEveryone = await pollUntil(deadline, async () => {
      const views = await Promise.all(clients.map(clusterNodesOf));
      for (const [index, text] of views.entries()) {
        const view = parseClusterNodes(text);
        if (view.problem !== undefined) return `${nodes[index].address}: ${view.problem}`;
        if (view.entries.length !== nodes.length) {
          return `${nodes[index].address} knows ${view.entries.length}/${nodes.length} nodes`;
        }
      }
      return undefined;
    });
    if (knowsEveryone !== undefined) throw await notReady(nodes, knowsEveryone);

    await Promise.all(
      clients.slice(config.masters).map((client, index) => {
        const masterId = ids[Math.floor(index / config.replicasPerMaster)];
        expected.push({ id: ids[config.masters + index], role: 'replica', masterId, slots: '' });
        return client.cluster('REPLICATE', masterId);
      }),
    );
    return describeTopology(expected);
  });
}

async function waitForTopology(
  nodes: readonly RedisNode[],
  expected: string,
  password: string | undefined,
  deadline: number,
): Promise<void> {
  await withAdminClients(nodes, password, async (clients) => {
    const problem = await pollUntil(deadline, async () => {
      const problems = await Promise.all(
        nodes.map((node, index) => readinessProblem(node, clients[index], expected)),
      );
      return problems.find((found) => found !== undefined);
    });
    if (problem !== undefined) throw await notReady(nodes, problem);
  });
}

async function readinessProblem(
  node: RedisNode,
  client: Redis,
  expected: string,
): Promise<string | undefined> {
  const info = await client.cluster('INFO');
  const state = /^cluster_state:(\w+)/m.exec(info)?.[1];
  if (state !== 'ok') return `${node.address} reports cluster_state:${state}`;
  const view = parseClusterNodes(await clusterNodesOf(client));
  if (view.problem !== undefined) return `${node.address}: ${view.problem}`;
  if (describeTopology(view.entries) !== expected) {
    return `${node.address} does not agree (yet) on the planned topology`;
  }
  if (node.role === 'replica') {
    const replication = await client.info('replication');
    if (!/^master_link_status:up/m.test(replication)) {
      return `${node.address}: replication link to its master is not up`;
    }
  }
  return undefined;
}

interface TopologyEntry {
  readonly id: string;
  readonly role: string;
  readonly masterId: string;
  readonly slots: string;
}

// Flags meaning a node is not (yet) a healthy, fully known member.
const UNSETTLED_FLAGS = new Set(['fail', 'fail?', 'handshake', 'noaddr']);

/** Parses CLUSTER NODES (`<id> <addr> <flags> <master> <ping> <pong> <epoch> <link> <slot>…`). */
function parseClusterNodes(text: string): { entries: TopologyEntry[]; problem?: string } {
  const entries: TopologyEntry[] = [];
  for (const line of text.trim().split('\n')) {
    const [id, address, flagList, masterId, , , , linkState, ...slots] = line.trim().split(' ');
    const flags = flagList.split(',');
    const unsettled = flags.find((flag) => UNSETTLED_FLAGS.has(flag));
    if (unsettled !== undefined) return { entries, problem: `${address} is flagged ${unsettled}` };
    if (linkState !== 'connected')
      return { entries, problem: `link to ${address} is ${linkState}` };
    const role = flags.includes('master')
      ? 'master'
      : flags.includes('slave')
        ? 'replica'
        : flagList;
    entries.push({ id, role, masterId, slots: slots.join(' ') });
  }
  return { entries };
}

function describeTopology(entries: readonly TopologyEntry[]): string {
  return entries
    .map((entry) => `${entry.id} ${entry.role} ${entry.masterId} ${entry.slots}`.trimEnd())
    .sort()
    .join('\n');
}

async function notReady(
  nodes: readonly RedisNode[],
  problem: string,
): Promise<ClusterNotReadyError> {
  const tails = await Promise.all(
    nodes.map(
      async (node) =>
        `--- ${node.address} (${node.role}) log tail ---\n${await tailOf(node.logPath)}`,
    ),
  );
  return new ClusterNotReadyError(
    `Redis Cluster not ready within ${READY_TIMEOUT_MS} ms: ${problem}\n${tails.join('\n')}`,
  );
}

// ---------------------------------------------------------------------------------------
// Helpers

async function withAdminClients<T>(
  nodes: readonly RedisNode[],
  password: string | undefined,
  use: (clients: Redis[]) => Promise<T>,
): Promise<T> {
  const clients = nodes.map((node) => adminClient(node.port, password));
  try {
    return await use(clients);
  } finally {
    for (const client of clients) client.disconnect();
  }
}

// ioredis types the CLUSTER NODES reply as unknown; it is one text blob, a line per node.
async function clusterNodesOf(client: Redis): Promise<string> {
  return String(await client.cluster('NODES'));
}
