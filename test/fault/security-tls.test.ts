/**
 * TLS to Redis (issue 7, security): a 3-master Redis Cluster whose nodes listen on TLS
 * only, with the cluster bus and replication over TLS too, `requirepass`, and client
 * certificates required (`tls-auth-clients yes`, Redis's default), started by
 * test/fixtures/redis/tls-redis.ts with a private CA; plus one standalone TLS node for
 * `rediss://`. The tier's `tls` option and the gateway's --redis-ca/--redis-cert/
 * --redis-key reach every node; a wrong CA, a missing client certificate, a name the
 * certificate does not hold or plain TCP give typed errors, never a crash; neither the
 * password nor key material shows in messages, logs or /metrics.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createTier, type Tier, type TierOptions } from '../../src/index.ts';
import { type CapturedGateway, startCapturedGateway } from '../fixtures/gateway/gateway-capture.ts';
import { request } from '../fixtures/gateway/http.ts';
import { redisSupportsTls, startTlsRedis, type TlsRedis } from '../fixtures/redis/tls-redis.ts';
import { timed } from '../fixtures/timing.ts';

const PASSWORD = 'tls-cluster-s3cret';
const TLS = redisSupportsTls();

/** The middle line of a PEM (its base64 body): what must never be printed. */
const bodyOf = (pem: string) =>
  pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'))[0];

const title = TLS ? 'TLS' : 'TLS (skipped: this redis-server build has no TLS support)';

