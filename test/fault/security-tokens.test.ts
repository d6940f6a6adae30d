/**
 * Who may write through the gateway (issue 7, security), table-driven over every write
 * route (PUT and DELETE /v1/kv/:key, POST /v1/counters/:name/incr with and without
 * sync): with a token, no / a wrong / the right bearer token → 401 / 401 / 2xx, from
 * loopback and from a non-loopback address alike, and a refused write changes nothing;
 * without a token, loopback clients may write and others get 403. The token shows in no
 * log line, reply or /metrics. (The comparison itself is constant-time:
 * src/gateway/auth.ts hashes both sides and uses crypto.timingSafeEqual.)
 *
 * The non-loopback client is this machine's own non-loopback interface address (the
 * gateways listen on 0.0.0.0): a connection to it has that address as its source. If
 * the machine has none, those cases are skipped; test/unit/gateway/auth.test.ts covers
 * the guard with crafted socket addresses.
 */
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CapturedGateway, startCapturedGateway } from '../fixtures/gateway/gateway-capture.ts';
import { errorCode, type Reply, request } from '../fixtures/gateway/http.ts';

const TOKEN = 'security-T0ken-0123456789abcdef';
const OUTSIDE = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

let withToken: CapturedGateway;
let withoutToken: CapturedGateway;
const replies: Reply[] = [];

beforeAll(async () => {
  const args = ['--redis', inject('redisSeeds'), '--port', '0', '--threads', '1'];
  args.push('--request-timeout', '5s', '--l2-timeout', '1s'); // slack for a loaded machine
  [withToken, withoutToken] = await Promise.all([
    startCapturedGateway([...args, '--host', '0.0.0.0'], { HOTSHIELD_TOKEN: TOKEN }),
    startCapturedGateway([...args, '--host', '0.0.0.0']),
  ]);
});
afterAll(async () => {
  await Promise.all([withToken?.stop(), withoutToken?.stop()]);
});

interface WriteRoute {
  name: string;
  method: string;
  path: (id: string) => string;
  body?: string;
  ok: number;
}

/** Every write route, with the status of an accepted request. */
const WRITES: WriteRoute[] = [
  { name: 'PUT /v1/kv', method: 'PUT', path: (id) => `/v1/kv/sec:${id}`, body: 'new', ok: 204 },
  { name: 'DELETE /v1/kv', method: 'DELETE', path: (id) => `/v1/kv/sec:${id}`, ok: 204 },
  {
    name: 'POST counter incr',
    method: 'POST',
    path: (id) => `/v1/counters/sec:${id}/incr?by=2`,
    ok: 202,
  },
  {
    name: 'POST counter incr sync',
    method: 'POST',
    path: (id) => `/v1/counters/sec:${id}/incr?by=2&sync=1`,
    ok: 200,
  },
];

const WRONG_AUTHORIZATIONS: Array<string | undefined> = [
  undefined,
  '',
  'Bearer',
  'Bearer wrong-T0ken-0123456789abcdef',
  `Bearer ${TOKEN}x`,
  `Bearer ${TOKEN.slice(0, -1)}`,
  `bearer ${TOKEN}`,
  `Bearer  ${TOKEN}`,
  TOKEN,
  `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`,
];

async function send(
  gw: CapturedGateway,
  route: WriteRoute,
  id: string,
  authorization?: string,
  host?: string,
): Promise<Reply> {
  const headers = authorization === undefined ? {} : { authorization };
  const reply = await request(`${gw.url(host)}${route.path(id)}`, {
    method: route.method,
    headers,
    body: route.body,
  });
  replies.push(reply);
  return reply;
}

/** What the key or counter `id` holds now, to prove that a refused write did nothing. */
async function state(gw: CapturedGateway, route: WriteRoute, id: string): Promise<string> {
  const path = route.method === 'POST' ? `/v1/counters/sec:${id}` : `/v1/kv/sec:${id}`;
  const reply = await request(`${gw.url()}${path}`);
  return `${reply.status} ${reply.text}`;
}

/** Put `old` at sec:<id> (through the gateway, authorized) so a refused write has something to spare. */
async function seed(gw: CapturedGateway, id: string, token?: string): Promise<void> {
  const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const reply = await request(`${gw.url()}/v1/kv/sec:${id}`, {
    method: 'PUT',
    headers,
    body: 'old',
  });
  expect(reply.status).toBe(204);
}

