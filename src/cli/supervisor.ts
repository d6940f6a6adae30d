/**
 * The node:cluster primary: starts P gateway processes, restarts one that dies (with
 * backoff while it keeps dying), and on SIGTERM/SIGINT asks each to drain, waits for
 * them (killing stragglers after the deadline), stops the throwaway Redis Cluster if it
 * started one, and exits 0.
 */

import cluster, { type Worker } from 'node:cluster';
import { type RedisClusterHandle, startRedisCluster } from '../dev/redis-cluster.ts';
import type { Logger } from '../log.ts';
import { redactRedis } from '../tier/index.ts';
import type { GatewayConfig } from './config.ts';

export { redactRedis };

/** How long a gateway process may take to drain before it is killed. */
export const DRAIN_DEADLINE_MS = 10_000;
const RESTART_MIN_MS = 200;
const RESTART_MAX_MS = 10_000;
const HEALTHY_AFTER_MS = 30_000;

export const SHUTDOWN_MESSAGE = 'hotshield:shutdown';
/** Sent by a gateway process once its threads listen. */
export const LISTENING_MESSAGE = 'hotshield:listening';
/** Gateway processes that may die in a row before listening, before the supervisor gives up. */
const MAX_FAILED_STARTS = 5;

export async function runPrimary(config: GatewayConfig, log: Logger): Promise<void> {
  let local: RedisClusterHandle | undefined;
  let redis = config.redis;
  if (redis === undefined) {
    local = await startRedisCluster({ masters: 3 });
    redis = local.seeds;
    const url = `http://${config.host}:${config.port}`;
    log.info(
      { seeds: redis },
      'no --redis given: started a throwaway local Redis Cluster (3 masters), deleted on exit',
    );
    log.info(
      `try: curl -X PUT --data hello ${url}/v1/kv/greeting && curl -i ${url}/v1/kv/greeting`,
    );
  }
  if (config.token === undefined)
    log.warn('no --token: only loopback clients may write (PUT, DELETE, counter increments)');
  // The gateway processes log as this one decided (they may not see its terminal).
  const env = { HOTSHIELD_REDIS: redis, HOTSHIELD_LOG_FORMAT: config.logFormat };
  let stopping = false;
  let delay = RESTART_MIN_MS;
  let failedStarts = 0;
  const born = new Map<Worker, number>();
  const listening = new WeakSet<Worker>();

  const fork = (): void => {
    const worker = cluster.fork(env);
    born.set(worker, performance.now());
    worker.on('message', (m) => {
      if (m !== LISTENING_MESSAGE) return;
      listening.add(worker);
      failedStarts = 0;
    });
  };
  cluster.on('exit', (worker, code, signal) => {
    const lived = performance.now() - (born.get(worker) ?? 0);
    born.delete(worker);
    if (stopping) return;
    // A process that cannot even start (port taken, Redis option refused…) will not
    // start the next time either: after a few in a row, stop instead of looping.
    if (!listening.has(worker) && ++failedStarts >= MAX_FAILED_STARTS) {
      log.fatal(
        { worker: worker.process.pid, code, failedStarts },
        'gateway processes keep failing to start; giving up',
      );
      void shutdown('gateway processes fail to start', 1);
      return;
    }
    delay = lived > HEALTHY_AFTER_MS ? RESTART_MIN_MS : Math.min(RESTART_MAX_MS, delay * 2);
    log.error(
      { worker: worker.process.pid, code, signal, restartInMs: delay },
      'gateway process died; restarting',
    );
    setTimeout(() => {
      if (!stopping) fork();
    }, delay);
  });
  for (let i = 0; i < config.processes; i++) fork();

  async function shutdown(reason: string, exitCode = 0): Promise<void> {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'draining gateway processes');
    const workers = Object.values(cluster.workers ?? {}).filter(
      (w): w is Worker => w !== undefined,
    );
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            const kill = setTimeout(() => w.process.kill('SIGKILL'), DRAIN_DEADLINE_MS + 2000);
            w.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            w.send(SHUTDOWN_MESSAGE);
          }),
      ),
    );
    await local?.stop();
    log.info('stopped');
    process.exit(exitCode);
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  // `npm start` signals only its `sh -c` wrapper: if our parent goes, we go too.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void shutdown('parent exited');
  }, 1000).unref();
}
