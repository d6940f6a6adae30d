/**
 * A throwaway local Redis Cluster: `redis-server` child processes on 127.0.0.1, for
 * integration tests, benchmarks and `npm start`. Never for production.
 *
 * Invariants:
 * - Loopback only. Ports are picked free at run time, each with its cluster bus port
 *   (port + 10000) also free; 6379 is never used, a system Redis may live there.
 * - Only processes spawned here are ever signalled, and only through their
 *   ChildProcess, which refuses to signal a child already reaped: a recycled PID is
 *   never hit. Nothing is killed by name.
 * - Every live child is in `liveChildren` until its exit is seen, every temp dir in
 *   `liveDirs` until removed. A process 'exit' hook SIGKILLs and removes what is left,
 *   so a failing test or a forgotten stop() leaves no orphans. A SIGKILL of this process
 *   skips the hooks: on Linux the kernel then kills the nodes (see serverCommand), and
 *   only the temp dir is left behind.
 * - The cluster is formed by hand (SET-CONFIG-EPOCH, ADDSLOTSRANGE, MEET, REPLICATE)
 *   instead of `redis-cli --cluster create`, which waits in 1 s steps and needs one more
 *   binary. "Ready" means every node reports cluster_state:ok, every node sees exactly
 *   the planned topology, and every replica's link to its master is up.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import {
  ClusterNotReadyError,
  DevClusterError,
  InvalidClusterOptionError,
  RedisNodeStartError,
  RedisServerMissingError,
} from './errors.ts';

const LOOPBACK = '127.0.0.1';
const SLOT_COUNT = 16384;
const BUS_PORT_OFFSET = 10000;
const SYSTEM_REDIS_PORTS = new Set([6379, 6379 + BUS_PORT_OFFSET]);
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const POLL_INTERVAL_MS = 25;
const PORT_PICK_ATTEMPTS = 100;
const NODE_START_ATTEMPTS = 4;
const LOG_TAIL_LINES = 15;

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
  /** Extra `redis.conf` lines appended to every node's config (later lines win). */
  extraConfig?: readonly string[];
  /** Command name looked up on PATH, or a path. Default `redis-server`. */
  redisServerPath?: string;
  /** Receives one progress line per event (node started, cluster ready). */
  log?: (line: string) => void;
}

export type RedisNodeRole = 'master' | 'replica';

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

interface ResolvedOptions {
  readonly masters: number;
  readonly replicasPerMaster: number;
  readonly nodeTimeoutMs: number;
  readonly password: string | undefined;
  readonly extraConfig: readonly string[];
  readonly redisServerPath: string;
  readonly log: (line: string) => void;
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
  liveDirs.add(dir);

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
    extraConfig,
    redisServerPath: options.redisServerPath ?? 'redis-server',
    log: options.log ?? (() => {}),
  });
}

