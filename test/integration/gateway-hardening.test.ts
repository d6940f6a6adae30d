/**
 * Regression tests for the gateway found in review: hostile stored values must not kill
 * an HTTP thread, body limits hold for chunked bodies, internal keys stay unreachable
 * however they are encoded, and no message echoes a Redis password.
 */

import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, parseConfig } from '../../src/cli/config.ts';
import { redactRedis } from '../../src/cli/supervisor.ts';
import { type GatewayProcess, startGatewayProcess } from '../../src/gateway/process.ts';
import { errorCode, request } from '../fixtures/gateway/http.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';

const TOKEN = 'review-token-0123456789';
const cluster = useOwnCluster();
let gw: GatewayProcess;
let base: string;

beforeAll(async () => {
  const parsed = parseConfig(
    [
      '--redis',
      cluster.seeds,
      '--port',
      '0',
      '--threads',
      '2',
      '--soft-ttl',
      '30s',
      '--max-value-bytes',
      '4kb',
      '--token',
      TOKEN,
    ],
    {},
  );
  if (parsed.help) throw new Error('unexpected --help');
  gw = await startGatewayProcess(parsed.config, cluster.seeds, pino({ level: 'silent' }));
  base = `http://127.0.0.1:${gw.port}`;
});
afterAll(async () => {
  await gw?.drain(2000);
});

/** Another gateway process on `port` (0: a free one), drained after the test. */
async function ownGateway(port = 0): Promise<GatewayProcess> {
  const parsed = parseConfig(
    ['--redis', cluster.seeds, '--port', String(port), '--threads', '2', '--soft-ttl', '30s'],
    {},
  );
  if (parsed.help) throw new Error('unexpected --help');
  const g = await startGatewayProcess(parsed.config, cluster.seeds, pino({ level: 'silent' }));
  onTestFinished(() => g.drain(2000));
  return g;
}

/** Send raw bytes, return whatever the server answers before closing (or the error). */
function rawExchange(port: number, payload: string | Buffer, endAfter = false): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(payload);
      if (endAfter) socket.end();
    });
    let out = '';
    socket.on('data', (c) => {
      out += c.toString('latin1');
    });
    socket.on('close', () => resolve(out));
    socket.on('error', (e) => resolve(`${out}<error ${(e as NodeJS.ErrnoException).code}>`));
  });
}

describe('body limits', () => {
  it('chunked PUT over --max-value-bytes gets 413 (not a reset connection)', async () => {
    const chunk = 'x'.repeat(1024);
    const chunks = Array.from({ length: 6 }, () => `400\r\n${chunk}\r\n`).join('');
    const reply = await rawExchange(
      gw.port,
      `PUT /v1/kv/rv:chunked HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\n` +
        `transfer-encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`,
    );
    expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 413 Payload Too Large');
    expect(await clusterClient(cluster.seeds).exists('rv:chunked')).toBe(0);
  });

  it('PUT with content-length over --max-value-bytes gets 413 (control)', async () => {
    const r = await request(`${base}/v1/kv/rv:big`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: 'x'.repeat(4097),
    });
    expect(r.status).toBe(413);
  });
});

describe('internal keys', () => {
  for (const path of [
    '/v1/kv/a%3A__hotshield',
    '/v1/kv/a:__hotshield',
    '/v1/kv/a%3a%5f%5fhotshield',
    '/v1/kv/%7Bx%7D:__hotshield:seq?x=1',
  ]) {
    it(`GET/HEAD/PUT/DELETE ${path} → 400 HS_ERR_KEY_RESERVED`, async () => {
      for (const method of ['GET', 'HEAD', 'PUT', 'DELETE']) {
        const r = await request(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${TOKEN}` },
          body: method === 'PUT' ? 'x' : undefined,
        });
        expect(r.status).toBe(400);
        if (method !== 'HEAD') expect(errorCode(r)).toBe('HS_ERR_KEY_RESERVED');
      }
    });
  }
});

describe('secrets in messages', () => {
  it('a --redis URL rejected by validation does not echo its password', () => {
    let message = '';
    try {
      parseConfig(['--redis', 'redis://:sup3rsecretpw@127.0.0.1:6379/notadb'], {});
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).not.toBe('');
    expect(message).not.toContain('sup3rsecretpw');
  });

  it('redactRedis hides a password containing an unescaped @', () => {
    // WHATWG URL takes the last @ as the separator: the password is "p@ss-w0rd".
    const url = 'redis://user:p@ss-w0rd@127.0.0.1:6379';
    expect(new URL(url).password).toBe('p%40ss-w0rd');
    expect(redactRedis(url)).not.toContain('ss-w0rd');
  });
});

describe('values written by other applications', () => {
  it('a stored envelope with a control character in its type does not crash an HTTP thread', async () => {
    // MAGIC, length, "text/plain\nx", body: as another writer could store it.
    const type = Buffer.from('text/plain\nx', 'latin1');
    const value = Buffer.concat([
      Buffer.from([0x00, 0x68, 0x73, 0x63, 0x74, 0x01, type.length]),
      type,
      Buffer.from('body'),
    ]);
    await clusterClient(cluster.seeds).set('rv:badtype', value);
    // A gateway of its own: this value once took every HTTP thread down.
    const own = await ownGateway();
    const url = `http://127.0.0.1:${own.port}/v1/kv/rv:badtype`;
    const startsBefore = own.threadStarts();
    const replies = [];
    // The first request misses (async route), the rest hit L1 (the synchronous path).
    for (let i = 0; i < 7; i++) replies.push(await request(url));
    await sleep(300);
    // Not an envelope any HTTP header could carry: served as the bytes they are.
    for (const r of replies) {
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/octet-stream');
      expect(r.body).toEqual(value);
    }
    expect(own.threadStarts() - startsBefore).toBe(0);
  });
});