describe.skipIf(!TLS)(title, () => {
  let cluster: TlsRedis;
  let standalone: TlsRedis;
  beforeAll(async () => {
    [cluster, standalone] = await Promise.all([
      startTlsRedis({ masters: 3, password: PASSWORD, authClients: 'yes' }),
      startTlsRedis({ masters: 0, password: PASSWORD, authClients: 'yes' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([cluster?.stop(), standalone?.stop()]);
  });

  const secrets = () => [PASSWORD, bodyOf(cluster.material.clientKey)];
  const leaked = (text: string) => secrets().filter((s) => text.includes(s));
  /** The client side of mutual TLS, as the tier's `tls` option. */
  const clientTls = () => ({
    ca: cluster.material.ca,
    cert: cluster.material.clientCert,
    key: cluster.material.clientKey,
  });

  async function tier(options: Partial<TierOptions>): Promise<Tier> {
    const t = await createTier({
      redis: cluster.seeds,
      password: PASSWORD,
      l1Bytes: '8mb',
      codec: 'utf8',
      connectTimeout: '1s',
      requestTimeout: '5s',
      l2Timeout: '1s',
      ...options,
    });
    onTestFinished(() => t.close().catch(() => {}));
    return t;
  }

  it('the tier reaches every master of the TLS cluster: values and counters', async () => {
    const t = await tier({ tls: clientTls() });
    for (let i = 0; i < 30; i++) await t.set(`tls:${i}`, `v${i}`);
    for (let i = 0; i < 30; i++) expect(await t.get(`tls:${i}`)).toBe(`v${i}`);
    await t.delete('tls:0');
    expect(await t.get('tls:0')).toBeUndefined();
    // Counter shards are spread over the masters: a read sums one round trip per master.
    await t.counter('tls:likes').incr(7, { sync: true });
    expect(await t.counter('tls:likes').read()).toBe(7);
    for (const port of cluster.ports) {
      const admin = cluster.admin(port);
      expect(await admin.dbsize()).toBeGreaterThan(0);
      admin.disconnect();
    }
  });

  it('servername and rejectUnauthorized reach the TLS handshake', async () => {
    const named = await tier({ tls: { ...clientTls(), servername: 'redis.test' } });
    await named.set('tls:named', 'ok');
    expect(await named.get('tls:named')).toBe('ok');
    // Trusting the wrong CA fails verification, unless verification is off.
    const unverified = await tier({
      tls: { ...clientTls(), ca: cluster.material.otherCa, rejectUnauthorized: false },
    });
    expect(await unverified.get('tls:named')).toBe('ok');
  });

  it('refusals are typed errors and no crash: plain TCP, wrong CA, wrong name, no client certificate, wrong password', async () => {
    const cases: Array<[string, Partial<TierOptions>]> = [
      ['plain TCP to a TLS port', {}],
      ['another CA', { tls: { ...clientTls(), ca: cluster.material.otherCa } }],
      ['a name the certificate lacks', { tls: { ...clientTls(), servername: 'other.test' } }],
      ['no client certificate', { tls: { ca: cluster.material.ca } }],
      ['a wrong password', { tls: clientTls(), password: 'not-the-password' }],
    ];
    for (const [what, options] of cases) {
      const t = await tier({ ...options, requestTimeout: '1s', l2Timeout: '250ms' });
      const read = await timed(t.get('tls:refused'));
      const write = await timed(t.set('tls:refused', 'x'));
      expect([what, read.code, write.code]).toEqual([
        what,
        expect.stringMatching(/^HS_ERR_(L2_TIMEOUT|L2_UNAVAILABLE|TIMEOUT)$/),
        expect.stringMatching(/^HS_ERR_(L2_TIMEOUT|L2_UNAVAILABLE|TIMEOUT)$/),
      ]);
      expect(leaked(`${read.message} ${write.message}`)).toEqual([]);
      await vi.waitFor(
        () => expect(t.stats().refresher).toMatchObject({ state: 'l2Down', generation: 1 }),
        { timeout: 15_000 },
      );
      await t.close();
    }
  });

  it('a standalone TLS Redis through rediss:// with the tls option', async () => {
    const t = await tier({
      redis: `rediss://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${standalone.ports[0]}`,
      password: undefined,
      tls: {
        ca: standalone.material.ca,
        cert: standalone.material.clientCert,
        key: standalone.material.clientKey,
      },
    });
    await t.set('tls:standalone', 'yes');
    expect(await t.get('tls:standalone')).toBe('yes');
    await t.counter('tls:standalone-likes').incr(2, { sync: true });
    expect(await t.counter('tls:standalone-likes').read()).toBe(2);
  });

  describe('gateway', () => {
    let gw: CapturedGateway;
    afterAll(() => gw?.stop());

    it('--redis-ca/--redis-cert/--redis-key + HOTSHIELD_REDIS_PASSWORD: works, and no secret in logs or /metrics', async () => {
      const m = cluster.material;
      gw = await startCapturedGateway(
        [
          '--redis',
          cluster.seeds,
          '--port',
          '0',
          '--threads',
          '1',
          '--request-timeout',
          '5s',
          '--l2-timeout',
          '1s',
          '--redis-ca',
          m.caFile,
          '--redis-cert',
          m.clientCertFile,
          '--redis-key',
          m.clientKeyFile,
        ],
        { HOTSHIELD_REDIS_PASSWORD: PASSWORD },
      );
      const url = gw.url();
      await vi.waitFor(async () => expect((await request(`${url}/readyz`)).status).toBe(200), {
        timeout: 15_000,
        interval: 200,
      });
      expect((await request(`${url}/v1/kv/tls:gw`, { method: 'PUT', body: 'b' })).status).toBe(204);
      expect((await request(`${url}/v1/kv/tls:gw`)).text).toBe('b');
      expect((await request(`${url}/v1/kv/tls:gw`, { method: 'DELETE' })).status).toBe(204);
      const incr = await request(`${url}/v1/counters/tls:gw/incr?by=3&sync=1`, {
        method: 'POST',
      });
      expect(incr.status).toBe(200);
      expect(JSON.parse((await request(`${url}/v1/counters/tls:gw`)).text).value).toBe(3);
      const metrics = await request(`${url}/metrics`);
      expect(metrics.text).toMatch(/^hotshield_redis_ready 1$/m);
      expect(leaked(metrics.text)).toEqual([]);
      expect(leaked(gw.output())).toEqual([]);
    });
  });
});
