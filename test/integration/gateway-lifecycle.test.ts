/**
 * The gateway's life: threads and processes that die are replaced, a SIGTERM drains
 * without losing in-flight requests, Redis failing gives fast 503s, and `hotshield`
 * with no configuration brings its own Redis Cluster and takes it away again.
 */

import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseConfig } from '../../src/cli/config.ts';
import { startGatewayProcess } from '../../src/gateway/process.ts';
import { freePort, startGateway, startGatewayOn } from '../fixtures/gateway/gateway-process.ts';
import { agent, request } from '../fixtures/gateway/http.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';

const cluster = useOwnCluster();

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('HTTP threads', () => {
  it('a killed HTTP thread is replaced; the others keep serving and the L1 keeps its contents', async () => {
    const parsed = parseConfig(
      ['--redis', cluster.seeds, '--port', '0', '--threads', '2', '--soft-ttl', '30s'],
      {},
    );
    if (parsed.help) throw new Error('unexpected --help');
    const gateway = await startGatewayProcess(
      parsed.config,
      cluster.seeds,
      pino({ level: 'silent' }),
    );
    onTestFinished(async () => {
      await gateway.drain(2000);
    });
    const url = `http://127.0.0.1:${gateway.port}/v1/kv/life:k`;
    await clusterClient(cluster.seeds).set('life:k', 'v');
    expect((await request(url)).headers['x-cache']).toBe('MISS');
    const [victim] = gateway.threads();
    const load = agent(16);
    const during = Promise.all(
      Array.from({ length: 400 }, async (_, i) => {
        await sleep(i % 40);
        return request(url, { agent: load }).then(
          (r) => r.status,
          () => 'refused',
        );
      }),
    );
    await victim.terminate();
    const statuses = await during;
    // Requests on the dying thread's connections may be refused; none gets a wrong answer.
    expect(statuses.filter((s) => s !== 200 && s !== 'refused')).toEqual([]);
    for (let i = 0; i < 100 && gateway.threads().length < 2; i++) await sleep(20);
    expect(gateway.threads()).toHaveLength(2);
    expect(gateway.threadStarts()).toBe(3);
    const after = await request(url);
    expect(after.status).toBe(200);
    expect(after.headers['x-cache']).toBe('HIT');
    // The request counts live in shared memory per thread slot: the dead thread's are
    // still in the total (its replacement counts on in the same block). A thread terminated
    // between sending a reply and counting it (or the reverse) may miss one or two.
    const answered = 2 + statuses.filter((s) => s === 200).length;
    const metrics = (await request(`http://127.0.0.1:${gateway.port}/metrics`)).text;
    const counted = metrics.match(
      /^hotshield_http_requests_total\{route="kv",method="GET",status="200"\} (\d+)$/m,
    );
    expect(Math.abs(Number(counted?.[1]) - answered)).toBeLessThanOrEqual(2);
  });
});