function findExecutable(command: string): string | undefined {
  const candidates = command.includes('/')
    ? [command]
    : (process.env.PATH ?? '')
        .split(path.delimiter)
        .filter((entry) => entry !== '')
        .map((entry) => path.join(entry, command));
  return candidates.find((candidate) => {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return fs.statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * The argv prefix that runs redis-server. On Linux it goes through `setpriv --pdeathsig`
 * (util-linux, essential on Debian/Ubuntu), which execs redis-server in place (same PID)
 * with the kernel set to SIGKILL it when the thread that spawned it dies. That covers the
 * one case the exit hooks cannot: this process being SIGKILLed, e.g. a vitest worker
 * killed by vitest's watchdog. Elsewhere, such a kill orphans the nodes.
 */
function serverCommand(serverPath: string): readonly string[] {
  const setpriv = process.platform === 'linux' ? findExecutable('setpriv') : undefined;
  return setpriv === undefined ? [serverPath] : [setpriv, '--pdeathsig', 'KILL', '--', serverPath];
}

function plannedRoles(config: ResolvedOptions): RedisNodeRole[] {
  const replicas = config.masters * config.replicasPerMaster;
  return [
    ...Array<RedisNodeRole>(config.masters).fill('master'),
    ...Array<RedisNodeRole>(replicas).fill('replica'),
  ];
}

function nodeConfig(port: number, dir: string, config: ResolvedOptions): string {
  const lines = [
    `port ${port}`,
    `bind ${LOOPBACK}`,
    'protected-mode no',
    `dir ${quoteConfigValue(dir)}`,
    'daemonize no',
    'cluster-enabled yes',
    'cluster-config-file nodes.conf',
    `cluster-node-timeout ${config.nodeTimeoutMs}`,
    'save ""',
    'appendonly no',
    // The default 5 s wait before a diskless full sync would dominate startup with replicas.
    'repl-diskless-sync-delay 0',
    // A master otherwise waits up to 10 s for lagging replicas; data is throwaway. SIGINT
    // too: the nodes share the terminal's process group and get Ctrl-C directly.
    'shutdown-on-sigterm now',
    'shutdown-on-sigint now',
  ];
  if (config.password !== undefined) {
    const password = quoteConfigValue(config.password);
    lines.push(`requirepass ${password}`, `masterauth ${password}`);
  }
  return `${[...lines, ...config.extraConfig].join('\n')}\n`;
}

function quoteConfigValue(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

// ---------------------------------------------------------------------------------------
// Processes

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
const TERMINATING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killEverythingNow);
  for (const signal of TERMINATING_SIGNALS) process.on(signal, onTerminatingSignal);
}

// Synchronous: it also runs inside the 'exit' event, where no callback fires again.
function killEverythingNow(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  liveChildren.clear();
  for (const dir of liveDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // Best effort while dying; a leftover temp dir is harmless, a throw here is not.
    }
  }
  liveDirs.clear();
}

function onTerminatingSignal(signal: NodeJS.Signals): void {
  // Another listener (start.ts, a test runner) owns shutdown and will stop() or exit;
  // the 'exit' hook is the backstop.
  if (process.listenerCount(signal) > 1) return;
  killEverythingNow();
  for (const hooked of TERMINATING_SIGNALS) process.off(hooked, onTerminatingSignal);
  // Re-raise so this process dies of the signal, as it would have without this listener.
  process.kill(process.pid, signal);
}

class RedisNode {
  readonly port: number;
  readonly role: RedisNodeRole;
  readonly dir: string;
  #child: ChildProcess | undefined;
  #alive = false;
  #exited: Promise<void> = Promise.resolve();

  constructor(port: number, role: RedisNodeRole, dir: string) {
    this.port = port;
    this.role = role;
    this.dir = dir;
  }

  get address(): string {
    return `${LOOPBACK}:${this.port}`;
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  get logPath(): string {
    return path.join(this.dir, 'redis.log');
  }

  /** Spawns redis-server and resolves once it answers PING. */
  async start(
    command: readonly string[],
    password: string | undefined,
    deadline: number,
  ): Promise<void> {
    // The child writes its log straight to the file: no pipe for this process to drain.
    const logFd = fs.openSync(this.logPath, 'a');
    let child: ChildProcess;
    try {
      const [file, ...args] = command;
      child = spawn(file, [...args, 'redis.conf'], {
        cwd: this.dir,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd);
    }
    this.#child = child;
    this.#alive = true;
    let exitReason = '';
    this.#exited = new Promise((resolve) => {
      const settle = (reason: string) => {
        this.#alive = false;
        exitReason ||= reason;
        liveChildren.delete(child);
        resolve();
      };
      child.once('exit', (code, signal) => settle(`exited with ${signal ?? `code ${code}`}`));
      child.once('error', (error) => settle(`could not be spawned: ${error.message}`));
    });
    liveChildren.add(child);
    // A forgotten stop() must not hold the event loop open; the 'exit' hook reaps instead.
    child.unref();

    const client = adminClient(this.port, password);
    try {
      const problem = await pollUntil(deadline, async () => {
        // Raced with the exit: if another process holds the port, PING may talk to it
        // and never get an answer while our child is already dead.
        await Promise.race([client.ping(), this.#exited]);
        if (this.#alive) return undefined;
        const log = await tailOf(this.logPath);
        throw new RedisNodeStartError(
          `redis-server on port ${this.port} ${exitReason}\n${log}`,
          /Address already in use/i.test(log),
        );
      });
      if (problem !== undefined) {
        throw new RedisNodeStartError(
          `redis-server on port ${this.port} did not answer PING in time (${problem})\n` +
            (await tailOf(this.logPath)),
        );
      }
    } finally {
      client.disconnect();
    }
  }

  /** Resolves once the process has exited; a no-op when it is not running. */
  async stop(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.#alive) return;
    child.kill(signal);
    const escalation = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.#exited;
    clearTimeout(escalation);
  }
}

interface LaunchRequest {
  readonly role: RedisNodeRole;
  readonly dir: string;
  readonly reservedPorts: Set<number>;
  readonly config: ResolvedOptions;
  readonly command: readonly string[];
  readonly deadline: number;
  /** Every node ever spawned, failed attempts included, so a failed launch stops them all. */
  readonly spawned: RedisNode[];
}

async function launchNode(request: LaunchRequest): Promise<RedisNode> {
  for (let attempt = 1; ; attempt++) {
    const port = await pickFreePort(request.reservedPorts);
    const node = new RedisNode(port, request.role, path.join(request.dir, String(port)));
    request.spawned.push(node);
    await mkdir(node.dir);
    await writeFile(path.join(node.dir, 'redis.conf'), nodeConfig(port, node.dir, request.config));
    try {
      await node.start(request.command, request.config.password, request.deadline);
      request.config.log(`redis-server ${node.address} (${node.role}) started, pid ${node.pid}`);
      return node;
    } catch (error) {
      // Another process may grab the port between our probe and redis-server's bind.
      const portTaken = error instanceof RedisNodeStartError && error.portInUse;
      if (!portTaken || attempt === NODE_START_ATTEMPTS) throw error;
      request.config.log(`port ${port} was taken before redis-server bound it; trying another`);
    }
  }
}

/** A free loopback port whose cluster bus port (+10000) is free too. */
async function pickFreePort(reserved: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < PORT_PICK_ATTEMPTS; attempt++) {
    const port = await probeListen(0);
    if (port === undefined) continue;
    const busPort = port + BUS_PORT_OFFSET;
    const usable = (candidate: number) =>
      candidate <= 65535 && !reserved.has(candidate) && !SYSTEM_REDIS_PORTS.has(candidate);
    if (!usable(port) || !usable(busPort)) continue;
    if ((await probeListen(busPort)) === undefined) continue;
    // Re-checked after the await: launches pick ports concurrently.
    if (!usable(port) || !usable(busPort)) continue;
    reserved.add(port);
    reserved.add(busPort);
    return port;
  }
  throw new RedisNodeStartError(
    `found no free loopback port p with p+${BUS_PORT_OFFSET} also free in ${PORT_PICK_ATTEMPTS} tries`,
  );
}

function probeListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ host: LOOPBACK, port }, () => {
      const bound = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(bound));
    });
  });
}

