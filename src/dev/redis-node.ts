/**
 * One `redis-server` child process of the throwaway local Redis Cluster (see
 * redis-cluster.ts), and what it takes to run it: the executable, its config, a free
 * port, and the registry that makes sure no child or temp dir outlives this process.
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
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { HotshieldError } from '../errors.ts';

export const LOOPBACK = '127.0.0.1';
const BUS_PORT_OFFSET = 10000;
const SYSTEM_REDIS_PORTS = new Set([6379, 6379 + BUS_PORT_OFFSET]);
const STOP_GRACE_MS = 5_000;
const POLL_INTERVAL_MS = 25;
const PORT_PICK_ATTEMPTS = 100;
const NODE_START_ATTEMPTS = 4;
const LOG_TAIL_LINES = 15;

export type RedisNodeRole = 'master' | 'replica';

/** The per-node part of the cluster's resolved options. */
export interface NodeSettings {
  readonly nodeTimeoutMs: number;
  readonly password: string | undefined;
  /** Written only when set: unset leaves Redis's default (yes / no). */
  readonly requireFullCoverage: boolean | undefined;
  readonly allowReadsWhenDown: boolean | undefined;
  readonly extraConfig: readonly string[];
  readonly log: (line: string) => void;
}

// ---------------------------------------------------------------------------------------
// Executable and config

export function findExecutable(command: string): string | undefined {
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
export function serverCommand(serverPath: string): readonly string[] {
  const setpriv = process.platform === 'linux' ? findExecutable('setpriv') : undefined;
  return setpriv === undefined ? [serverPath] : [setpriv, '--pdeathsig', 'KILL', '--', serverPath];
}

function nodeConfig(port: number, dir: string, config: NodeSettings): string {
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
  if (config.requireFullCoverage !== undefined) {
    lines.push(`cluster-require-full-coverage ${yesNo(config.requireFullCoverage)}`);
  }
  if (config.allowReadsWhenDown !== undefined) {
    lines.push(`cluster-allow-reads-when-down ${yesNo(config.allowReadsWhenDown)}`);
  }
  if (config.password !== undefined) {
    const password = quoteConfigValue(config.password);
    lines.push(`requirepass ${password}`, `masterauth ${password}`);
  }
  return `${[...lines, ...config.extraConfig].join('\n')}\n`;
}

function yesNo(value: boolean): 'yes' | 'no' {
  return value ? 'yes' : 'no';
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

export function installExitHooks(): void {
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

/** Registers a temp dir for removal by the exit hooks, until untrackTempDir(). */
export function trackTempDir(dir: string): void {
  liveDirs.add(dir);
}

export function untrackTempDir(dir: string): void {
  liveDirs.delete(dir);
}

export class RedisNode {
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
        throw new HotshieldError(
          /Address already in use/i.test(log)
            ? 'HS_ERR_REDIS_PORT_TAKEN'
            : 'HS_ERR_REDIS_NODE_START',
          `redis-server on port ${this.port} ${exitReason}\n${log}`,
        );
      });
      if (problem !== undefined) {
        throw new HotshieldError(
          'HS_ERR_REDIS_NODE_START',
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

export interface LaunchRequest {
  readonly role: RedisNodeRole;
  readonly dir: string;
  readonly reservedPorts: Set<number>;
  readonly config: NodeSettings;
  readonly command: readonly string[];
  readonly deadline: number;
  /** Every node ever spawned, failed attempts included, so a failed launch stops them all. */
  readonly spawned: RedisNode[];
}

export async function launchNode(request: LaunchRequest): Promise<RedisNode> {
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
      const portTaken = error instanceof HotshieldError && error.code === 'HS_ERR_REDIS_PORT_TAKEN';
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
  throw new HotshieldError(
    'HS_ERR_REDIS_NODE_START',
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

// ---------------------------------------------------------------------------------------
// Helpers

export function adminClient(port: number, password: string | undefined): Redis {
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

/**
 * Runs `probe` until it reports no problem (undefined) or the deadline passes, then
 * returns the last problem. Launcher errors thrown by the probe abort at once; other
 * errors (refused connection, LOADING) count as "not yet".
 */
export async function pollUntil(
  deadline: number,
  probe: () => Promise<string | undefined>,
): Promise<string | undefined> {
  for (;;) {
    let problem: string | undefined;
    try {
      problem = await probe();
    } catch (error) {
      if (error instanceof HotshieldError) throw error;
      problem = error instanceof Error ? error.message : String(error);
    }
    if (problem === undefined || Date.now() >= deadline) return problem;
    await sleep(POLL_INTERVAL_MS);
  }
}

export async function tailOf(logPath: string): Promise<string> {
  try {
    const text = await readFile(logPath, 'utf8');
    return text.trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '(no log written)';
  }
}
