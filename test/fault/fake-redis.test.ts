/**
 * Fault suite, hostile input: a gateway over a fake Redis node (test/fixtures/redis/fake-redis.ts)
 * that answers with garbage, huge or malicious replies: errors, not crashes.
 *
 * For each hostile reply, in standalone (`--redis redis://…`) and cluster mode (`--redis
 * host:port`, the fake announcing itself as a one-node cluster): every request gets a
 * well-formed 503, 404 or 200 (204/202 for writes) within the request timeout (500 ms,
 * plus slack for a busy machine); the gateway process stays up, no HTTP thread or refresher
 * dies; once the fake behaves again (its connections reset) the gateway serves from it
 * within seconds; memory stays bounded. Cluster mode also gets hostile slot maps.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type GatewayChild, startGateway } from '../fixtures/gateway/gateway-process.ts';
import { errorCode, type Reply, request } from '../fixtures/gateway/http.ts';
import { alive, rssMiB } from '../fixtures/proc.ts';
import { type FakeRedis, resp, type Script, startFakeRedis } from '../fixtures/redis/fake-redis.ts';

const REQUEST_TIMEOUT_MS = 500;
/** How late a reply may be on a busy shared machine, on top of the request timeout. */
const SLACK_MS = 4000;

interface Probe {
  what: string;
  status: number | string;
  ms: number;
  allowed: number[];
  reply?: Reply;
}

/** Requests of every kind at once, each with the statuses the README allows it here. */
async function probe(gw: GatewayChild, tag: string, get = [404, 503]): Promise<Probe[]> {
  const started = performance.now();
  const one = async (what: string, path: string, allowed: number[], method = 'GET') => {
    try {
      const reply = await request(`${gw.url}${path}`, {
        method,
        body: method === 'PUT' ? 'value' : undefined,
      });
      return { what, status: reply.status, ms: performance.now() - started, allowed, reply };
    } catch (error) {
      return { what, status: String(error), ms: performance.now() - started, allowed };
    }
  };
  return Promise.all([
    ...[0, 1, 2, 3].map((i) => one('GET', `/v1/kv/miss:${tag}:${i}`, get)),
    one('PUT', `/v1/kv/w:${tag}`, [204, 503], 'PUT'),
    one('DELETE', `/v1/kv/w:${tag}`, [204, 503], 'DELETE'),
    one('incr sync', `/v1/counters/c:${tag}/incr?sync=1`, [200, 202, 503], 'POST'),
    one('counter', `/v1/counters/c:${tag}`, [200, 503]),
    one('readyz', '/readyz', [200, 503]),
    one('healthz', '/healthz', [200]),
  ]);
}

/** What went wrong with the probes: statuses, lateness, bodies. */
function misbehaviour(probes: Probe[]): string[] {
  const out: string[] = [];
  for (const p of probes) {
    if (typeof p.status !== 'number' || !p.allowed.includes(p.status))
      out.push(`${p.what} → ${p.status} ${p.reply?.text.slice(0, 120) ?? ''}`);
    if (p.ms > REQUEST_TIMEOUT_MS + SLACK_MS) out.push(`${p.what} took ${p.ms.toFixed(0)} ms`);
    if (p.reply && p.reply.status >= 400 && p.what !== 'readyz' && errorCode(p.reply) === undefined)
      out.push(`${p.what} → ${p.reply.status} without a JSON error body`);
  }
  return out;
}

