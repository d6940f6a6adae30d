/**
 * A gateway process: its main thread creates the tier (one L1 and one refresher for the
 * whole process) and runs T HTTP threads on one port. A thread that dies is replaced
 * (with backoff if it keeps dying); the L1 survives it. `drain()` stops every thread
 * accepting, lets in-flight requests finish, closes the tier.
 */

import { createServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { LogFormat, Logger } from '../log.ts';
import { createTier, type Tier, type TierOptions } from '../tier/index.ts';
import { workerFile } from '../worker-file.ts';
import { watchHotKeys } from './hot-watch.ts';
import type { HttpThreadData } from './http-server.ts';
import { mergeMetrics, processRegistry } from './metrics.ts';
import { readRequestStats, requestStatsBlock } from './request-stats.ts';
import type { ToMain, ToThread } from './thread-messages.ts';

const THREAD_FILE = workerFile('http-thread');
const RESPAWN_MIN_MS = 100;
const RESPAWN_MAX_MS = 5000;
/** A thread that lived this long counts as healthy: its replacement starts without delay. */
const HEALTHY_AFTER_MS = 10_000;

/** What a gateway process is started with (the cli's frozen configuration has it all). */
export interface GatewayProcessConfig {
  host: string;
  /** 0: pick a free port. */
  port: number;
  threads: number;
  /** Tier options from the flags (without `redis`). */
  tier: Omit<TierOptions, 'redis'>;
  token: string | undefined;
  /** Export the hot keys themselves as metrics (`--hot-key-metrics`). */
  hotKeyMetrics: boolean;
  logLevel: string;
  logFormat: LogFormat;
}

export interface GatewayProcess {
  tier: Tier;
  port: number;
  /** Threads started since the process began (respawns included). */
  threadStarts(): number;
  /** The HTTP threads running now (for supervision and diagnostics). */
  threads(): Worker[];
  /** Stop accepting, finish in-flight requests (at most `deadlineMs`), close the tier. */
  drain(deadlineMs: number): Promise<void>;
}

/** A free port, so that every thread can bind the same one with reusePort. */
async function freePort(host: string): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) =>
    probe.once('error', reject).listen({ host, port: 0 }, resolve),
  );
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  if (typeof address !== 'object' || address === null)
    throw new Error('could not pick a free port');
  return address.port;
}

/** How often the process looks at the refresher's view of Redis, to log its changes. */
const REDIS_WATCH_MS = 1000;

/**
 * Log when Redis becomes unreachable (with what it or ioredis last said, e.g. WRONGPASS)
 * and when it is back: otherwise an operator sees only 503s. Returns a stop function.
 */
function watchRedis(tier: Tier, log: Logger): () => void {
  let reported = 'l2Ready';
  const check = async () => {
    const { state } = tier.stats().refresher;
    if (state === reported || state === 'starting') return;
    reported = state;
    if (state === 'l2Ready') {
      log.info({ redis: state }, 'Redis is reachable');
      return;
    }
    const { lastError } = await tier.refresherStatus();
    log.warn(
      { redis: state, lastError },
      'Redis is unreachable: reads of uncached keys and writes fail with 503',
    );
  };
  // At start too: a gateway that comes up without Redis says so at once.
  check().catch(() => {});
  const timer = setInterval(() => check().catch(() => {}), REDIS_WATCH_MS);
  timer.unref();
  return () => clearInterval(timer);
}

export async function startGatewayProcess(
  config: GatewayProcessConfig,
  redis: string,
  log: Logger,
): Promise<GatewayProcess> {
  const tier = await createTier({ ...config.tier, redis, codec: 'raw' });
  const stopWatchingRedis = watchRedis(tier, log);
  const stopWatchingHeat = tier.handle.config.hotKeys
    ? watchHotKeys(tier, tier.handle.config.hotThreshold, log)
    : () => {};
  const stopWatching = () => {
    stopWatchingRedis();
    stopWatchingHeat();
  };
  const port = config.port === 0 ? await freePort(config.host) : config.port;
  const registry = processRegistry(tier, { hotKeyMetrics: config.hotKeyMetrics });
  const threads = new Set<Worker>();
  let starts = 0;
  let draining = false;
  // One request-stats block per thread slot: a replacement thread counts on in its block.
  const blocks = Array.from({ length: config.threads }, requestStatsBlock);

  const data: Omit<HttpThreadData, 'requestStats'> = {
    handle: tier.handle,
    host: config.host,
    port,
    token: config.token,
    logLevel: config.logLevel,
    logFormat: config.logFormat,
  };

  async function scrape(): Promise<{ text: string; contentType: string }> {
    const parts: object[][] = [
      await registry.getMetricsAsJSON(),
      await tier.refresherMetrics(),
      ...readRequestStats(blocks),
    ];
    return mergeMetrics(parts);
  }

  function start(delayMs: number, requestStats: SharedArrayBuffer): Promise<void> {
    return new Promise((listening, failed) => {
      setTimeout(() => {
        if (draining) return listening();
        const workerData: HttpThreadData = { ...data, requestStats };
        const worker = new Worker(THREAD_FILE, { workerData });
        const id = worker.threadId;
        const born = performance.now();
        starts++;
        threads.add(worker);
        worker.on('message', (m: ToMain) => {
          if (m.t === 'listening') listening();
          else if (m.t === 'scrape') {
            scrape().then(
              (r) => worker.postMessage({ t: 'scraped', id: m.id, ...r } satisfies ToThread),
              (error: unknown) => {
                log.error({ err: error }, 'metrics scrape failed');
                worker.postMessage({
                  t: 'scraped',
                  id: m.id,
                  text: '',
                  contentType: '',
                  failed: true,
                } satisfies ToThread);
              },
            );
          }
        });
        worker.on('error', (error) => {
          log.error({ err: error, thread: id }, 'HTTP thread crashed');
          failed(error);
        });
        worker.on('exit', (code) => {
          threads.delete(worker);
          tier.releaseThread(id);
          if (draining) return;
          const lived = performance.now() - born;
          const next =
            lived > HEALTHY_AFTER_MS
              ? 0
              : Math.min(RESPAWN_MAX_MS, Math.max(RESPAWN_MIN_MS, delayMs * 2));
          log.warn(
            { thread: id, code, respawnInMs: next },
            'HTTP thread exited; starting a replacement',
          );
          start(next, requestStats).catch(() => {});
        });
      }, delayMs);
    });
  }

  try {
    await Promise.all(blocks.map((block) => start(0, block)));
  } catch (error) {
    draining = true;
    stopWatching();
    await Promise.all([...threads].map((w) => w.terminate()));
    await tier.close().catch((e: Error) => log.error({ err: e }, 'closing the tier failed'));
    throw error;
  }

  return {
    tier,
    port,
    threadStarts: () => starts,
    threads: () => [...threads],
    async drain(deadlineMs: number): Promise<void> {
      if (draining) return;
      draining = true;
      stopWatching();
      await Promise.all(
        [...threads].map(
          (w) =>
            new Promise<void>((resolve) => {
              const kill = setTimeout(() => w.terminate().then(() => resolve()), deadlineMs + 1000);
              w.once('exit', () => {
                clearTimeout(kill);
                resolve();
              });
              w.on('message', (m: ToMain) => {
                if (m.t === 'drained') w.terminate();
              });
              w.postMessage({ t: 'drain', deadlineMs } satisfies ToThread);
            }),
        ),
      );
      // The last counter increments are flushed here; what Redis would not take is lost.
      await tier.close().catch((e: Error) => log.error({ err: e }, 'closing the tier failed'));
    },
  };
}
