/**
 * The gateway's counter routes, over tier.counter(name):
 *
 *   POST     /v1/counters/:name/incr[?by=N][&sync=1]
 *            202 {"name","by","flushed":false} once the increment is in shared memory;
 *            with sync=1, 200 {…,"flushed":true} once Redis acknowledged the flush that
 *            carries it, or 202 {…,"flushed":false} if it did not within the request
 *            timeout (the increment stays recorded and is flushed later: do not retry).
 *            Bearer token or loopback, like PUT.
 *   GET|HEAD /v1/counters/:name     200 {"name","value"}: every shard plus this process's
 *            unflushed part; the value is exact (a JSON integer of any size).
 *
 * `:name` is percent-decoded after the path is split, so a name may hold an encoded `/`.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { wholeRequest } from './body.ts';
import { HttpError } from './http-errors.ts';
import { methodNotAllowed, type RouteContext, sendJson } from './route-context.ts';

export const COUNTERS_PREFIX = '/v1/counters/';
const INCR_SUFFIX = '/incr';
/** Largest |by|: what one L1 add may carry (l1/counters.ts MAX_COUNTER_DELTA). */
const MAX_BY = 2 ** 40;

function badRequest(message: string): HttpError {
  return new HttpError('HS_ERR_BAD_REQUEST', message);
}

/** The counter name in a path segment (still percent-encoded). */
export function counterNameOf(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new HttpError(
      'HS_ERR_KEY_ENCODING',
      'the counter name is not valid percent-encoded UTF-8',
    );
  }
}

/** `?by=`: a non-zero integer with |by| ≤ 2^40, default 1. */
export function byOf(query: URLSearchParams): number {
  const raw = query.get('by');
  if (raw === null) return 1;
  if (!/^[+-]?\d{1,16}$/.test(raw)) throw badRequest('by must be an integer, like 1 or -3');
  const by = Number(raw);
  if (by === 0) throw badRequest('by must not be 0');
  if (Math.abs(by) > MAX_BY) throw badRequest(`by must be at most 2^40 (${MAX_BY}) in size`);
  return by;
}

/** `?sync=`: 1/true or 0/false, default false. */
export function syncOf(query: URLSearchParams): boolean {
  const raw = query.get('sync');
  if (raw === null || raw === '0' || raw === 'false') return false;
  if (raw === '1' || raw === 'true') return true;
  throw badRequest('sync must be 1 or 0');
}

const NO_STORE = { 'cache-control': 'no-store' };

/** Route a request under /v1/counters/ (`rest` is the path after it); resolves to its status. */
export async function routeCounter(
  ctx: RouteContext,
  req: IncomingMessage,
  res: ServerResponse,
  rest: string,
  query: URLSearchParams,
): Promise<number> {
  const method = req.method ?? 'GET';
  if (rest.endsWith(INCR_SUFFIX)) {
    if (method !== 'POST') throw methodNotAllowed('POST');
    ctx.guardWrite(req);
    const counter = ctx.tier.counter(counterNameOf(rest.slice(0, -INCR_SUFFIX.length)));
    const by = byOf(query);
    const sync = syncOf(query);
    await wholeRequest(req, ctx.maxValueBytes);
    const reply = (flushed: boolean) =>
      `{"name":${JSON.stringify(counter.name)},"by":${by},"flushed":${flushed}}`;
    if (!sync) {
      counter.incr(by);
      return sendJson(res, 202, reply(false), false, NO_STORE);
    }
    try {
      await counter.incr(by, { sync: true });
    } catch (error) {
      if ((error as { code?: string }).code !== 'HS_ERR_UNCONFIRMED') throw error;
      return sendJson(res, 202, reply(false), false, NO_STORE);
    }
    return sendJson(res, 200, reply(true), false, NO_STORE);
  }
  if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
  const counter = ctx.tier.counter(counterNameOf(rest));
  const value = await counter.readExact();
  const text = `{"name":${JSON.stringify(counter.name)},"value":${value.toString()}}`;
  return sendJson(res, 200, text, method === 'HEAD', NO_STORE);
}
