/**
 * An HTTP thread of a gateway process (gateway/process.ts starts T of them): everything
 * it does is in src/gateway/http-server.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type HttpThreadData, startHttpThread } from '../src/gateway/http-server.ts';

if (parentPort === null) throw new Error('workers/http-thread.ts runs as a worker thread');
startHttpThread(workerData as HttpThreadData, parentPort);
