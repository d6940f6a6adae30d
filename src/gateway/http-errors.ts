/**
 * Every error code mapped to one HTTP status, and the JSON error body
 * `{"error":{"code","message"}}`. Failures of Redis are 503 with Retry-After: the client
 * may try again; anything unexpected is a 500 whose message says nothing inside.
 *
 * HTTP_STATUS names every code of the catalogue (errors.ts): a code added there without a
 * status here does not compile. Codes no request can meet say why instead of a status.
 */

import type { ServerResponse } from 'node:http';
import type { ErrorCode } from '../errors.ts';

/** Why a code never reaches an HTTP answer. */
type NotHttp = { never: string };

const AT_START = { never: 'met while a gateway process or thread starts, before any request' };
const RAW = { never: 'the gateway reads and writes with the raw codec, which takes any bytes' };
const NO_LOADER = { never: 'the gateway reads through no loader' };
const DEV = { never: 'the local cluster launcher starts before the gateway listens' };

export const HTTP_STATUS = {
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
  HS_ERR_INTERNAL: 500,
  HS_ERR_L2_TIMEOUT: 503,
  HS_ERR_L2_UNAVAILABLE: 503,
  HS_ERR_TIMEOUT: 503,
  HS_ERR_QUEUE_FULL: 503,
  HS_ERR_CLOSED: 503,
  HS_ERR_L1_CLOSED: 503,
  /** Every counter cell of this process is taken (raise maxCounters): retrying won't help. */
  HS_ERR_COUNTER_TABLE_FULL: 507,
  HS_ERR_CODEC: RAW,
  HS_ERR_CODEC_MISMATCH: RAW,
  HS_ERR_VALUE_INVALID: { never: 'values reach the L1 as the bytes the tier encoded' },
  HS_ERR_LOADER_FAILED: NO_LOADER,
  HS_ERR_LOADER_TIMEOUT: NO_LOADER,
  HS_ERR_UNCONFIRMED: { never: 'the counter route answers 202 "flushed":false instead' },
  HS_ERR_UNFLUSHED: { never: "only the tier's close() rejects with it, after the last request" },
  HS_ERR_HANDLE: AT_START,
  HS_ERR_L1_HANDLE: AT_START,
  HS_ERR_L1_OPTION: AT_START,
  HS_ERR_TOO_MANY_THREADS: AT_START,
  HS_ERR_WRITER_TAKEN: { never: 'only the refresher writes the L1' },
  HS_ERR_REDIS_SERVER_MISSING: DEV,
  HS_ERR_INVALID_CLUSTER_OPTION: DEV,
  HS_ERR_REDIS_NODE_START: DEV,
  HS_ERR_REDIS_PORT_TAKEN: DEV,
  HS_ERR_CLUSTER_NOT_READY: DEV,
} as const satisfies Record<ErrorCode, number | NotHttp>;

/**
 * A refusal decided by the gateway itself, with any catalogued code (a bad key is an L1
 * code here too); `headers` go with its answer (Allow, WWW-Authenticate).
 */
export class HttpError extends Error {
  readonly code: ErrorCode;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.code = code;
    this.headers = headers;
  }
}

/** The HTTP status of `code`, or undefined for a code no request meets (or none at all). */
function statusOf(code: unknown): number | undefined {
  if (typeof code !== 'string' || !Object.hasOwn(HTTP_STATUS, code)) return undefined;
  const status: number | NotHttp = HTTP_STATUS[code as ErrorCode];
  return typeof status === 'number' ? status : undefined;
}

/** Status, code and message for anything thrown while handling a request. */
export function describeError(error: unknown): { status: number; code: string; message: string } {
  const code = (error as { code?: unknown })?.code;
  const status = statusOf(code);
  if (status !== undefined && status !== 500)
    return { status, code: code as string, message: (error as Error).message };
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
