/**
 * Redis AUTH and ACL users through the gateway (issue 7, security): `hotshield` over a
 * password-protected cluster (test/fixtures/redis/auth-cluster.ts), with the password from
 * HOTSHIELD_REDIS_PASSWORD or the --redis-username/--redis-password flags. With the right
 * credentials values and counters work; with a wrong password it listens, answers 503
 * and drains; the passwords show nowhere: all of stdout and stderr, /metrics, /readyz,
 * reply headers and bodies.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { type CapturedGateway, startCapturedGateway } from '../fixtures/gateway/gateway-capture.ts';
import { errorCode, type Reply, request } from '../fixtures/gateway/http.ts';
import {
  PASSWORD,
  secretsIn,
  USER_PASSWORD,
  useAuthCluster,
  WRONG_PASSWORD,
} from '../fixtures/redis/auth-cluster.ts';

const auth = useAuthCluster();

describe('gateway: password and ACL users', () => {
  const gateways: CapturedGateway[] = [];
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
  });
  async function gateway(args: string[], env: Record<string, string>): Promise<CapturedGateway> {
    const g = await startCapturedGateway(
      [
        ...['--redis', auth.cluster.seeds, '--port', '0', '--threads', '1'],
        ...['--request-timeout', '5s', '--l2-timeout', '1s', ...args],
      ],
      env,
    );
    gateways.push(g);
    return g;
  }
  /** The gateway of the wrong-password test, stopped, for its logs. */
  let wrongPassword: CapturedGateway | undefined;
  const put = (g: CapturedGateway, key: string, body: string) =>
    request(`${g.url()}/v1/kv/${key}`, { method: 'PUT', body });

  /** Every reply body, /metrics and /readyz, checked for secrets at the end. */
  function seen(replies: Reply[]): string {
    return replies.map((r) => `${JSON.stringify(r.headers)}\n${r.text}`).join('\n');
  }

  it('with the password in HOTSHIELD_REDIS_PASSWORD: values and counters work; no secret in logs, metrics or bodies', async () => {
    const g = await gateway([], { HOTSHIELD_REDIS_PASSWORD: PASSWORD });
    const replies: Reply[] = [];
    const r = async (p: Promise<Reply>) => {
      const reply = await p;
      replies.push(reply);
      return reply;
    };
    await vi.waitFor(async () => expect((await r(request(`${g.url()}/readyz`))).status).toBe(200), {
      timeout: 15_000,
      interval: 200,
    });
    expect((await r(put(g, 'gw:a', 'hello'))).status).toBe(204);
    const got = await r(request(`${g.url()}/v1/kv/gw:a`));
    expect([got.status, got.text]).toEqual([200, 'hello']);
    expect((await r(request(`${g.url()}/v1/kv/gw:a`, { method: 'DELETE' }))).status).toBe(204);
    expect((await r(request(`${g.url()}/v1/kv/gw:a`))).status).toBe(404);
    const incr = await r(
      request(`${g.url()}/v1/counters/gw:likes/incr?by=4&sync=1`, { method: 'POST' }),
    );
    expect(incr.status).toBe(200);
    expect(JSON.parse((await r(request(`${g.url()}/v1/counters/gw:likes`))).text).value).toBe(4);
    expect((await r(request(`${g.url()}/v1/kv/%ZZ`))).status).toBe(400);
    expect((await r(request(`${g.url()}/nowhere`))).status).toBe(404);
    const metrics = await r(request(`${g.url()}/metrics`));
    expect(metrics.text).toMatch(/^hotshield_redis_ready 1$/m);
    expect(secretsIn(seen(replies))).toEqual([]);
    expect(secretsIn(g.output())).toEqual([]);
  });

  it('as the minimal ACL user, with --redis-username/--redis-password flags: works', async () => {
    const g = await gateway(
      ['--redis-username', 'hotshield', '--redis-password', USER_PASSWORD],
      {},
    );
    expect((await put(g, 'gw:acl', 'v')).status).toBe(204);
    expect((await request(`${g.url()}/v1/kv/gw:acl`)).text).toBe('v');
    const incr = await request(`${g.url()}/v1/counters/gw:acl/incr?sync=1`, { method: 'POST' });
    expect(incr.status).toBe(200);
    const metrics = await request(`${g.url()}/metrics`);
    expect(secretsIn(metrics.text)).toEqual([]);
    expect(secretsIn(g.output())).toEqual([]);
  });

  it('with a wrong password: listens, answers 503 with typed errors, stays up, drains; no secret anywhere', async () => {
    const g = await gateway(['--request-timeout', '1s', '--l2-timeout', '250ms'], {
      HOTSHIELD_REDIS_PASSWORD: WRONG_PASSWORD,
    });
    const replies: Reply[] = [];
    // 'starting' until the refresher's own connectTimeout runs out, then 'l2Down'.
    await vi.waitFor(
      async () => {
        const ready = await request(`${g.url()}/readyz`);
        replies.push(ready);
        expect([ready.status, JSON.parse(ready.text)]).toEqual([
          503,
          { ready: false, redis: 'l2Down', draining: false },
        ]);
      },
      { timeout: 15_000, interval: 200 },
    );
    for (const reply of [
      await request(`${g.url()}/v1/kv/gw:w`),
      await put(g, 'gw:w', 'x'),
      await request(`${g.url()}/v1/kv/gw:w`, { method: 'DELETE' }),
      await request(`${g.url()}/v1/counters/gw:w`),
    ]) {
      replies.push(reply);
      expect(reply.status).toBe(503);
      expect(reply.headers['retry-after']).toBeDefined();
      expect(errorCode(reply)).toMatch(/^HS_ERR_(L2_TIMEOUT|L2_UNAVAILABLE|TIMEOUT)$/);
    }
    // An increment is taken into shared memory whatever Redis says (documented 202).
    const incr = await request(`${g.url()}/v1/counters/gw:w/incr?sync=1`, { method: 'POST' });
    replies.push(incr);
    expect(incr.status).toBe(202);
    expect(JSON.parse(incr.text)).toMatchObject({ flushed: false });
    const metrics = await request(`${g.url()}/metrics`);
    replies.push(metrics);
    expect(metrics.text).toMatch(/^hotshield_redis_ready 0$/m);
    expect((await request(`${g.url()}/healthz`)).status).toBe(200);
    expect(g.logs().filter((l) => /died|crashed/.test(String(l.msg)))).toEqual([]);
    expect(await g.stop()).toBe(0);
    expect(secretsIn(seen(replies))).toEqual([]);
    expect(secretsIn(g.output())).toEqual([]);
    wrongPassword = g;
  });

  it('with a wrong password, says so in its logs', () => {
    expect(wrongPassword).toBeDefined();
    // Regression: the gateway once logged nothing about Redis refusing it; it now warns
    // "Redis is unreachable" with the last error (src/gateway/process.ts, watchRedis).
    expect(wrongPassword?.output()).toMatch(/WRONGPASS/);
  });
});