/** The gateway over `fake`, with what a hostile-Redis test checks after each phase. */
function hostileGateway(mode: 'standalone' | 'cluster') {
  const ctx = {} as {
    fake: FakeRedis;
    gw: GatewayChild;
    pid: number;
    rssAtStart: number;
    respawns: () => Promise<number>;
    /** Behave again, reset connections, and wait until a value is served from the fake. */
    recovered: (tag: string) => Promise<number>;
    /** Log lines saying a thread or process died. */
    deaths: () => string[];
    /** After a hostile phase: every probe answered as allowed, recovery, nothing died. */
    survived: (tag: string, probes: Probe[], respawnsBefore: number) => Promise<void>;
  };
  beforeAll(async () => {
    ctx.fake = await startFakeRedis();
    ctx.gw = await startGateway([
      '--redis',
      mode === 'cluster' ? ctx.fake.seeds : ctx.fake.url,
      '--port',
      String(await freePort()),
      '--threads',
      '2',
      '--request-timeout',
      `${REQUEST_TIMEOUT_MS}ms`,
      '--flush-interval',
      '50ms',
    ]);
    ctx.pid = Number(ctx.gw.logs.find((l) => l.msg === 'gateway process listening')?.pid);
    ctx.rssAtStart = rssMiB(ctx.pid);
    ctx.respawns = async () => {
      const metrics = (await request(`${ctx.gw.url}/metrics`)).text;
      return Number(/^hotshield_refresher_respawns_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    };
    ctx.recovered = async (tag) => {
      ctx.fake.script = undefined;
      ctx.fake.handshakeScript = undefined;
      ctx.fake.stalled = false;
      ctx.fake.dropConnections();
      const key = `known:${tag}`;
      ctx.fake.store.set(key, Buffer.from(`value of ${tag}`));
      const started = performance.now();
      while (performance.now() - started < 15_000) {
        const r = await request(`${ctx.gw.url}/v1/kv/${key}`).catch(() => undefined);
        if (r?.status === 200 && r.text === `value of ${tag}`) return performance.now() - started;
        await sleep(100);
      }
      return Number.POSITIVE_INFINITY;
    };
    ctx.deaths = () =>
      ctx.gw.logs
        .filter((l) => /crashed|exited|died|giving up/.test(String(l.msg)))
        .map((l) => String(l.msg));
    ctx.survived = async (tag, probes, respawnsBefore) => {
      const recoveredMs = await ctx.recovered(tag);
      expect(misbehaviour(probes)).toEqual([]);
      expect(recoveredMs).toBeLessThan(15_000);
      expect(alive(ctx.pid)).toBe(true);
      expect(ctx.deaths()).toEqual([]);
      expect(await ctx.respawns()).toBe(respawnsBefore);
    };
  });
  afterAll(async () => {
    await ctx.gw?.stop();
  });
  return ctx;
}

/** Hostile answers to data commands (GET, SET, DEL, EVAL…), by name. */
function hostileReplies(fake: () => FakeRedis, deadPort: () => number): Record<string, Script> {
  return {
    'an error for everything': () => resp.error('ERR hostile'),
    'garbage bytes': () => Buffer.from('?\x00\xff garbage \r\n\r\n*-5\r\n$abc\r\n'),
    'a 100 MB bulk header, then nothing': () => `$104857600\r\n${'x'.repeat(1000)}`,
    'arrays nested 100,000 deep': () => `${'*1\r\n'.repeat(100_000)}:1\r\n`,
    'MOVED to slot 99999': () => resp.error(`MOVED 99999 127.0.0.1:${fake().port}`),
    'MOVED to a port nobody listens on': (_name, args) =>
      resp.error(`MOVED ${calculateSlot(args[0] ?? '')} 127.0.0.1:${deadPort()}`),
    'ASK with garbage': () => resp.error('ASK x y'),
    'a close in the middle of a reply': (_name, _args, conn) => {
      conn.write('$10\r\nabc');
      conn.socket.destroy();
      return null;
    },
    'a negative bulk length': () => '$-7\r\n',
  };
}

/**
 * Replies that once broke the refresher, kept as regressions:
 *
 * - A reply of the wrong type to GET (an array, a RESP3 map, an integer) was taken as the
 *   value: glued into a 200, or a 500 from the codec. l2-client.ts now checks each reply's
 *   shape (`Batch.reply`): anything but a string or nil is that key's 503.
 * - A reply nobody asked for (an extra reply, a RESP3 push of null) and, in cluster mode, an
 *   `ASK x y` redirect made ioredis throw from its reply handling on the next tick, an
 *   uncaught exception that killed the refresher thread, over and over while Redis kept
 *   doing it. worker.ts now catches those (and only those) and resets the connections; a
 *   malformed redirect in a node's pipeline is that key's error and is never followed.
 */
const BREAKING_REPLIES: Record<string, Script> = {
  'an array answering GET': () => resp.array([resp.bulk('a'), resp.bulk('b')]),
  'a RESP3 map answering GET': () => '%1\r\n+a\r\n+b\r\n',
  'an integer answering GET': () => resp.int(42),
  'an extra unsolicited reply': () => '$-1\r\n$-1\r\n',
  'a RESP3 push with a null type': () => '>1\r\n_\r\n$-1\r\n',
};

for (const mode of ['standalone', 'cluster'] as const) {
  describe(`a gateway over a hostile Redis (${mode})`, () => {
    const ctx = hostileGateway(mode);
    let deadPort = 0;
    beforeAll(async () => {
      deadPort = await freePort();
    });
    let phase = 0;

    const replies = hostileReplies(
      () => ctx.fake,
      () => deadPort,
    );
    for (const [name, script] of Object.entries(replies)) {
      it(`${name}: well-formed errors in time, nothing dies, then recovery`, async () => {
        const tag = `${mode}-${phase++}`;
        const respawnsBefore = await ctx.respawns();
        ctx.fake.script = script;
        await ctx.survived(tag, await probe(ctx.gw, tag), respawnsBefore);
      });
    }

    it('an 8 MiB value (over --max-value-bytes): served uncached or 503 in time, nothing dies, then recovery', async () => {
      const tag = `${mode}-${phase++}`;
      const respawnsBefore = await ctx.respawns();
      ctx.fake.script = () => resp.bulk(Buffer.alloc(8 * 1024 * 1024, 0x41));
      const probes = await probe(ctx.gw, tag, [200, 503]);
      for (const p of probes)
        if (p.what === 'GET' && p.status === 200)
          expect(p.reply?.body.length).toBe(8 * 1024 * 1024);
      await ctx.survived(tag, probes, respawnsBefore);
    });

    it('replies of the wrong type, or never asked for: well-formed errors in time, nothing dies, then recovery', async () => {
      const outcome: Record<string, unknown> = {};
      const clean: Record<string, unknown> = {};
      for (const [name, script] of Object.entries(BREAKING_REPLIES)) {
        const tag = `${mode}-${phase++}`;
        const respawnsBefore = await ctx.respawns();
        const failedBefore = ctx.gw.logs.filter((l) => l.msg === 'request failed').length;
        ctx.fake.script = script;
        const probes = await probe(ctx.gw, tag);
        const recoveredMs = await ctx.recovered(tag);
        outcome[name] = {
          misbehaviour: misbehaviour(probes),
          refresherRespawns: (await ctx.respawns()) - respawnsBefore,
          requestFailedLogs:
            ctx.gw.logs.filter((l) => l.msg === 'request failed').length - failedBefore,
          recovered: recoveredMs < 15_000,
        };
        clean[name] = {
          misbehaviour: [],
          refresherRespawns: 0,
          requestFailedLogs: 0,
          recovered: true,
        };
      }
      expect(alive(ctx.pid)).toBe(true);
      expect(outcome).toEqual(clean);
    });

    it('a Redis that stalls answers 503 within the timeout, and is served again once it resumes (no reset)', async () => {
      const tag = `${mode}-stall`;
      ctx.fake.stalled = true;
      const probes = await probe(ctx.gw, tag);
      expect(misbehaviour(probes)).toEqual([]);
      expect(probes.filter((p) => p.what === 'GET').map((p) => p.status)).toEqual([
        503, 503, 503, 503,
      ]);
      // The late replies arrive in order: the connection is in step again, no reset needed.
      ctx.fake.stalled = false;
      const key = `late:${tag}`;
      ctx.fake.store.set(key, Buffer.from('late'));
      const started = performance.now();
      let status = 0;
      while (status !== 200 && performance.now() - started < 10_000) {
        status = (await request(`${ctx.gw.url}/v1/kv/${key}`)).status;
        if (status !== 200) await sleep(100);
      }
      expect(status).toBe(200);
    });

    it('a truncated 100 MB bulk reply is recovered from without the fake dropping the connection', async () => {
      // After one reply that promises 100 MB and stops, every later reply is read as part
      // of that bulk and every call times out (this once lasted for good, 503s while
      // /readyz said 200). The node's circuit opens on those timeouts and, because they
      // were timeouts, l2-client.ts resets its connection: the parser starts clean.
      const tag = `${mode}-truncated`;
      ctx.fake.script = () => `$104857600\r\n${'x'.repeat(1000)}`;
      await probe(ctx.gw, tag);
      ctx.fake.script = undefined; // behaves again, but the connection is not reset
      const key = `after:${tag}`;
      ctx.fake.store.set(key, Buffer.from('after'));
      const started = performance.now();
      let status = 0;
      while (status !== 200 && performance.now() - started < 5_000) {
        status = (await request(`${ctx.gw.url}/v1/kv/${key}`)).status;
        if (status !== 200) await sleep(200);
      }
      const recovered = await ctx.recovered(`${tag}-reset`); // leave the next test a clean connection
      expect(recovered).toBeLessThan(15_000);
      expect(status).toBe(200);
    });

    if (mode === 'cluster') {
      const slotsReply =
        (reply: string | Buffer): Script =>
        (name, args) =>
          name === 'CLUSTER' && args[0]?.toString().toUpperCase() === 'SLOTS' ? reply : undefined;
      const node = (host: string, port: number) => resp.array([resp.bulk(host), resp.int(port)]);
      const slotMaps: Record<string, () => Script> = {
        'slots up to 99999': () =>
          slotsReply(
            resp.array([
              resp.array([resp.int(0), resp.int(99_999), node('127.0.0.1', ctx.fake.port)]),
            ]),
          ),
        'every slot on port 0': () =>
          slotsReply(
            resp.array([resp.array([resp.int(0), resp.int(16_383), node('127.0.0.1', 0)])]),
          ),
        'a status instead of a slot map': () => slotsReply('+OK\r\n'),
        'cluster_state:fail': () => (name, args) =>
          name === 'CLUSTER' && args[0]?.toString().toUpperCase() === 'INFO'
            ? resp.bulk('cluster_state:fail\r\n')
            : undefined,
      };
      for (const [name, makeScript] of Object.entries(slotMaps)) {
        it(`a hostile slot map (${name}): well-formed errors in time, nothing dies, then recovery`, async () => {
          const tag = `slots-${phase++}`;
          const respawnsBefore = await ctx.respawns();
          ctx.fake.handshakeScript = makeScript();
          ctx.fake.dropConnections();
          await sleep(2500); // the client re-reads the slot map (slotsRefreshInterval 2 s)
          await ctx.survived(tag, await probe(ctx.gw, tag), respawnsBefore);
        });
      }
    }

    it('memory stayed bounded through all of it', async () => {
      await sleep(500);
      const rss = rssMiB(ctx.pid);
      console.log(
        `fake-redis (${mode}): gateway RSS ${ctx.rssAtStart.toFixed(0)} → ${rss.toFixed(0)} MiB; calls seen by the fake: ${JSON.stringify(Object.fromEntries(ctx.fake.calls))}`,
      );
      expect(rss - ctx.rssAtStart).toBeLessThan(300);
      expect(alive(ctx.pid)).toBe(true);
    });
  });
}
