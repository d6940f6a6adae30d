/**
 * Every error code the gateway can meet, mapped to one HTTP status, and the JSON error
 * body `{"error":{"code","message"}}`. Failures of Redis are 503 with Retry-After: the
 * client may try again; anything unexpected is a 500 whose message says nothing inside.
 */

import type { ServerResponse } from 'node:http';

export const STATUS_OF: Record<string, number> = {
  HS_ERR_KEY_EMPTY: 400,
  HS_ERR_KEY_TOO_LONG: 400,
  HS_ERR_KEY_INVALID: 400,
  HS_ERR_KEY_ENCODING: 400,
  HS_ERR_KEY_RESERVED: 400,
  HS_ERR_OPTION: 400,
  HS_ERR_BAD_REQUEST: 400,
  HS_ERR_COUNTER_NAME: 400,
  HS_ERR_COUNTER_DELTA: 400,
  HS_ERR_UNAUTHORIZED: 401,
  HS_ERR_FORBIDDEN: 403,
  HS_ERR_NOT_FOUND: 404,
  HS_ERR_NO_ROUTE: 404,
  HS_ERR_METHOD: 405,
  HS_ERR_VALUE_TOO_LARGE: 413,
  /** Every counter cell of this process is taken (raise maxCounters): retrying won't help. */
  HS_ERR_COUNTER_TABLE_FULL: 507,
  HS_ERR_L2_TIMEOUT: 503,
  HS_ERR_L2_UNAVAILABLE: 503,
  HS_ERR_TIMEOUT: 503,
  HS_ERR_QUEUE_FULL: 503,
  HS_ERR_CLOSED: 503,
  HS_ERR_DRAINING: 503,
};

/** A gateway-level refusal with a code from STATUS_OF. */
export class HttpError extends Error {
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.code = code;
    this.headers = headers;
  }
}

/** Status, code and message for anything thrown while handling a request. */
export function describeError(error: unknown): { status: number; code: string; message: string } {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && STATUS_OF[code] !== undefined) {
    return { status: STATUS_OF[code], code, message: (error as Error).message };
  }
  return { status: 500, code: 'HS_ERR_INTERNAL', message: 'internal error' };
}

export function sendError(res: ServerResponse, error: unknown, head: boolean): number {
  const { status, code, message } = describeError(error);
  const body = JSON.stringify({ error: { code, message } });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(error instanceof HttpError ? error.headers : {}),
  };
  if (status === 503) headers['retry-after'] = '1';
  res.writeHead(status, headers);
  res.end(head ? undefined : body);
  return status;
}
