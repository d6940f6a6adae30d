/**
 * One HTTP thread of a gateway process: attaches to the process's tier and serves the
 * routes on the shared port (`reusePort`: each thread has its own listening socket and
 * the kernel spreads connections over them). Node's own limits close slow or malformed
 * clients without disturbing others; they are set explicitly here.
 *
 * On `drain` it stops accepting, lets in-flight requests finish (idle keep-alive
 * connections are closed at once), and reports `drained`.
 */

import { createServer } from 'node:http';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { attachTier, type TierHandle } from '../tier/index.ts';
import { makeWriteGuard } from './auth.ts';
import { ThreadMetrics } from './metrics.ts';
import { requestHandler } from './routes.ts';
import type { ToMain, ToThread } from './thread-messages.ts';

export interface HttpThreadData {
  handle: TierHandle;
  host: string;
  port: number;
  token: string | undefined;
  logLevel: string;
}

/** Limits for every connection (Node's defaults, stated and tightened). */
export const HTTP_LIMITS = {
  /** Whole request headers must arrive within this (slowloris). */
  headersTimeout: 10_000,
  /** A whole request (headers and body) must arrive within this. */
  requestTimeout: 30_000,
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeout: 5_000,
  /** Largest request head, in bytes (431 beyond). */
  maxHeaderSize: 16 * 1024,
  /** Requests served on one connection before it is closed (spreads load after scale-out). */
  maxRequestsPerSocket: 10_000,
} as const;

const data = workerData as HttpThreadData;
const port = parentPort;
if (port === null) throw new Error('http-thread.ts runs as a worker thread');
const log = pino({ level: data.logLevel, base: { pid: process.pid, thread: threadId } });
const tier = attachTier(data.handle);
const metrics = new ThreadMetrics();
const config = data.handle.config;
let draining = false;
let nextScrape = 1;
const scrapes = new Map<
  number,
  (r: { text: string; contentType: string; failed?: boolean }) => void
>();

const send = (m: ToMain) => port.postMessage(m);

const server = createServer(
  {
    headersTimeout: HTTP_LIMITS.headersTimeout,
    requestTimeout: HTTP_LIMITS.requestTimeout,
    keepAliveTimeout: HTTP_LIMITS.keepAliveTimeout,
    maxHeaderSize: HTTP_LIMITS.maxHeaderSize,
  },
  requestHandler({
    tier,
    maxKeyBytes: config.maxKeyBytes,
    maxValueBytes: config.maxValueBytes,
    guardWrite: makeWriteGuard(data.token),
    metrics,
    isDraining: () => draining,
    log,
    scrape: () =>
      new Promise((resolve, reject) => {
        const id = nextScrape++;
        const timer = setTimeout(() => {
          scrapes.delete(id);
          reject(Object.assign(new Error('metrics scrape timed out'), { code: 'HS_ERR_TIMEOUT' }));
        }, 2000);
        scrapes.set(id, (r) => {
          clearTimeout(timer);
          scrapes.delete(id);
          if (r.failed) reject(new Error('metrics scrape failed'));
          else resolve(r);
        });
        send({ t: 'scrape', id });
      }),
  }),
);
server.maxRequestsPerSocket = HTTP_LIMITS.maxRequestsPerSocket;
server.on('clientError', (error, socket) => {
  // Malformed HTTP, oversized headers, timeouts: answer if we still can, then close.
  const code = (error as { code?: string }).code;
  const status =
    code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  if (socket.writable && !socket.destroyed)
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    );
  else socket.destroy();
});

port.on('message', async (m: ToThread) => {
  if (m.t === 'collect')
    send({ t: 'metrics', id: m.id, json: await metrics.registry.getMetricsAsJSON() });
  else if (m.t === 'scraped') scrapes.get(m.id)?.(m);
  else if (m.t === 'drain') {
    draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive connections go as soon as they fall idle (a response in flight is
    // finished first, and says `connection: close`), not after keepAliveTimeout.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.closeIdleConnections();
    const deadline = setTimeout(() => server.closeAllConnections(), m.deadlineMs);
    await closed;
    clearInterval(sweep);
    clearTimeout(deadline);
    await tier.close();
    send({ t: 'drained' });
  }
});

server.listen({ host: data.host, port: data.port, reusePort: true, exclusive: true }, () => {
  const address = server.address();
  send({
    t: 'listening',
    port: typeof address === 'object' && address !== null ? address.port : data.port,
  });
});
