/**
 * The status a request gets for each error it can meet, with the errors made by the code
 * that throws them (a function that starts throwing a code with no status would turn a
 * client's mistake into a 500 here), and what an error answer looks like.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { HotshieldError } from '../../../src/errors.ts';
import { makeWriteGuard } from '../../../src/gateway/auth.ts';
import { readBody } from '../../../src/gateway/body.ts';
import { byOf, counterNameOf, syncOf } from '../../../src/gateway/counter-routes.ts';
import { describeError, HttpError, sendError } from '../../../src/gateway/http-errors.ts';
import { keyOf } from '../../../src/gateway/kv-routes.ts';
import { checkCounterName } from '../../../src/keys/shard-keys.ts';
import { createL1, L1Table } from '../../../src/l1/index.ts';
import { withDeadline } from '../../../src/refresher/deadline.ts';
import { toL2Error } from '../../../src/refresher/l2-errors.ts';
import { checkKey, checkWritable } from '../../../src/tier/key-checks.ts';

/** What `fn` throws (or rejects with). */
async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const request = (headers: Record<string, string>, remoteAddress = '127.0.0.1') =>
  ({ headers, socket: { remoteAddress } }) as unknown as IncomingMessage;

/** A response that records what was sent. */
function recorder() {
  const sent: { status?: number; headers?: Record<string, unknown>; body?: string } = {};
  const res = {
    writeHead(status: number, headers: Record<string, unknown>) {
      sent.status = status;
      sent.headers = headers;
    },
    end(body?: string) {
      sent.body = body;
    },
  } as unknown as ServerResponse;
  return { res, sent };
}

describe('the status of every error a request can meet', () => {
  it("a client's mistakes are 4xx, with the code of the check that refused them", async () => {
    const table = L1Table.attach(
      createL1({ bytes: 1 << 20, maxValueBytes: 1024, maxCounters: 64 }),
    );
    const cases: Array<[unknown, number, string]> = [
      [await thrown(() => keyOf('%E0%A4%A', 64)), 400, 'HS_ERR_KEY_ENCODING'],
      [await thrown(() => keyOf('', 64)), 400, 'HS_ERR_KEY_EMPTY'],
      [await thrown(() => keyOf('x'.repeat(65), 64)), 400, 'HS_ERR_KEY_TOO_LONG'],
      [await thrown(() => keyOf('a:__hotshield:total', 64)), 400, 'HS_ERR_KEY_RESERVED'],
      [await thrown(() => checkKey('\ud800', 64)), 400, 'HS_ERR_KEY_INVALID'],
      [await thrown(() => checkWritable('likes#1', 1)), 400, 'HS_ERR_KEY_INVALID'],
      [await thrown(() => counterNameOf('%FF')), 400, 'HS_ERR_KEY_ENCODING'],
      [await thrown(() => checkCounterName('a{b}')), 400, 'HS_ERR_COUNTER_NAME'],
      [await thrown(() => byOf(new URLSearchParams('by=0'))), 400, 'HS_ERR_BAD_REQUEST'],
      [await thrown(() => syncOf(new URLSearchParams('sync=2'))), 400, 'HS_ERR_BAD_REQUEST'],
      [await thrown(() => table.addCounter('c', 0)), 400, 'HS_ERR_COUNTER_DELTA'],
      [await thrown(() => makeWriteGuard('t'.repeat(16))(request({}))), 401, 'HS_ERR_UNAUTHORIZED'],
      [
        await thrown(() => makeWriteGuard(undefined)(request({}, '10.0.0.1'))),
        403,
        'HS_ERR_FORBIDDEN',
      ],
      [
        await thrown(() => readBody(request({ 'content-length': '11' }), 10)),
        413,
        'HS_ERR_VALUE_TOO_LARGE',
      ],
    ];
    const full = await thrown(() => {
      for (let n = 0; n <= 64; n++) table.addCounter(`c${n}`, 1);
    });
    cases.push([full, 507, 'HS_ERR_COUNTER_TABLE_FULL']);
    for (const [error, status, code] of cases) {
      expect(describeError(error), code).toMatchObject({ status, code });
      expect(describeError(error).message).toBe((error as Error).message);
    }
    table.close();
  });

  it('Redis failing, a slow refresher or a closed tier are 503s with Retry-After', async () => {
    const failures = [
      toL2Error(new Error('Connection is closed.')),
      await thrown(() => withDeadline(new Promise(() => {}), 1, 'GET k')),
      new HotshieldError('HS_ERR_TIMEOUT', 'no value within 1000 ms'),
      new HotshieldError('HS_ERR_QUEUE_FULL', '100000 callers are already waiting'),
      new HotshieldError('HS_ERR_CLOSED', 'the tier is closed'),
    ];
    for (const error of failures) {
      const { res, sent } = recorder();
      expect(sendError(res, error, false)).toBe(503);
      expect(sent.headers?.['retry-after']).toBe('1');
      expect(JSON.parse(sent.body ?? '')).toEqual({
        error: { code: (error as HotshieldError).code, message: (error as Error).message },
      });
    }
  });

  it('an error answer carries its own headers, and a HEAD answer has no body', () => {
    const { res, sent } = recorder();
    const error = new HttpError('HS_ERR_METHOD', 'allowed methods: GET, HEAD', {
      allow: 'GET, HEAD',
    });
    expect(sendError(res, error, true)).toBe(405);
    expect(sent.headers).toMatchObject({ allow: 'GET, HEAD' });
    expect(sent.headers?.['content-length']).toBeGreaterThan(0);
    expect(sent.body).toBeUndefined();
    expect(sent.headers?.['retry-after']).toBeUndefined();
  });

  it('anything unexpected is a 500 that says nothing of the inside, codes no request meets too', () => {
    const internal = { status: 500, code: 'HS_ERR_INTERNAL', message: 'internal error' };
    expect(describeError(new Error('secret path /etc/x'))).toEqual(internal);
    expect(describeError(undefined)).toEqual(internal);
    expect(describeError({ code: 'toString', message: 'x' })).toEqual(internal);
    expect(describeError(new HotshieldError('HS_ERR_UNFLUSHED', 'likes: 5 lost'))).toEqual(
      internal,
    );
  });
});
