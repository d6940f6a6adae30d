/**
 * A throwaway local Redis Cluster: `redis-server` child processes on 127.0.0.1, for
 * integration tests, benchmarks and `npm start`. Never for production. One node's
 * process, port and cleanup live in redis-node.ts.
 *
 * Invariants:
 * - The cluster is formed by hand and "ready" means every node agrees on the planned
 *   topology (cluster-formation.ts).
 * - stop() and a failed start stop every node spawned and remove the temp dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HotshieldError } from '../errors.ts';
import { formCluster, READY_TIMEOUT_MS, SLOT_COUNT, waitForTopology } from './cluster-formation.ts';
import {
  findExecutable,
  installExitHooks,
  LOOPBACK,
  launchNode,
  type NodeSettings,
  type RedisNode,
  type RedisNodeRole,
  serverCommand,
  trackTempDir,
  untrackTempDir,
} from './redis-node.ts';

export type { RedisNodeRole } from './redis-node.ts';

export interface RedisClusterOptions {
  /** Masters, sharing the 16384 slots evenly. Default 3. */
  masters?: number;
  /** Replicas attached to each master. Default 0. */
  replicasPerMaster?: number;
  /** `cluster-node-timeout`: how long a silent node takes to be marked failed. Default 2000. */
  nodeTimeoutMs?: number;
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
  if (serverPath === undefined) throw serverMissing(config.redisServerPath);
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
    if (error instanceof HotshieldError) throw error;
    // A command refused while forming, e.g. ADDSLOTSRANGE on a Redis older than 7.0.
    const reason = error instanceof Error ? error.message : String(error);
    throw new HotshieldError(
      'HS_ERR_CLUSTER_NOT_READY',
      `forming the Redis Cluster failed: ${reason}`,
      { cause: error },
    );
  }

  const seeds = nodes.map((node) => node.address).join(',');
  config.log(`Redis Cluster ready in ${Date.now() - startedAt} ms: ${seeds}`);

  let stopping: Promise<void> | undefined;
  const nodeAt = (port: number): RedisNode => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (node === undefined) throw invalidOption(`no node of this cluster on port ${port}`);
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

/** Every option, once: a field added to RedisClusterOptions and not here does not compile. */
const OPTION_NAMES: Record<keyof RedisClusterOptions, true> = {
  masters: true,
  replicasPerMaster: true,
  nodeTimeoutMs: true,
  password: true,
  requireFullCoverage: true,
  allowReadsWhenDown: true,
  extraConfig: true,
  redisServerPath: true,
  log: true,
};

function invalidOption(message: string): HotshieldError {
  return new HotshieldError('HS_ERR_INVALID_CLUSTER_OPTION', message);
}

function serverMissing(command: string): HotshieldError {
  return new HotshieldError(
    'HS_ERR_REDIS_SERVER_MISSING',
    `redis-server not found (looked for "${command}"${command.includes('/') ? '' : ' on PATH'}). ` +
      'The local Redis Cluster needs Redis >= 7.0: on Debian/Ubuntu run ' +
      '`apt-get install redis-server`, or pass options.redisServerPath.',
  );
}

function resolveOptions(options: RedisClusterOptions): ResolvedOptions {
  const masters = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 0;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000;
  if (!Number.isInteger(masters) || masters < 1 || masters > SLOT_COUNT) {
    throw invalidOption(
      `options.masters must be an integer from 1 to ${SLOT_COUNT} (got ${masters})`,
    );
  }
  if (!Number.isInteger(replicasPerMaster) || replicasPerMaster < 0) {
    throw invalidOption(
      `options.replicasPerMaster must be a non-negative integer (got ${replicasPerMaster})`,
    );
  }
  if (!Number.isInteger(nodeTimeoutMs) || nodeTimeoutMs < 1) {
    throw invalidOption(`options.nodeTimeoutMs must be a positive integer (got ${nodeTimeoutMs})`);
  }
  for (const name of ['requireFullCoverage', 'allowReadsWhenDown'] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== 'boolean') {
      throw invalidOption(`options.${name} must be a boolean (got ${value})`);
    }
  }
  for (const name of Object.keys(options)) {
    if (!Object.hasOwn(OPTION_NAMES, name))
      throw invalidOption(
        `options.${name} is not an option of startRedisCluster${name === 'host' ? ` (nodes listen on ${LOOPBACK} only)` : ''}`,
      );
  }
  // A control character would end the config line and inject directives.
  if (options.password !== undefined && !/^[^\p{Cc}]+$/u.test(options.password)) {
    throw invalidOption('options.password must be non-empty, without control characters');
  }
  const extraConfig = [...(options.extraConfig ?? [])];
  if (extraConfig.some((line) => /[\r\n]/.test(line))) {
    throw invalidOption('options.extraConfig lines must not contain line breaks');
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
