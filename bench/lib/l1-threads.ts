/**
 * Part 2 of `bench/l1.ts`: get-hit on 1 vs 2 worker threads. Two workers
 * (fixtures/l1-bench-worker.ts) attach to the tables of part 1 and stay up for the whole
 * part. Each round runs every configuration (contender × value size × 1 or 2 threads) in
 * a rotating order: the main thread tells the workers to start, sleeps for the round,
 * then raises the STOP word; each worker reports its own ops and elapsed time, and the
 * round's figure is the sum of the workers' rates. 1-thread rounds alternate workers.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { L1Handle } from '../../src/l1/index.ts';
import {
  type BenchRequest,
  type BenchWorkerData,
  CONTROL,
  type RunReply,
} from '../fixtures/l1-bench-worker.ts';
import { GET } from './l1-get.ts';
import { consume, type Plan } from './measure.ts';
import { progress } from './report.ts';

export interface ThreadRow {
  readonly valueBytes: number;
  readonly contender: string;
  /** Total ops/s of each round. */
  readonly oneThread: number[];
  readonly twoThreads: number[];
}

const KINDS = [
  { id: 'l1', name: GET.l1 },
  { id: 'map', name: 'Map.get (fresh key), one Map per thread' },
] as const;

/** Post `message` (none: just wait) and resolve with the worker's next message. */
function request<T>(w: Worker, message: BenchRequest | null): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = () => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
    };
    const onMessage = (m: T) => {
      done();
      resolve(m);
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    const onExit = (code: number) => {
      done();
      reject(new Error(`bench worker exited with code ${code}`));
    };
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
    if (message !== null) w.postMessage(message);
  });
}

export async function getTwoThreads(
  keys: string[],
  tables: { valueBytes: number; handle: L1Handle }[],
  plan: Plan,
  orderLength: number,
): Promise<ThreadRow[]> {
  const control = new SharedArrayBuffer(4);
  const ctl = new Int32Array(control);
  progress('get-hit, 1 vs 2 worker threads: starting workers');
  const workers = [0, 1].map((i) => {
    const workerData: BenchWorkerData = { control, keys, orderLength, orderSeed: 100 + i, tables };
    return new Worker(new URL('../fixtures/l1-bench-worker.ts', import.meta.url), { workerData });
  });
  try {
    await Promise.all(workers.map((w) => request(w, null)));
    const configs = tables.flatMap(({ valueBytes }) =>
      KINDS.flatMap((k) => [1, 2].map((threads) => ({ valueBytes, id: k.id, threads }))),
    );
    for (const { valueBytes } of tables) {
      for (const k of KINDS) {
        progress(`  warm-up ${k.id}:${valueBytes} in both workers`);
        const m: BenchRequest = {
          type: 'warm',
          contender: `${k.id}:${valueBytes}`,
          ms: plan.warmupMs,
        };
        await Promise.all(workers.map((w) => request(w, m)));
      }
    }
    const rates = configs.map(() => [] as number[]);
    for (let r = 0; r < plan.rounds; r++) {
      progress(`  round ${r + 1}/${plan.rounds}`);
      for (let k = 0; k < configs.length; k++) {
        const i = (k + r) % configs.length;
        const c = configs[i];
        const running = c.threads === 2 ? workers : [workers[r % 2]];
        Atomics.store(ctl, CONTROL.STOP, 0);
        const m: BenchRequest = { type: 'run', contender: `${c.id}:${c.valueBytes}` };
        const replies = Promise.all(running.map((w) => request<RunReply>(w, m)));
        await sleep(plan.roundMs);
        Atomics.store(ctl, CONTROL.STOP, 1);
        rates[i].push((await replies).reduce((sum, x) => sum + (x.ops / x.ns) * 1e9, 0));
      }
    }
    for (const w of workers) {
      const reply = await request<{ checksum: number }>(w, { type: 'close' });
      consume(reply.checksum);
    }
    const ratesOf = (valueBytes: number, id: string, threads: number) =>
      rates[
        configs.findIndex(
          (c) => c.valueBytes === valueBytes && c.id === id && c.threads === threads,
        )
      ];
    return tables.flatMap(({ valueBytes }) =>
      KINDS.map((k) => ({
        valueBytes,
        contender: k.name,
        oneThread: ratesOf(valueBytes, k.id, 1),
        twoThreads: ratesOf(valueBytes, k.id, 2),
      })),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
