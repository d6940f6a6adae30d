/**
 * The gateway's HTTP surface, as one request handler over the tier API (no second read
 * path). Routes:
 *
 *   GET|HEAD|PUT|DELETE /v1/kv/:key                              kv-routes.ts
 *   POST /v1/counters/:name/incr, GET|HEAD /v1/counters/:name    counter-routes.ts
 *   GET|HEAD /v1/hotkeys[?limit=N][&scope=cluster]               hotkeys-routes.ts
 *   GET|HEAD /dashboard[/asset]    the live hot-key page          dashboard-routes.ts
 *   GET      /healthz        alive
 *   GET      /readyz         tier ready and Redis reachable, not draining
 *   GET      /metrics        Prometheus text for the whole process
 *
 * Bad input is refused before anything is touched, with the JSON error body of
 * http-errors.ts.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { closeAfterReply } from './body.ts';
import { COUNTERS_PREFIX, routeCounter } from './counter-routes.ts';
import { DASHBOARD_PATH, routeDashboard } from './dashboard-routes.ts';
import { HOTKEYS_PATH, routeHotKeys } from './hotkeys-routes.ts';
import { HttpError, sendError } from './http-errors.ts';
import { answerFromL1, KV_PREFIX, routeKv } from './kv-routes.ts';
import { methodNotAllowed, queryOf, type RouteContext, sendJson } from './route-context.ts';

const READ_METHODS = 'GET, HEAD';

/** /healthz, /readyz, /metrics; resolves to the status sent. */
async function routeOps(
  ctx: RouteContext,
  res: ServerResponse,
  path: string,
  method: string,
): Promise<number> {
  const head = method === 'HEAD';
  if (method !== 'GET' && !head) throw methodNotAllowed(READ_METHODS);
  if (path === '/healthz') return sendJson(res, 200, JSON.stringify({ status: 'ok' }), head);
  if (path === '/readyz') {
    const state = ctx.tier.stats().refresher.state;
    const ready = state === 'l2Ready' && !ctx.isDraining();
    const body = JSON.stringify({ ready, redis: state, draining: ctx.isDraining() });
    return sendJson(res, ready ? 200 : 503, body, head);
  }
  const { text, contentType } = await ctx.scrape();
  res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(head ? undefined : text);
  return 200;
}

const OPS_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** Route one request; resolves to the route label (for metrics) and the status sent. */
async function route(
  ctx: RouteContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<[string, number]> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (path.startsWith(KV_PREFIX)) return ['kv', await routeKv(ctx, req, res, path)];
  if (path.startsWith(COUNTERS_PREFIX)) {
    const rest = path.slice(COUNTERS_PREFIX.length);
    return ['counter', await routeCounter(ctx, req, res, rest, queryOf(url))];
  }
  if (path === HOTKEYS_PATH) return ['hotkeys', await routeHotKeys(ctx, req, res, queryOf(url))];
  if (path === DASHBOARD_PATH || path.startsWith(`${DASHBOARD_PATH}/`))
    return ['dashboard', routeDashboard(req, res, path.slice(DASHBOARD_PATH.length))];
  if (OPS_PATHS.has(path))
    return [path.slice(1), await routeOps(ctx, res, path, req.method ?? 'GET')];
  throw new HttpError('HS_ERR_NO_ROUTE', 'no such route');
}

/** The route label of a request that failed (its route may not have been reached). */
function failedRouteName(url: string): string {
  if (url.startsWith(KV_PREFIX)) return 'kv';
  if (url.startsWith(HOTKEYS_PATH)) return 'hotkeys';
  if (url.startsWith(DASHBOARD_PATH)) return 'dashboard';
  return url.startsWith(COUNTERS_PREFIX) ? 'counter' : 'other';
}

export function requestHandler(
  ctx: RouteContext,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = performance.now();
    const method = req.method ?? 'GET';
    if (ctx.isDraining()) res.setHeader('connection', 'close');
    const answered = answerFromL1(ctx, req, res, method);
    if (typeof answered === 'number' && answered !== 0) {
      ctx.metrics.observe('kv', method, answered, (performance.now() - started) / 1000);
      return;
    }
    const routed =
      answered === 0 ? route(ctx, req, res) : answered.then((s): [string, number] => ['kv', s]);
    routed
      .catch((error: unknown): [string, number] => {
        if (!req.complete) closeAfterReply(req, res);
        let status = 500;
        try {
          status = sendError(res, error, method === 'HEAD');
        } catch {
          // The response was already under way: all that is left is to cut it.
          res.destroy();
        }
        if (status === 500) ctx.log.error({ err: error, url: req.url, method }, 'request failed');
        return [failedRouteName(req.url ?? ''), status];
      })
      .then(([name, status]) =>
        ctx.metrics.observe(name, method, status, (performance.now() - started) / 1000),
      );
  };
}
