/**
 * The refresher thread of a tier (run by a piscina pool of one worker: tier/refresher-pool.ts):
 * everything it does is in src/refresher/thread.ts; piscina calls the default export
 * with each task.
 */
import { workerData } from 'node:worker_threads';
import { type RefresherWorkerData, startRefresher } from '../src/refresher/thread.ts';

export default startRefresher(workerData as RefresherWorkerData);
