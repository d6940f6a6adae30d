/**
 * The hot-key route, over tier.hotKeys():
 *
 *   GET|HEAD /v1/hotkeys[?limit=N][&scope=cluster]
 *            200 {"windowSeconds","keys","counters","nodes"}: the process's hot set over
 *            the window (refresher/hot-report.ts); with scope=cluster, every live
 *            process's, merged (refresher/hot-fleet.ts), with "processes". Hot keys can be
 *            sensitive: the same guard as writes (the bearer token, or loopback without one).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './http-errors.ts';
import { methodNotAllowed, type RouteContext, sendJson } from './route-context.ts';

export const HOTKEYS_PATH = '/v1/hotkeys';

const NO_STORE = { 'cache-control': 'no-store' };

/** `?limit=`: an integer (the tier checks its range), default the tier's. */
export function limitOf(query: URLSearchParams): number | undefined {
  const raw = query.get('limit');
  if (raw === null) return undefined;
  if (!/^\d{1,4}$/.test(raw))
    throw new HttpError('HS_ERR_BAD_REQUEST', 'limit must be a positive integer, like 10');
  return Number(raw);
}

export async function routeHotKeys(
  ctx: RouteContext,
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
): Promise<number> {
  const method = req.method ?? 'GET';
  const head = method === 'HEAD';
  if (method !== 'GET' && !head) throw methodNotAllowed('GET, HEAD');
  ctx.guardWrite(req);
  const scope = query.get('scope') ?? undefined;
  const report = await ctx.tier.hotKeys({
    limit: limitOf(query),
    scope: scope as 'process' | 'cluster' | undefined,
  });
  return sendJson(res, 200, JSON.stringify(report), head, NO_STORE);
}
