/**
 * createTier (the owning thread) and attachTier (any other thread).
 *
 * createTier validates the options, allocates the L1 and the control block, and starts
 * the refresher in a piscina pool of one worker: piscina respawns it if it dies (the
 * replacement takes over the L1 writer and says hello, and waiting callers ask again),
 * and carries the owner's `close`. It resolves once the refresher listens and Redis is
 * connected, or after connectTimeout with Redis still connecting (reads then fail fast
 * until it is, and the tier never refuses to start because Redis is down).
 */

import { Piscina } from 'piscina';
import type { Unflushed } from '../counters/flusher.ts';
import { HotshieldError } from '../errors.ts';
import { createL1, L1Error, type L1Handle, releaseThread } from '../l1/index.ts';
import { Control, createControl } from '../refresher/control.ts';
import { raceTimeout } from '../refresher/deadline.ts';
import type { RefresherTask, RefresherWorkerData } from '../refresher/worker.ts';
import { type TierConfig, type TierOptions, tierConfigOf } from './options.ts';
import { HANDLE_KIND, type RefresherStatus, Tier, type TierHandle } from './tier.ts';

/** How long the refresher thread may take to start listening. */
const REFRESHER_START_MS = 10_000;
/** How long a metrics scrape waits for the refresher. */
const REFRESHER_METRICS_MS = 1000;
/** How long close waits for the refresher to finish before terminating it. */
const REFRESHER_CLOSE_MS = 5_000;

/** The refresher pool behind a tier created here (for fault tests; not exported publicly). */
const pools = new WeakMap<Tier, Piscina>();

export function refresherPoolOf(tier: Tier): Piscina | undefined {
  return pools.get(tier);
}

// Same extension as this module: .ts when run from source, .js from the published build.
const WORKER_FILE = new URL(
  `../refresher/worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
).href;

export async function createTier(options: TierOptions): Promise<Tier> {
  const config = tierConfigOf(options);
  const l1 = l1For(config);
  const controlSab = createControl();
  const handle: TierHandle = Object.freeze({ kind: HANDLE_KIND, l1, control: controlSab, config });
  const control = new Control(controlSab);
  const workerData: RefresherWorkerData = { l1, control: controlSab, config };
  const pool = new Piscina<RefresherTask, unknown>({
    filename: WORKER_FILE,
    minThreads: 1,
    maxThreads: 1,
    // The refresher must keep its event loop free to hear asks between tasks.
    atomics: 'disabled',
    concurrentTasksPerWorker: 4,
    maxQueue: 16,
    workerData,
  });
  // A crashed refresher is replaced by piscina; its 'error' must not crash this thread.
  pool.on('error', () => {});
  // A dead refresher's registry line and writer word are released for its successor.
  // The id must be read while the worker lives: an exited worker reports -1.
  const threadIds = new WeakMap<object, number>();
  pool.on('workerCreate', (worker: { id: number }) => threadIds.set(worker, worker.id));
  pool.on('workerDestroy', (worker: { id: number }) => {
    const id = threadIds.get(worker);
    if (id !== undefined && id >= 0) releaseThread(l1, id);
  });
  if (!(await control.waitForRefresher(0, REFRESHER_START_MS))) {
    await pool.destroy();
    throw new HotshieldError(
      'HS_ERR_TIMEOUT',
      `the refresher thread did not start within ${REFRESHER_START_MS} ms`,
    );
  }
  await waitForState(control, config.connectTimeoutMs);
  const close = async (): Promise<void> => {
    control.close();
    let unflushed: Unflushed[] | undefined;
    try {
      unflushed = (await pool.run(
        { op: 'close' },
        { signal: AbortSignal.timeout(REFRESHER_CLOSE_MS) },
      )) as Unflushed[];
    } catch {
      // A refresher that cannot close in time is terminated by destroy() below.
    }
    await pool.destroy();
    if (unflushed === undefined || unflushed.length > 0) throw unflushedError(unflushed);
  };
  // No abort signal here: piscina aborts a running task by terminating its worker.
  const metrics = (): Promise<object[]> =>
    raceTimeout(
      pool.run({ op: 'metrics' }) as Promise<object[]>,
      REFRESHER_METRICS_MS,
      () =>
        new HotshieldError('HS_ERR_TIMEOUT', 'the refresher did not report its metrics in time'),
    );
  const status = (): Promise<RefresherStatus> =>
    raceTimeout(
      pool.run({ op: 'status' }) as Promise<RefresherStatus>,
      REFRESHER_METRICS_MS,
      () => new HotshieldError('HS_ERR_TIMEOUT', 'the refresher did not report its status in time'),
    );
  const tier = new Tier(handle, { close, metrics, status });
  pools.set(tier, pool);
  return tier;
}

/** Attach this thread to a tier created elsewhere; `handle` is `tier.handle` from workerData. */
export function attachTier(handle: TierHandle): Tier {
  if (handle === null || typeof handle !== 'object' || handle.kind !== HANDLE_KIND) {
    throw new HotshieldError(
      'HS_ERR_HANDLE',
      'attachTier needs tier.handle from createTier (pass it in workerData)',
    );
  }
  return new Tier(handle);
}

function l1For(config: TierConfig): L1Handle {
  try {
    return createL1({
      bytes: config.l1Bytes,
      maxKeyBytes: config.maxKeyBytes,
      maxValueBytes: config.maxValueBytes,
      maxThreads: config.maxThreads,
      maxCounters: config.maxCounters,
    });
  } catch (error) {
    // The L1's message names the options to change (l1Bytes, maxValueBytes…).
    if (error instanceof L1Error)
      throw new HotshieldError('HS_ERR_OPTION', error.message, { cause: error });
    throw error;
  }
}

/** close() could not flush every increment (or could not tell: the refresher hung). */
function unflushedError(unflushed: Unflushed[] | undefined): HotshieldError {
  if (unflushed === undefined) {
    return new HotshieldError(
      'HS_ERR_UNFLUSHED',
      `the refresher did not close within ${REFRESHER_CLOSE_MS} ms; counter increments not yet flushed are lost`,
    );
  }
  const shown = unflushed.slice(0, 10).map((u) => {
    const parts = [];
    if (u.unsent !== 0n) parts.push(`${u.unsent} never sent (lost)`);
    if (u.unknown !== 0n) parts.push(`${u.unknown} sent without an answer (Redis may apply it)`);
    return `${u.name}: ${parts.join(', ')}`;
  });
  const more = unflushed.length > 10 ? `; and ${unflushed.length - 10} more counters` : '';
  return new HotshieldError(
    'HS_ERR_UNFLUSHED',
    `Redis did not acknowledge every counter increment before close: ${shown.join('; ')}${more}`,
  );
}

async function waitForState(control: Control, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (control.state !== 'l2Ready' && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
}