async function stopCluster(nodes: readonly RedisNode[], dir: string): Promise<void> {
  await Promise.all(nodes.map((node) => node.stop('SIGTERM')));
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  liveDirs.delete(dir);
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

function adminClient(port: number, password: string | undefined): Redis {
  const client = new Redis({
    host: LOOPBACK,
    port,
    password,
    // Fail fast and let pollUntil retry: a booting or stopped node must not stall a probe.
    maxRetriesPerRequest: 0,
    commandTimeout: 2000,
    connectTimeout: 2000,
    retryStrategy: () => POLL_INTERVAL_MS,
  });
  // Refused connections while a node boots are expected; the probes report what matters.
  client.on('error', () => {});
  return client;
}

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

/**
 * Runs `probe` until it reports no problem (undefined) or the deadline passes, then
 * returns the last problem. Launcher errors thrown by the probe abort at once; other
 * errors (refused connection, LOADING) count as "not yet".
 */
async function pollUntil(
  deadline: number,
  probe: () => Promise<string | undefined>,
): Promise<string | undefined> {
  for (;;) {
    let problem: string | undefined;
    try {
      problem = await probe();
    } catch (error) {
      if (error instanceof DevClusterError) throw error;
      problem = error instanceof Error ? error.message : String(error);
    }
    if (problem === undefined || Date.now() >= deadline) return problem;
    await sleep(POLL_INTERVAL_MS);
  }
}

// ioredis types the CLUSTER NODES reply as unknown; it is one text blob, a line per node.
async function clusterNodesOf(client: Redis): Promise<string> {
  return String(await client.cluster('NODES'));
}

async function tailOf(logPath: string): Promise<string> {
  try {
    const text = await readFile(logPath, 'utf8');
    return text.trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '(no log written)';
  }
}
