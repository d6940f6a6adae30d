/**
 * One HTTP thread of a gateway process (started from workers/http-thread.ts): attaches to
 * the process's tier and serves the routes on the shared port (`reusePort`: each thread
 * has its own listening socket and the kernel spreads connections over them). Node's own
 * limits close slow or malformed clients without disturbing others; they are set
 * explicitly (http-limits.ts), with two of ours: at most HTTP_LIMITS.maxPipelined replies
 * outstanding per connection, and a malformed request pipelined behind others closes the
 * connection once they are answered (its 400 would be read as their reply). CONNECT gets
 * the route's answer like any other method instead of a silent close.
 *
 * On `drain` it stops accepting, lets in-flight requests finish (idle keep-alive
 * connections are closed at once), and reports `drained`.
 */

import { createServer, type IncomingMessage, type Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { threadId } from 'node:worker_threads';
import { HotshieldError } from '../errors.ts';
import { createLogger, type LogFormat } from '../log.ts';
import { attachTier, type TierHandle } from '../tier/index.ts';
import { makeWriteGuard } from './auth.ts';
import { HTTP_LIMITS } from './http-limits.ts';
import { RequestStats } from './request-stats.ts';
import { requestHandler } from './routes.ts';
import type { ToMain, ToThread } from './thread-messages.ts';

export interface HttpThreadData {
  handle: TierHandle;
  host: string;
  port: number;
  token: string | undefined;
  logLevel: string;
  logFormat: LogFormat;
  /** This thread's request-stats block (request-stats.ts), owned by the main thread. */
  requestStats: SharedArrayBuffer;
}

/** What the thread needs of its link to the process's main thread. */
interface MainPort {
  postMessage(message: ToMain): void;
  on(event: 'message', listener: (message: ToThread) => void): unknown;
}

/** How long a thread waits for the main thread to merge a scrape. */
const SCRAPE_TIMEOUT_MS = 2000;
/** How often a draining thread closes the keep-alive connections that fell idle. */
const DRAIN_SWEEP_MS = 50;

type Scraped = { text: string; contentType: string; failed?: boolean };

/** Scrapes asked of the main thread and their answers (`scraped`), matched by id. */
function scrapeClient(send: (m: ToMain) => void) {
  let next = 1;
  const waiting = new Map<number, (r: Scraped) => void>();
  return {
    scrape: (): Promise<{ text: string; contentType: string }> =>
      new Promise((resolve, reject) => {
        const id = next++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new HotshieldError('HS_ERR_TIMEOUT', 'metrics scrape timed out'));
        }, SCRAPE_TIMEOUT_MS);
        waiting.set(id, (r) => {
          clearTimeout(timer);
          waiting.delete(id);
          if (r.failed) reject(new HotshieldError('HS_ERR_INTERNAL', 'metrics scrape failed'));
          else resolve(r);
        });
        send({ t: 'scrape', id });
      }),
    answered: (id: number, r: Scraped): void => waiting.get(id)?.(r),
  };
}

/**
 * Per connection: the request served last with its response, how many requests it has
 * carried, and how many replies Node holds queued behind an unfinished one (pipelining).
 * A malformed request pipelined behind one still being served must not be answered at
 * once: the status line would be read as that one's reply (a PUT that was applied would
 * look refused).
 */
interface Serving {
  req: IncomingMessage;
  res: ServerResponse;
  served: number;
  queued: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The server with Node's limits set and our two connection rules around `handler`. */
function limitedServer(handler: Handler): Server {
  const serving = new WeakMap<Socket, Serving>();
  const serve: Handler = (req, res) => {
    const socket = req.socket;
    let conn = serving.get(socket);
    if (conn === undefined) {
      conn = { req, res, served: 0, queued: 0 };
      serving.set(socket, conn);
    }
    // A connection is recycled (so load spreads again after a scale-out) by closing it
    // after a reply, not by Node's maxRequestsPerSocket: that one answers every request
    // a client pipelined past the limit with a 503 and keeps the connection open for
    // more. Requests pipelined behind the closing reply are not processed at all (RFC
    // 9112 §9.6): Node ends the connection once that reply is sent, so theirs could
    // never reach the client, and a write done without a reply would be done twice by a
    // client that sends it again.
    if (++conn.served > HTTP_LIMITS.maxRequestsPerSocket) return;
    if (conn.served === HTTP_LIMITS.maxRequestsPerSocket) res.setHeader('connection', 'close');
    conn.req = req;
    conn.res = res;
    // Node gives a response the socket at once unless an earlier one is unfinished; only
    // those it queues need counting (no listener on the common, unpipelined request), and
    // each stops counting when Node hands it the socket ('socket'). Unsent replies are
    // the queued ones plus the one being sent.
    if (res.socket === null) {
      if (conn.queued + 1 >= HTTP_LIMITS.maxPipelined) {
        // Pipelining deeper than any client needs, and not reading the replies: cut it off.
        socket.destroy();
        return;
      }
      conn.queued++;
      const c = conn;
      res.once('socket', () => c.queued--);
    }
    handler(req, res);
  };
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
  return server;
}

/** Stop accepting and resolve once every connection is gone (at the latest `deadlineMs`). */
async function drainServer(server: Server, deadlineMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive connections go as soon as they fall idle (a response in flight is
  // finished first, and says `connection: close`), not after keepAliveTimeout.
  const sweep = setInterval(() => server.closeIdleConnections(), DRAIN_SWEEP_MS);
  server.closeIdleConnections();
  const deadline = setTimeout(() => server.closeAllConnections(), deadlineMs);
  await closed;
  clearInterval(sweep);
  clearTimeout(deadline);
}

/** Serve the gateway's routes on `data.port` until the main thread says `drain`. */
export function startHttpThread(data: HttpThreadData, main: MainPort): void {
  const send = (m: ToMain) => main.postMessage(m);
  const log = createLogger({
    level: data.logLevel,
    format: data.logFormat,
    base: { pid: process.pid, thread: threadId },
  });
  const tier = attachTier(data.handle);
  const metrics = new RequestStats(data.requestStats);
  const config = data.handle.config;
  const scrapes = scrapeClient(send);
  let draining = false;
  const server = limitedServer(
    requestHandler({
      tier,
      maxKeyBytes: config.maxKeyBytes,
      maxValueBytes: config.maxValueBytes,
      guardWrite: makeWriteGuard(data.token),
      metrics,
      isDraining: () => draining,
      log,
      scrape: scrapes.scrape,
    }),
  );
  main.on('message', async (m: ToThread) => {
    if (m.t === 'scraped') scrapes.answered(m.id, m);
    else if (m.t === 'drain') {
      draining = true;
      await drainServer(server, m.deadlineMs);
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
}
