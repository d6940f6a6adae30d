import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { startLatencyProxy } from '../../../bench/lib/latency-proxy.ts';

/** An echo server on a free port that remembers the sockets it accepted. */
async function startEcho(): Promise<{ server: Server; port: number; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  const server = createServer((socket) => {
    accepted.push(socket);
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, accepted };
}

async function connectTo(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  return socket;
}

/** Reads from `socket` until `bytes` bytes have come; resolves with them and the first arrival. */
function readBytes(socket: Socket, bytes: number): Promise<{ data: Buffer; firstAt: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let firstAt = 0;
    const onData = (chunk: Buffer) => {
      if (length === 0) firstAt = performance.now();
      chunks.push(chunk);
      length += chunk.length;
      if (length >= bytes) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve({ data: Buffer.concat(chunks), firstAt });
      }
    };
    const onClose = () => reject(new Error(`closed after ${length} of ${bytes} bytes`));
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('latency proxy', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(delayMs: number) {
    const echo = await startEcho();
    cleanups.push(() => new Promise((resolve) => echo.server.close(resolve)));
    const proxy = await startLatencyProxy({ targetPort: echo.port, delayMs });
    cleanups.push(() => proxy.close());
    const client = await connectTo(proxy.port);
    cleanups.push(() => client.destroy());
    return { echo, proxy, client };
  }

  it('delays replies and keeps every byte in order', async () => {
    const { client } = await setup(50);
    const parts = Array.from({ length: 20 }, (_, i) => `chunk-${i};`.repeat(i + 1));
    const expected = parts.join('');
    const reading = readBytes(client, Buffer.byteLength(expected));
    const sentAt = performance.now();
    for (const part of parts) client.write(part);
    const { data, firstAt } = await reading;
    expect(data.toString()).toBe(expected);
    expect(firstAt - sentAt).toBeGreaterThanOrEqual(45);
  });

  it('carries large transfers in order', async () => {
    const { client } = await setup(5);
    const big = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 10)) & 0xff;
    const reading = readBytes(client, big.length);
    client.write(big);
    expect((await reading).data.equals(big)).toBe(true);
  });

  it('applies setDelayMs to later chunks without letting them overtake held ones', async () => {
    const { proxy, client } = await setup(200);
    const reading = readBytes(client, 'firstsecond'.length);
    client.write('first');
    await wait(30); // the echo of "first" is now held by the proxy for ~200 ms
    proxy.setDelayMs(0);
    client.write('second');
    expect((await reading).data.toString()).toBe('firstsecond');

    // Now replies come back at once: the best of three round trips is well under 45 ms.
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      const pong = readBytes(client, 4);
      const sentAt = performance.now();
      client.write('ping');
      const { data, firstAt } = await pong;
      expect(data.toString()).toBe('ping');
      best = Math.min(best, firstAt - sentAt);
    }
    expect(best).toBeLessThan(45);
  });

  it('rejects a negative or non-finite delay', async () => {
    const { proxy } = await setup(0);
    expect(() => proxy.setDelayMs(-1)).toThrow(RangeError);
    expect(() => proxy.setDelayMs(Number.NaN)).toThrow(RangeError);
    await expect(startLatencyProxy({ targetPort: 1, delayMs: -5 })).rejects.toThrow(RangeError);
  });

  it('close() stops listening and closes both sides of live connections', async () => {
    const { echo, proxy, client } = await setup(50);
    const pong = readBytes(client, 5);
    client.write('hello');
    await pong;
    expect(echo.accepted).toHaveLength(1);
    const upstreamClosed = once(echo.accepted[0], 'close');
    const clientClosed = once(client, 'close');
    await proxy.close();
    await upstreamClosed;
    await clientClosed;

    const refused = connect({ port: proxy.port, host: '127.0.0.1' });
    const [error] = await once(refused, 'error');
    expect((error as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('closes the client when the target closes, after the held replies', async () => {
    const { echo, client } = await setup(50);
    const reading = readBytes(client, 3);
    client.write('bye');
    await wait(10);
    expect(echo.accepted).toHaveLength(1);
    echo.accepted[0].end(); // FIN from the target while "bye" is still held
    const clientClosed = once(client, 'close');
    expect((await reading).data.toString()).toBe('bye');
    await clientClosed;
  });

  it('closes the client when the target refuses the connection', async () => {
    const echo = await startEcho();
    const port = echo.port;
    await new Promise((resolve) => echo.server.close(resolve));
    const proxy = await startLatencyProxy({ targetPort: port, delayMs: 0 });
    cleanups.push(() => proxy.close());
    const client = connect({ port: proxy.port, host: '127.0.0.1' });
    client.on('error', () => {});
    await once(client, 'close');
  });
});
