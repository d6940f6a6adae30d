/**
 * The refresher thread of a tier, as the owning thread sees it: a piscina pool of exactly
 * one worker (workers/refresher.ts). piscina respawns the worker if it dies (the
 * replacement takes over the L1 writer and says hello, and waiting callers ask again)
 * and carries the owner's few calls as tasks: `close`, `metrics`, `status`.
 */

import { Piscina } from 'piscina';
import { HotshieldError } from '../errors.ts';
import { type L1Handle, releaseThread } from '../l1/index.ts';
import type { Unflushed } from '../refresher/counter-flusher.ts';
import { raceTimeout } from '../refresher/deadline.ts';
import type { RefresherTask, RefresherWorkerData } from '../refresher/thread.ts';
import { workerFile } from '../worker-file.ts';
import type { RefresherStatus } from './types.ts';

/** How long a metrics scrape or a status call waits for the refresher. */
const REFRESHER_ANSWER_MS = 1000;
/** How long close waits for the refresher to finish before terminating it. */
const REFRESHER_CLOSE_MS = 5_000;

export interface RefresherPool {
  /** Flush the counters and stop the refresher; rejects with HS_ERR_UNFLUSHED if Redis did not take them all. */
  close(): Promise<void>;
  metrics(): Promise<object[]>;
  status(): Promise<RefresherStatus>;
  /** Stop the thread without closing anything (a refresher that never came up). */
  destroy(): Promise<void>;
  /** The threads running the refresher now (one), for the fault tests that kill it. */
  threads(): ReadonlyArray<{ terminate(): Promise<number> }>;
}

export function startRefresherPool(data: RefresherWorkerData): RefresherPool {
  const pool = new Piscina<RefresherTask, unknown>({
    filename: workerFile('refresher').href,
    minThreads: 1,
    maxThreads: 1,
    // The refresher must keep its event loop free to hear asks between tasks.
    atomics: 'disabled',
    concurrentTasksPerWorker: 4,
    maxQueue: 16,
    workerData: data,
  });
  // A crashed refresher is replaced by piscina; its 'error' must not crash this thread.
  pool.on('error', () => {});
  releaseDeadRefreshers(pool, data.l1);
  const ask = <T>(task: RefresherTask, what: string): Promise<T> =>
    // No abort signal here: piscina aborts a running task by terminating its worker.
    raceTimeout(
      pool.run(task) as Promise<T>,
      REFRESHER_ANSWER_MS,
      () =>
        new HotshieldError('HS_ERR_TIMEOUT', `the refresher did not report its ${what} in time`),
    );
  return {
    async close() {
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
    },
    metrics: () => ask<object[]>({ op: 'metrics' }, 'metrics'),
    status: () => ask<RefresherStatus>({ op: 'status' }, 'status'),
    destroy: () => pool.destroy(),
    threads: () => pool.threads,
  };
}

/**
 * A dead refresher's registry line and writer word are released for its successor. The
 * id must be read while the worker lives: an exited worker reports -1.
 */
function releaseDeadRefreshers(pool: Piscina, l1: L1Handle): void {
  const threadIds = new WeakMap<object, number>();
  pool.on('workerCreate', (worker: { id: number }) => threadIds.set(worker, worker.id));
  pool.on('workerDestroy', (worker: { id: number }) => {
    const id = threadIds.get(worker);
    if (id !== undefined && id >= 0) releaseThread(l1, id);
  });
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
