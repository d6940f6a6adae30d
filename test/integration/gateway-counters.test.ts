/**
 * The gateway's counter routes against a real cluster: exact totals from concurrent
 * HTTP clients over two gateway processes (202 at once, 200 once Redis has it with
 * sync=1), a graceful stop that flushes the rest, the write guard, and bad input that
 * is refused and counts nothing.
 */
import { describe, expect, it } from 'vitest';
import { shardKeysFor } from '../../src/keys/shard-keys.ts';
import { startGatewayOn } from '../fixtures/gateway/gateway-process.ts';
import { agent, errorCode, request } from '../fixtures/gateway/http.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';

const cluster = useOwnCluster();
const TOKEN = 'counter-token-0123456789';

async function inRedis(name: string): Promise<bigint> {
  const redis = clusterClient(cluster.seeds);
  const values = await Promise.all(shardKeysFor(name, 16).map((k) => redis.get(k)));
  return values.reduce((sum, v) => sum + BigInt(v ?? 0), 0n);
}

const counterValue = (text: string): string => /"value":(-?\d+)/.exec(text)?.[1] ?? `(${text})`;

describe('gateway counters', () => {
  it('4,000 concurrent POSTs over 2 processes × 2 threads are counted exactly; a graceful stop flushes the rest', async () => {
    const gw = await startGatewayOn(
      cluster.seeds,
      ['--processes', '2', '--threads', '2', '--flush-interval', '50ms', '--soft-ttl', '200ms'],
      { processes: 2 },
    );
    const name = 'likes:video:42';
    const http = agent(32);
    let sent = 0n;
    const statuses: Record<string, number> = {};
    let next = 0;
    const client = async () => {
      while (next < 4000) {
        const i = next++;
        const by = i % 13 === 0 ? -2 : 1 + (i % 7);
        const sync = i % 10 === 0;
        const reply = await request(
          `${gw.url}/v1/counters/${encodeURIComponent(name)}/incr?by=${by}${sync ? '&sync=1' : ''}`,
          { method: 'POST', agent: http },
        );
        const key = `${sync ? 'sync' : 'async'} ${reply.status}`;
        statuses[key] = (statuses[key] ?? 0) + 1;
        if (reply.status === 200 || reply.status === 202) sent += BigInt(by);
        if (sync && reply.status === 200) expect(JSON.parse(reply.text).flushed).toBe(true);
      }
    };
    await Promise.all(Array.from({ length: 32 }, client));
    expect(statuses).toEqual({ 'sync 200': 400, 'async 202': 3600 });
    // Any process answers the whole total once both have flushed and its cache refreshed.
    await expect
      .poll(
        async () =>
          counterValue((await request(`${gw.url}/v1/counters/${encodeURIComponent(name)}`)).text),
        { timeout: 5000, interval: 100 },
      )
      .toBe(sent.toString());
    // Increments right before SIGTERM are flushed by the drain.
    for (let i = 0; i < 50; i++)
      await request(`${gw.url}/v1/counters/${encodeURIComponent(name)}/incr?by=3`, {
        method: 'POST',
        agent: http,
      });
    sent += 150n;
    http.destroy();
    expect(await gw.stop('SIGTERM')).toBe(0);
    expect(await inRedis(name)).toBe(sent);
  });

  it('bad input is refused with the documented status and counts nothing; writes need the token', async () => {
    const gw = await startGatewayOn(cluster.seeds, ['--token', TOKEN, '--flush-interval', '20ms']);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const post = (path: string, headers: Record<string, string> = auth) =>
      request(`${gw.url}${path}`, { method: 'POST', headers });
    const cases: Array<[string, Promise<Awaited<ReturnType<typeof request>>>, number, string]> = [
      ['by=0', post('/v1/counters/c/incr?by=0'), 400, 'HS_ERR_BAD_REQUEST'],
      ['by=1.5', post('/v1/counters/c/incr?by=1.5'), 400, 'HS_ERR_BAD_REQUEST'],
      ['by=abc', post('/v1/counters/c/incr?by=abc'), 400, 'HS_ERR_BAD_REQUEST'],
      ['by=', post('/v1/counters/c/incr?by='), 400, 'HS_ERR_BAD_REQUEST'],
      ['by=1e3', post('/v1/counters/c/incr?by=1e3'), 400, 'HS_ERR_BAD_REQUEST'],
      ['by=2^40+1', post(`/v1/counters/c/incr?by=${2 ** 40 + 1}`), 400, 'HS_ERR_BAD_REQUEST'],
      [
        'by overflow',
        post('/v1/counters/c/incr?by=99999999999999999999'),
        400,
        'HS_ERR_BAD_REQUEST',
      ],
      ['sync=maybe', post('/v1/counters/c/incr?sync=maybe'), 400, 'HS_ERR_BAD_REQUEST'],
      ['braces', post('/v1/counters/a%7Bb%7D/incr'), 400, 'HS_ERR_COUNTER_NAME'],
      ['empty name', post('/v1/counters//incr'), 400, 'HS_ERR_COUNTER_NAME'],
      ['reserved', post('/v1/counters/a%3A__hotshield/incr'), 400, 'HS_ERR_COUNTER_NAME'],
      ['bad encoding', post('/v1/counters/%E0%A4%A/incr'), 400, 'HS_ERR_KEY_ENCODING'],
      ['too long', post(`/v1/counters/${'x'.repeat(200)}/incr`), 400, 'HS_ERR_COUNTER_NAME'],
      ['no token', post('/v1/counters/c/incr', {}), 401, 'HS_ERR_UNAUTHORIZED'],
      [
        'wrong token',
        post('/v1/counters/c/incr', { authorization: 'Bearer nope-nope-nope-nope' }),
        401,
        'HS_ERR_UNAUTHORIZED',
      ],
      ['GET incr', request(`${gw.url}/v1/counters/c/incr`), 405, 'HS_ERR_METHOD'],
      [
        'PUT counter',
        request(`${gw.url}/v1/counters/c`, { method: 'PUT', headers: auth, body: '1' }),
        405,
        'HS_ERR_METHOD',
      ],
    ];
    for (const [label, pending, status, code] of cases) {
      const reply = await pending;
      expect({ label, status: reply.status, code: errorCode(reply) }).toEqual({
        label,
        status,
        code,
      });
    }
    expect((await request(`${gw.url}/v1/counters/c/incr`)).headers.allow).toBe('POST');
    // Nothing was counted: the counter reads 0 here and in Redis.
    expect(counterValue((await request(`${gw.url}/v1/counters/c`)).text)).toBe('0');
    // A good request with the token: 202 at once, 200 with sync=1, both counted.
    expect((await post('/v1/counters/c/incr?by=-4')).status).toBe(202);
    const synced = await post('/v1/counters/c/incr?by=%2B9&sync=1');
    expect(synced.status).toBe(200);
    expect(JSON.parse(synced.text)).toEqual({ name: 'c', by: 9, flushed: true });
    expect(await inRedis('c')).toBe(5n);
    const read = await request(`${gw.url}/v1/counters/c`);
    expect(read.status).toBe(200);
    expect(read.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(read.text)).toEqual({ name: 'c', value: 5 });
    expect((await request(`${gw.url}/v1/counters/c`, { method: 'HEAD' })).body.length).toBe(0);
    const metrics = (await request(`${gw.url}/metrics`)).text;
    expect(metrics).toMatch(/^hotshield_counter_adds_total 2$/m);
    expect(metrics).toMatch(/^hotshield_counter_unflushed 0$/m);
    expect(Number(/^hotshield_counter_flushes_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(
      0,
    );
    expect(metrics).toMatch(/^hotshield_http_requests_total\{[^}]*route="counter"[^}]*\} \d+$/m);
    expect(await gw.stop()).toBe(0);
  });
});
