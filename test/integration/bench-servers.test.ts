/**
 * The benchmark's baseline servers (bench/fixtures/l2-only-server.ts and
 * classic-server.ts) against a real cluster: they answer like the gateway's GET, the
 * L2-only one sends one Redis GET per request, the classic one serves repeats from its
 * per-process cache (and its byte bound is applied), and SIGTERM ends the whole process
 * group with exit 0.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../fixtures/gateway/gateway-process.ts';
import { agent, request } from '../fixtures/gateway/http.ts';
import { spawnGroup } from '../fixtures/proc.ts';
import { commandCalls } from '../fixtures/redis/commandstats.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';

const L2_ONLY = fileURLToPath(new URL('../../bench/fixtures/l2-only-server.ts', import.meta.url));
const CLASSIC = fileURLToPath(new URL('../../bench/fixtures/classic-server.ts', import.meta.url));
const PARALLEL = 2;

// Commands are counted on this file's own cluster: the run-wide one is shared with
// other files running at the same time.
const cluster = useOwnCluster();

interface Server {
  pid: number;
  url: string;
  stdout: () => string;
  exited: Promise<number | null>;
}

/** Spawn `script <port> <seeds> 2 …extra` in its own process group; wait for `listening`. */
async function startServer(script: string, extra: string[] = []): Promise<Server> {
  const port = await freePort();
  const child = spawnGroup(process.execPath, [
    script,
    String(port),
    cluster.seeds,
    String(PARALLEL),
    ...extra,
  ]);
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening: ${stderr}`)), 15_000);
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (stdout.includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    exited.then((code) => reject(new Error(`exited with ${code} before listening: ${stderr}`)));
  });
  expect(stdout).toBe(`listening ${port}\n`);
  return { pid: child.pid!, url: `http://127.0.0.1:${port}`, stdout: () => stdout, exited };
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('ESRCH');
    return false;
  }
}

/** Signal `target` (the server's PID, or its whole group with a negative PID). */
async function expectCleanStop(server: Server, target: number): Promise<void> {
  process.kill(target, 'SIGTERM');
  expect(await server.exited).toBe(0);
  expect(groupAlive(server.pid)).toBe(false);
  expect(server.stdout()).toBe(`listening ${new URL(server.url).port}\n`);
}

// Not valid UTF-8, with a CR LF and a NUL: the bytes must come back untouched.
const VALUE = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x0d, 0x0a]), randomBytes(59)]);
// A slash, a space and a non-ASCII character: the key is the whole rest of the path, decoded.
const KEY = 'bench:{t}/a b/é';
const kvUrl = (server: Server, key: string) =>
  `${server.url}/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;

async function expectServes(server: Server): Promise<void> {
  const hit = await request(kvUrl(server, KEY));
  expect(hit.status).toBe(200);
  expect(hit.headers['content-type']).toBe('application/octet-stream');
  expect(hit.body.equals(VALUE)).toBe(true);
  expect((await request(kvUrl(server, 'bench:{t}/absent'))).status).toBe(404);
}

describe('l2-only server', () => {
  it('one Redis GET per request, exact bytes, 404, and SIGTERM exits 0', async () => {
    await clusterClient(cluster.seeds).set(KEY, VALUE);
    const server = await startServer(L2_ONLY);
    await expectServes(server);
    const before = await commandCalls(cluster.seeds, 'get');
    // Concurrent over keep-alive connections, so both threads take part.
    const pool = agent(8);
    const replies = await Promise.all(
      Array.from({ length: 50 }, () => request(kvUrl(server, KEY), { agent: pool })),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(await commandCalls(cluster.seeds, 'get')).toBe(before + 50);
    pool.destroy();
    await expectCleanStop(server, server.pid);
  });
});

describe('classic server', () => {
  it('serves repeats from its per-process caches, and the primary forwards SIGTERM', async () => {
    await clusterClient(cluster.seeds).set(KEY, VALUE);
    // A TTL long enough that nothing expires during the test.
    const server = await startServer(CLASSIC, ['60000']);
    const before = await commandCalls(cluster.seeds, 'get');
    // Sequential, one connection each: the primary deals them out round-robin.
    for (let i = 0; i < 50; i++) {
      const reply = await request(kvUrl(server, KEY));
      expect(reply.status).toBe(200);
      expect(reply.body.equals(VALUE)).toBe(true);
    }
    const gets = (await commandCalls(cluster.seeds, 'get')) - before;
    // At most one miss per process.
    expect(gets).toBeGreaterThanOrEqual(1);
    expect(gets).toBeLessThanOrEqual(PARALLEL);
    await expectServes(server);
    await expectCleanStop(server, server.pid);
  });

  it('maxBytes bounds the caches (split across processes); SIGTERM to the group exits 0', async () => {
    await clusterClient(cluster.seeds).set(KEY, VALUE);
    // 100 bytes in total = 50 per process: a 64-byte value is never kept.
    const server = await startServer(CLASSIC, ['60000', '100']);
    const before = await commandCalls(cluster.seeds, 'get');
    for (let i = 0; i < 20; i++) expect((await request(kvUrl(server, KEY))).status).toBe(200);
    expect((await commandCalls(cluster.seeds, 'get')) - before).toBe(20);
    await expectCleanStop(server, -server.pid);
  });
});
