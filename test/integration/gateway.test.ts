/**
 * The gateway over real HTTP, run as the `hotshield` command against a cluster of the
 * file's own (the tests count Redis GETs): routes, statuses, headers, bad input, auth,
 * coalescing across HTTP threads, and a graceful drain.
 */

import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayChild, startGatewayOn } from '../fixtures/gateway/gateway-process.ts';
import { agent, errorCode, request } from '../fixtures/gateway/http.ts';
import { commandCalls } from '../fixtures/redis/commandstats.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';

const TOKEN = 'test-token-0123456789';
const cluster = useOwnCluster();
/** Soft TTL 300 ms, for the freshness tests. */
let gw: GatewayChild;
/** Default soft TTL (3 s), for counting GETs in a burst. */
let gwDefault: GatewayChild;

beforeAll(async () => {
  gw = await startGatewayOn(cluster.seeds, [
    '--threads',
    '2',
    '--soft-ttl',
    '300ms',
    '--max-key-bytes',
    '64',
    '--max-value-bytes',
    '4kb',
    '--request-timeout',
    '5s',
    '--token',
    TOKEN,
  ]);
  gwDefault = await startGatewayOn(cluster.seeds, ['--threads', '2']);
});
afterAll(async () => {
  await gwDefault?.stop();
  await gw?.stop();
});

const auth = { authorization: `Bearer ${TOKEN}` };
const kv = (key: string) => `${gw.url}/v1/kv/${key}`;
const gets = () => commandCalls(cluster.seeds, 'get');
/** Refresh-ahead reads (of hot keys) a gateway made so far, from its /metrics. */
async function refreshesAhead(g: GatewayChild): Promise<number> {
  const text = (await request(`${g.url}/metrics`)).text;
  const n = /^hotshield_refresher_refreshes_ahead_total (\d+)/m.exec(text)?.[1];
  if (n === undefined) throw new Error('no hotshield_refresher_refreshes_ahead_total in /metrics');
  return Number(n);
}

describe('reads', () => {
  it('10,000 concurrent requests for one uncached key cost exactly one Redis GET across the HTTP threads', async () => {
    await clusterClient(cluster.seeds).set('g:viral', 'viral value');
    const pool = agent(128);
    const before = await gets();
    const aheadBefore = await refreshesAhead(gwDefault);
    const url = `${gwDefault.url}/v1/kv/g:viral`;
    const replies = await Promise.all(
      Array.from({ length: 10_000 }, () => request(url, { agent: pool })),
    );
    // One GET for the miss; on a slow machine the burst outlasts the soft TTL's last
    // second, and the key, hot by then, is refreshed ahead (counted apart).
    const got = (await gets()) - before;
    expect(got).toBeGreaterThanOrEqual(1);
    expect(got).toBeLessThanOrEqual(1 + (await refreshesAhead(gwDefault)) - aheadBefore);
    expect(replies.filter((r) => r.status === 200 && r.text === 'viral value')).toHaveLength(
      10_000,
    );
    const cache = new Set(replies.map((r) => r.headers['x-cache']));
    expect(cache.has('MISS')).toBe(true);
  });

  it('sustained load on a hot key: at most one GET per soft TTL, and no miss after the first', async () => {
    await clusterClient(cluster.seeds).set('g:hot', 'hot');
    const pool = agent(32);
    expect((await request(kv('g:hot'), { agent: pool })).headers['x-cache']).toBe('MISS');
    const before = await gets();
    const started = performance.now();
    const statuses: Record<string, number> = {};
    while (performance.now() - started < 2000) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, () => request(kv('g:hot'), { agent: pool })),
      );
      for (const r of batch) {
        expect(r.text).toBe('hot');
        const c = String(r.headers['x-cache']);
        statuses[c] = (statuses[c] ?? 0) + 1;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    expect((await gets()) - before).toBeLessThanOrEqual(Math.ceil(seconds / 0.3) + 1);
    expect(statuses.MISS).toBeUndefined();
    expect(statuses.HIT).toBeGreaterThan(100);
  });

  it('serves values other applications wrote byte-for-byte, as application/octet-stream', async () => {
    const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x0a]);
    await clusterClient(cluster.seeds).set('g:binary', bytes);
    const r = await request(kv('g:binary'));
    expect(r.status).toBe(200);
    expect(r.body).toEqual(bytes);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['content-length']).toBe('6');
  });

  it('x-cache MISS → HIT → STALE, age, etag and If-None-Match → 304, HEAD without a body', async () => {
    await clusterClient(cluster.seeds).set('g:meta', 'meta');
    const first = await request(kv('g:meta'));
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.headers.age).toBe('0');
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^"[\w-]+"$/);
    const second = await request(kv('g:meta'));
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers.etag).toBe(etag);
    const notModified = await request(kv('g:meta'), {
      headers: { 'if-none-match': `"other", ${etag}` },
    });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    const head = await request(kv('g:meta'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('4');
    expect(head.body.length).toBe(0);
    await sleep(400);
    const stale = await request(kv('g:meta'));
    expect(stale.headers['x-cache']).toBe('STALE');
    expect(stale.text).toBe('meta');
  });

  it('absent → 404 with a JSON error body', async () => {
    const r = await request(kv('g:absent'));
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toMatch(/application\/json/);
    expect(JSON.parse(r.text)).toEqual({
      error: { code: 'HS_ERR_NOT_FOUND', message: 'no such key' },
    });
  });
});

