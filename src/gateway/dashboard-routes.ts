/**
 * The live hot-key page: `GET /dashboard` and its assets under `/dashboard/`, all served
 * by the gateway itself (uPlot from the package's dependencies: no CDN, so the page
 * works where the gateway does, and the browser talks to nobody else). The page holds no
 * data: it reads `/v1/hotkeys` like any client, behind its guard. Its content security
 * policy allows this origin only.
 */

import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { HttpError } from './http-errors.ts';
import { methodNotAllowed } from './route-context.ts';

export const DASHBOARD_PATH = '/dashboard';

/** The page's files: dashboard/ next to src/ (or to dist/ in the package), and uPlot's build. */
function assets(): Map<string, { body: Buffer; type: string }> {
  const up = import.meta.url.endsWith('.ts') ? '../../' : '../../../';
  const own = (name: string) => readFileSync(new URL(`${up}dashboard/${name}`, import.meta.url));
  const uplot = (name: string) =>
    readFileSync(createRequire(import.meta.url).resolve(`uplot/dist/${name}`));
  const js = 'text/javascript; charset=utf-8';
  const css = 'text/css; charset=utf-8';
  return new Map([
    ['', { body: own('index.html'), type: 'text/html; charset=utf-8' }],
    ['/dashboard.js', { body: own('dashboard.js'), type: js }],
    ['/dashboard.css', { body: own('dashboard.css'), type: css }],
    ['/uPlot.iife.min.js', { body: uplot('uPlot.iife.min.js'), type: js }],
    ['/uPlot.min.css', { body: uplot('uPlot.min.css'), type: css }],
  ]);
}

let files: ReturnType<typeof assets> | undefined;

const POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/** GET|HEAD /dashboard[/asset]; `rest` is the path after /dashboard. */
export function routeDashboard(req: IncomingMessage, res: ServerResponse, rest: string): number {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
  files ??= assets();
  const file = files.get(rest === '/' ? '' : rest);
  if (file === undefined) throw new HttpError('HS_ERR_NO_ROUTE', 'no such dashboard file');
  res.writeHead(200, {
    'content-type': file.type,
    'content-length': file.body.length,
    'cache-control': 'no-cache',
    'content-security-policy': POLICY,
    'x-content-type-options': 'nosniff',
  });
  res.end(method === 'HEAD' ? undefined : file.body);
  return 200;
}
