/**
 * What every route handler is given: the tier, the limits, the write guard, the thread's
 * request stats and logger. Built once per HTTP thread (http-server.ts).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';
import type { Tier } from '../tier/index.ts';
import { HttpError } from './http-errors.ts';
import type { RequestStats } from './request-stats.ts';

export interface RouteContext {
  tier: Tier;
  maxKeyBytes: number;
  maxValueBytes: number;
  guardWrite: (req: IncomingMessage) => void;
  metrics: RequestStats;
  /** Prometheus text for the whole process. */
  scrape: () => Promise<{ text: string; contentType: string }>;
  isDraining: () => boolean;
  log: Logger;
}

/** A JSON reply (no body for HEAD). */
export function sendJson(
  res: ServerResponse,
  status: number,
  text: string,
  head: boolean,
  headers: Record<string, string> = {},
): number {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(head ? undefined : text);
  return status;
}

export function methodNotAllowed(allow: string): HttpError {
  return new HttpError('HS_ERR_METHOD', `allowed methods: ${allow}`, { allow });
}

/** The query string of a request target as URLSearchParams (empty when there is none). */
export function queryOf(url: string): URLSearchParams {
  const q = url.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
}
