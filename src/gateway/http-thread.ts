/**
 * One HTTP thread of a gateway process: attaches to the process's tier and serves the
 * routes on the shared port (`reusePort`: each thread has its own listening socket and
 * the kernel spreads connections over them). Node's own limits close slow or malformed
 * clients without disturbing others; they are set explicitly here, with two of ours: at
 * most HTTP_LIMITS.maxPipelined replies outstanding per connection, and a malformed
 * request pipelined behind others closes the connection once they are answered (its 400
 * would be read as their reply). CONNECT gets the route's answer like any other method
 * instead of a silent close.
 *
 * On `drain` it stops accepting, lets in-flight requests finish (idle keep-alive
 * connections are closed at once), and reports `drained`.
 */

import { createServer, type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
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
  /** How often the two timeouts above are checked (they fire up to this much late). */
  checkingInterval: 1_000,
  /**
   * Replies one connection may have outstanding (pipelining; deeper, the connection is
   * closed). Node parses every request of a read at once: without a bound, a client that
   * sends 40-byte GETs of a large value and never reads has us hold every reply.
   */
  maxPipelined: 32,
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

const handler = requestHandler({
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
});
/**
 * Per connection: the request served last with its response, and the replies not sent
 * yet. A malformed request pipelined behind one still being served must not be answered
 * at once: the status line would be read as that one's reply (a PUT that was applied
 * would look refused).
 */
interface Serving {
  req: IncomingMessage;
  res: ServerResponse;
  unsent: number;
}
const serving = new WeakMap<Socket, Serving>();

function serve(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  const conn = serving.get(socket) ?? { req, res, unsent: 0 };
  conn.req = req;
  conn.res = res;
  conn.unsent++;
  serving.set(socket, conn);
  res.once('close', () => conn.unsent--);
  if (conn.unsent > HTTP_LIMITS.maxPipelined) {
    // Pipelining deeper than any client needs, and not reading the replies: cut it off.
    socket.destroy();
    return;
  }
  handler(req, res);
}

const server = createServer(
  {
    headersTimeout: HTTP_LIMITS.headersTimeout,
    requestTimeout: HTTP_LIMITS.requestTimeout,
    keepAliveTimeout: HTTP_LIMITS.keepAliveTimeout,
    maxHeaderSize: HTTP_LIMITS.maxHeaderSize,
    // How often Node enforces headersTimeout and requestTimeout: its default (30 s) let a
    // slowloris hold a connection for up to 40 s instead of 10.
    connectionsCheckingInterval: HTTP_LIMITS.checkingInterval,
  },
  serve,
);
server.maxRequestsPerSocket = HTTP_LIMITS.maxRequestsPerSocket;
server.on('clientError', (error, socket) => {
  // Malformed HTTP, oversized headers, timeouts: answer if we still can, then close.
  const code = (error as { code?: string }).code;
  const status =
    code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const conn = socket as Socket;
  const ahead = serving.get(conn);
  if (ahead?.req.complete && !ahead.res.writableFinished) {
    // The error is in a request behind one still being answered: send that reply, then close.
    ahead.res.once('close', () => conn.destroySoon());
    return;
  }
  if (socket.writable && !socket.destroyed)
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    );
  else socket.destroy();
});

// CONNECT is not ours to serve, but without a listener Node drops the connection without
// a word. It gets the route's answer instead (405 with Allow, 404, 400), then the close.
server.on('connect', (req, socket: Socket) => {
  // Node has taken its own listeners off this socket: an error here must not go unheard.
  socket.on('error', () => socket.destroy());
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.once('finish', () => {
    res.detachSocket(socket);
    socket.destroySoon();
  });
  handler(req, res);
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
