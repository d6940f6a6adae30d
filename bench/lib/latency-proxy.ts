/**
 * A loopback TCP proxy that makes whatever is behind it look slow: the "slow-l2" scenario
 * puts one in front of a Redis node. A Redis Cluster node can announce the proxy's port
 * instead of its own (`CONFIG SET cluster-announce-port <proxy port>`), so cluster clients
 * learn the proxy's address from CLUSTER SLOTS / MOVED and connect through it.
 *
 * Only replies are delayed: bytes from the client go straight to the target, and every
 * chunk from the target is held for `delayMs` (as set when the chunk arrived) before it is
 * written to the client. So each request/reply round trip gets `delayMs` longer, and a
 * pipeline of requests sent together still comes back together. Chunks leave in the order
 * they arrived, always: after setDelayMs() lowers the delay, a new chunk waits behind the
 * older, later-due ones rather than overtaking them.
 *
 * Node built-ins only (node:net); meant for benchmarks and tests, not production.
 */

import { connect, createServer, type Server } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface LatencyProxy {
  /** The port the proxy listens on, on 127.0.0.1. */
  readonly port: number;
  /** The delay for reply chunks that arrive from now on; chunks already held keep theirs. */
  setDelayMs(ms: number): void;
  /** Stops listening and destroys every live connection (both sides). */
  close(): Promise<void>;
}

export interface LatencyProxyOptions {
  readonly targetPort: number;
  /** Default 127.0.0.1. */
  readonly targetHost?: string;
  readonly delayMs: number;
  /** Default 0: a free port chosen by the OS. */
  readonly listenPort?: number;
}

function checkDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`delayMs must be ≥ 0, got ${ms}`);
  return ms;
}

export async function startLatencyProxy(options: LatencyProxyOptions): Promise<LatencyProxy> {
  let delayMs = checkDelay(options.delayMs);
  const targetHost = options.targetHost ?? '127.0.0.1';
  /** One entry per live client connection; calling it destroys both sockets. */
  const live = new Set<() => void>();

  const server: Server = createServer((client) => {
    const upstream = connect({ port: options.targetPort, host: targetHost });
    client.setNoDelay(true);
    upstream.setNoDelay(true);

    // Target → client: a FIFO of held chunks, one timer for the head.
    const queue: { due: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    let upstreamEnded = false;

    const destroy = () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      queue.length = 0;
      client.destroy();
      upstream.destroy();
      live.delete(destroy);
    };
    live.add(destroy);

    const flush = () => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && queue[0].due <= now) {
        if (!client.write(queue.shift()!.chunk)) upstream.pause();
      }
      // A timer may fire a little early for performance.now(): then this just re-arms.
      if (queue.length > 0) timer = setTimeout(flush, queue[0].due - now);
      else if (upstreamEnded) client.end();
    };

    upstream.on('data', (chunk: Buffer) => {
      queue.push({ due: performance.now() + delayMs, chunk });
      if (timer === undefined) flush();
    });
    // The target finished cleanly: pass its FIN on once the held replies are out.
    upstream.on('end', () => {
      upstreamEnded = true;
      if (timer === undefined) flush();
    });
    client.on('drain', () => upstream.resume());

    // Client → target, undelayed; pipe() handles backpressure and the client's FIN.
    client.pipe(upstream);

    // Errors (refused target, reset client) end in 'close' with hadError: tear down both.
    // A clean close of the target leaves the client to flush(), which ends it.
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', destroy);
    upstream.on('close', (hadError) => {
      if (hadError || !upstreamEnded) destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listenPort ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no TCP port');

  return {
    port: address.port,
    setDelayMs(ms: number) {
      delayMs = checkDelay(ms);
    },
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const destroy of [...live]) destroy();
      return closed;
    },
  };
}