describe('with a token', () => {
  for (const route of WRITES) {
    it(`${route.name}: no or a wrong token → 401 and nothing changes; the right one → ${route.ok}`, async () => {
      const id = `t-${route.method}-${route.ok}`;
      await seed(withToken, id, TOKEN);
      const before = await state(withToken, route, id);
      for (const authorization of WRONG_AUTHORIZATIONS) {
        const reply = await send(withToken, route, id, authorization);
        expect([authorization, reply.status, errorCode(reply)]).toEqual([
          authorization,
          401,
          'HS_ERR_UNAUTHORIZED',
        ]);
        expect(reply.headers['www-authenticate']).toBe('Bearer');
      }
      expect(await state(withToken, route, id)).toBe(before);
      expect((await send(withToken, route, id, `Bearer ${TOKEN}`)).status).toBe(route.ok);
      expect(await state(withToken, route, id)).not.toBe(before);
    });
  }

  it.skipIf(OUTSIDE === undefined)(
    `from a non-loopback address (${OUTSIDE}): the same 401 without the token, ${WRITES.map((w) => w.ok).join('/')} with it`,
    async () => {
      for (const route of WRITES) {
        const id = `t-outside-${route.method}-${route.ok}`;
        await seed(withToken, id, TOKEN);
        for (const authorization of [undefined, 'Bearer wrong-T0ken-0123456789abcdef']) {
          const reply = await send(withToken, route, id, authorization, OUTSIDE);
          expect([route.name, reply.status]).toEqual([route.name, 401]);
        }
        const reply = await send(withToken, route, id, `Bearer ${TOKEN}`, OUTSIDE);
        expect([route.name, reply.status]).toEqual([route.name, route.ok]);
      }
    },
  );

  it('reads need no token', async () => {
    await seed(withToken, 'readable', TOKEN);
    expect((await request(`${withToken.url()}/v1/kv/sec:readable`)).status).toBe(200);
    expect((await request(`${withToken.url()}/v1/counters/sec:readable`)).status).toBe(200);
    expect((await request(`${withToken.url()}/readyz`)).status).toBe(200);
  });
});

describe('without a token', () => {
  it('warns at start that only loopback clients may write', () => {
    expect(withoutToken.logs().some((l) => /no --token/.test(String(l.msg)))).toBe(true);
  });

  for (const route of WRITES) {
    it(`${route.name}: loopback clients may write (${route.ok}), with or without an Authorization header`, async () => {
      const id = `n-${route.method}-${route.ok}`;
      await seed(withoutToken, id);
      expect((await send(withoutToken, route, id)).status).toBe(route.ok);
      expect((await send(withoutToken, route, id, 'Bearer anything-at-all')).status).toBe(route.ok);
    });
  }

  it.skipIf(OUTSIDE === undefined)(
    `from a non-loopback address (${OUTSIDE}): every write → 403 and nothing changes; reads work`,
    async () => {
      for (const route of WRITES) {
        const id = `n-outside-${route.method}-${route.ok}`;
        await seed(withoutToken, id);
        const before = await state(withoutToken, route, id);
        for (const authorization of [undefined, `Bearer ${TOKEN}`]) {
          const reply = await send(withoutToken, route, id, authorization, OUTSIDE);
          expect([route.name, reply.status, errorCode(reply)]).toEqual([
            route.name,
            403,
            'HS_ERR_FORBIDDEN',
          ]);
        }
        expect(await state(withoutToken, route, id)).toBe(before);
      }
      const read = await request(`${withoutToken.url(OUTSIDE)}/v1/kv/sec:n-outside-PUT-204`);
      expect([read.status, read.text]).toEqual([200, 'old']);
    },
  );
});

describe('the token is never shown', () => {
  it('in replies, /metrics or anything the gateways printed', async () => {
    replies.push(await request(`${withToken.url()}/metrics`));
    replies.push(await request(`${withToken.url()}/readyz`));
    const seen = replies.map((r) => `${JSON.stringify(r.headers)}\n${r.text}`).join('\n');
    expect(replies.length).toBeGreaterThan(40);
    for (const text of [seen, withToken.output(), withoutToken.output()]) {
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(TOKEN.slice(0, -1));
      expect(text).not.toContain('wrong-T0ken');
    }
  });
});