describe('writes', () => {
  it('PUT keeps the content type, honours ?ttl=, and the next GET sees it; DELETE removes it', async () => {
    const put = await request(kv('g:doc?ttl=30s'), {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(put.status).toBe(204);
    const r = await request(kv('g:doc'));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.text).toBe('{"a":1}');
    const ttl = await clusterClient(cluster.seeds).pttl('g:doc');
    expect(ttl).toBeGreaterThan(25_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
    expect((await request(kv('g:doc'), { method: 'DELETE', headers: auth })).status).toBe(204);
    expect((await request(kv('g:doc'))).status).toBe(404);
  });

  it('a body with no content type is stored exactly as sent', async () => {
    const body = Buffer.from('raw bytes \u0000 here');
    expect((await request(kv('g:raw'), { method: 'PUT', headers: auth, body })).status).toBe(204);
    expect(await clusterClient(cluster.seeds).getBuffer('g:raw')).toEqual(body);
  });

  it('writes need the bearer token: missing or wrong → 401 with WWW-Authenticate, nothing written', async () => {
    // Not a count of SETs: each gateway publishes its hot set to Redis every second.
    const redis = clusterClient(cluster.seeds);
    await redis.set('g:guarded', 'before');
    for (const headers of [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: TOKEN },
    ]) {
      const put = await request(kv('g:guarded'), { method: 'PUT', headers, body: 'x' });
      expect(put.status).toBe(401);
      expect(put.headers['www-authenticate']).toBe('Bearer');
      expect(errorCode(put)).toBe('HS_ERR_UNAUTHORIZED');
      expect((await request(kv('g:guarded'), { method: 'DELETE', headers })).status).toBe(401);
    }
    expect(await redis.get('g:guarded')).toBe('before');
  });
});

describe('bad input', () => {
  const cases: Array<
    [
      string,
      string,
      { method?: string; body?: string; headers?: Record<string, string> },
      number,
      string,
    ]
  > = [
    ['empty key', '/v1/kv/', {}, 400, 'HS_ERR_KEY_EMPTY'],
    ['key over --max-key-bytes', `/v1/kv/${'k'.repeat(65)}`, {}, 400, 'HS_ERR_KEY_TOO_LONG'],
    ['bad percent-encoding', '/v1/kv/%E0%A4%A', {}, 400, 'HS_ERR_KEY_ENCODING'],
    ['lone surrogate', '/v1/kv/%ED%A0%80', {}, 400, 'HS_ERR_KEY_ENCODING'],
    [
      'internal key',
      '/v1/kv/%7Blikes%233%7D%3A__hotshield%3Aflushes',
      {},
      400,
      'HS_ERR_KEY_RESERVED',
    ],
    [
      'bad ttl',
      '/v1/kv/g:x?ttl=soon',
      { method: 'PUT', body: 'x', headers: auth },
      400,
      'HS_ERR_BAD_REQUEST',
    ],
    [
      'body over --max-value-bytes',
      '/v1/kv/g:big',
      { method: 'PUT', body: 'x'.repeat(4097), headers: auth },
      413,
      'HS_ERR_VALUE_TOO_LARGE',
    ],
    ['unknown route', '/v2/anything', {}, 404, 'HS_ERR_NO_ROUTE'],
    ['wrong method', '/v1/kv/g:x', { method: 'POST', body: 'x' }, 405, 'HS_ERR_METHOD'],
    ['wrong method on /healthz', '/healthz', { method: 'DELETE' }, 405, 'HS_ERR_METHOD'],
  ];
  for (const [name, path, options, status, code] of cases) {
    it(`${name} → ${status} ${code}`, async () => {
      const r = await request(`${gw.url}${path}`, options);
      expect(r.status).toBe(status);
      expect(errorCode(r)).toBe(code);
      if (status === 405) expect(r.headers.allow).toMatch(/GET, HEAD/);
    });
  }

  it('nothing was written by the refused requests', async () => {
    const redis = clusterClient(cluster.seeds);
    expect(await redis.exists('g:x')).toBe(0);
    expect(await redis.exists('g:big')).toBe(0);
  });

  it('oversized headers and malformed HTTP are closed by the server; other clients are unaffected', async () => {
    const huge = await request(kv('g:meta'), { headers: { 'x-junk': 'j'.repeat(20_000) } });
    expect(huge.status).toBe(431);
    const garbage = await rawExchange('NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    expect((await request(`${gw.url}/healthz`)).status).toBe(200);
  });

  it('a slow client (slowloris) cannot hold a request open forever, and others are served meanwhile', async () => {
    const socket = net.connect(gw.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\n');
    const ok = await request(`${gw.url}/healthz`);
    expect(ok.status).toBe(200);
    socket.destroy();
  });
});

describe('health, readiness, metrics', () => {
  it('/healthz and /readyz answer 200 while Redis is reachable', async () => {
    expect(JSON.parse((await request(`${gw.url}/healthz`)).text)).toEqual({ status: 'ok' });
    const ready = await request(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toMatchObject({ ready: true, redis: 'l2Ready' });
  });

  it('/metrics is Prometheus text summed over the HTTP threads, with L1 and refresher counters', async () => {
    const pool = agent(8);
    await Promise.all(
      Array.from({ length: 50 }, () => request(`${gw.url}/healthz`, { agent: pool })),
    );
    const text = (await request(`${gw.url}/metrics`)).text;
    const healthz = [
      ...text.matchAll(
        /^hotshield_http_requests_total\{route="healthz",method="GET",status="200"\} (\d+)$/gm,
      ),
    ];
    expect(healthz).toHaveLength(1);
    expect(Number(healthz[0][1])).toBeGreaterThanOrEqual(50);
    for (const name of [
      'hotshield_l1_hits_total',
      'hotshield_refresher_fetches_total',
      'hotshield_http_request_duration_seconds_bucket',
      'hotshield_redis_ready',
      'hotshield_refresher_in_flight',
      'hotshield_refresher_batch_keys_bucket',
    ]) {
      expect(text).toContain(name);
    }
    // Coherence is on by default: every master of the test cluster tracks our reads.
    expect(text).toMatch(/^hotshield_coherence_masters 3$/m);
    expect(text).toMatch(/^hotshield_coherence_tracked_masters 3$/m);
    // Redis latency per node, from the refresher thread.
    expect(text).toMatch(
      /^hotshield_l2_request_duration_seconds_count\{node="127\.0\.0\.1:\d+",op="get"\} \d+$/m,
    );
    expect(text).not.toContain(TOKEN);
  });

  it('logs are structured JSON and never contain the token', () => {
    expect(gw.logs.length).toBeGreaterThan(0);
    expect(gw.logs.every((l) => typeof l.level === 'number' && typeof l.msg === 'string')).toBe(
      true,
    );
    expect(JSON.stringify(gw.logs)).not.toContain(TOKEN);
  });
});

/** Send raw bytes, return whatever the server answers before closing. */
function rawExchange(payload: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(gw.port, '127.0.0.1', () => socket.write(payload));
    let out = '';
    socket.on('data', (c) => {
      out += c.toString();
    });
    socket.on('close', () => resolve(out));
    socket.on('error', () => resolve(out));
  });
}