describe('processes', () => {
  it('SIGTERM under load: every request that was sent is answered, then exit 0', async () => {
    const gw = await startGatewayOn(cluster.seeds, ['--threads', '2']);
    await clusterClient(cluster.seeds).set('life:drain', 'ok');
    // One request is in flight for sure: its body is only half sent when SIGTERM arrives.
    const slow = net.connect(gw.port, '127.0.0.1');
    await new Promise((r) => slow.once('connect', r));
    let slowReply = '';
    slow.on('data', (c) => {
      slowReply += c.toString();
    });
    slow.write('PUT /v1/kv/life:slow HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nhello');
    const pool = agent(16);
    const load = Promise.all(
      Array.from({ length: 300 }, () =>
        request(`${gw.url}/v1/kv/life:drain`, { agent: pool }).then(
          (r) => r.status,
          (e: NodeJS.ErrnoException) => e.code ?? 'error',
        ),
      ),
    );
    await sleep(50);
    const exited = gw.stop('SIGTERM');
    await sleep(200);
    // (Not end(): Node's server drops the pending response of a half-closed client.)
    slow.write('world');
    const statuses = await load;
    expect(await exited).toBe(0);
    expect(slowReply).toMatch(/^HTTP\/1\.1 204/);
    slow.destroy();
    expect(await clusterClient(cluster.seeds).get('life:slow')).toBe('helloworld');
    // Requests sent before the listeners closed were answered; later ones were refused
    // by the OS (nothing listening), never dropped mid-way.
    expect(statuses.filter((s) => s !== 200 && s !== 'ECONNREFUSED' && s !== 'ECONNRESET')).toEqual(
      [],
    );
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
  });

  it('several gateway processes share the port; one killed with SIGKILL is restarted', async () => {
    const gw = await startGatewayOn(cluster.seeds, ['--threads', '1', '--processes', '2'], {
      processes: 2,
    });
    onTestFinished(async () => {
      await gw.stop();
    });
    const pids = gw.logs
      .filter((l) => l.msg === 'gateway process listening')
      .map((l) => l.pid as number);
    expect(new Set(pids).size).toBe(2);
    process.kill(pids[0], 'SIGKILL');
    for (
      let i = 0;
      i < 100 && gw.logs.filter((l) => l.msg === 'gateway process listening').length < 3;
      i++
    )
      await sleep(50);
    expect(gw.logs.some((l) => l.msg === 'gateway process died; restarting')).toBe(true);
    expect(gw.logs.filter((l) => l.msg === 'gateway process listening')).toHaveLength(3);
    const pool = agent(8);
    const statuses = await Promise.all(
      Array.from({ length: 50 }, () =>
        request(`${gw.url}/healthz`, { agent: pool }).then((r) => r.status),
      ),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(await gw.stop()).toBe(0);
  });

  it('with Redis hung, cached keys are served and unknown keys get a fast 503 with Retry-After', async () => {
    const gw = await startGatewayOn(cluster.seeds, [
      '--threads',
      '1',
      '--soft-ttl',
      '100ms',
      '--request-timeout',
      '800ms',
      '--l2-timeout',
      '200ms',
    ]);
    onTestFinished(async () => {
      await gw.stop();
    });
    await clusterClient(cluster.seeds).set('life:cached', 'cached');
    expect((await request(`${gw.url}/v1/kv/life:cached`)).status).toBe(200);
    for (const node of cluster.nodes) process.kill(node.pid, 'SIGSTOP');
    onTestFinished(() => {
      for (const node of cluster.nodes) process.kill(node.pid, 'SIGCONT');
    });
    await sleep(150);
    const cached = await request(`${gw.url}/v1/kv/life:cached`);
    expect(cached.status).toBe(200);
    expect(cached.headers['x-cache']).toBe('STALE');
    const started = performance.now();
    const unknown = await request(`${gw.url}/v1/kv/life:unknown`);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(unknown.status).toBe(503);
    expect(unknown.headers['retry-after']).toBe('1');
  });
});

describe('configuration', () => {
  it('an invalid flag exits with status 2 and a message naming it, before starting anything', async () => {
    const { execFile } = await import('node:child_process');
    const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [main, '--soft-ttl', 'soon'], (error, _stdout, stderr) =>
        resolve({ code: (error as { code?: number } | null)?.code ?? 0, stderr }),
      );
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--soft-ttl \(HOTSHIELD_SOFT_TTL\) must be a duration/);
  });

  it('L1 sizes that cannot work exit with status 2 at once, naming the flags, with nothing forked', async () => {
    const { execFile } = await import('node:child_process');
    const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
    const started = performance.now();
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        const args = [main, '--redis', cluster.seeds, '--l1-bytes', '2mb', '--port', '0'];
        execFile(process.execPath, args, (error, stdout, stderr) =>
          resolve({ code: (error as { code?: number } | null)?.code ?? 0, stdout, stderr }),
        );
      },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--max-value-bytes \(HOTSHIELD_MAX_VALUE_BYTES\)/);
    expect(result.stderr).toMatch(/--l1-bytes \(HOTSHIELD_L1_BYTES\)/);
    // No gateway process was forked (none died, none was restarted): nothing was logged.
    expect(result.stdout).toBe('');
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe('startup failures', () => {
  it('gateway processes that keep failing to start make the supervisor give up with status 1', async () => {
    // Something else (not a reusePort listener) holds the port: every start fails.
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
    onTestFinished(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as net.AddressInfo).port;
    const { spawn } = await import('node:child_process');
    const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [main, '--redis', cluster.seeds, '--port', String(port), '--threads', '1'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(out).toContain('gateway processes keep failing to start; giving up');
  }, 60_000);
});

describe('no configuration', () => {
  it('starts its own Redis Cluster, answers, and leaves no Redis behind after SIGTERM', async () => {
    const gw = await startGateway(['--port', String(await freePort())]);
    const seeds = String(gw.logs.find((l) => typeof l.seeds === 'string')?.seeds ?? '');
    const ports = seeds.split(',').map((s) => Number(s.split(':')[1]));
    expect(ports).toHaveLength(3);
    expect(gw.logs.some((l) => String(l.msg).startsWith('try: curl'))).toBe(true);
    const put = await request(`${gw.url}/v1/kv/hello`, { method: 'PUT', body: 'world' });
    expect(put.status).toBe(204);
    expect((await request(`${gw.url}/v1/kv/hello`)).text).toBe('world');
    expect(await gw.stop('SIGTERM')).toBe(0);
    for (const port of ports) expect(await portOpen(port)).toBe(false);
  });
});
