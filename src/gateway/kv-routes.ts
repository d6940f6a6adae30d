/**
 * The key-value routes, over tier.peek / lookup / set / delete:
 *
 *   GET|HEAD /v1/kv/:key     value from the tier; x-cache, age, etag, content-type; 304, 404
 *   PUT      /v1/kv/:key     write-through (body, content-type, ?ttl=); bearer token or loopback
 *   DELETE   /v1/kv/:key     write-through delete; same guard
 *
 * `:key` is everything after /v1/kv/, percent-decoded. A GET or HEAD that L1 can answer
 * is answered synchronously (answerFromL1: no promise on the hot path); anything else
 * takes routeKv.
 */

import { hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isInternalKey, type Lookup, parseDuration } from '../tier/index.ts';
import { readBody, wholeRequest } from './body.ts';
import { MAX_CONTENT_TYPE_BYTES, unwrap, wrap } from './envelope.ts';
import { HttpError, sendError } from './http-errors.ts';
import { methodNotAllowed, queryOf, type RouteContext } from './route-context.ts';

export const KV_PREFIX = '/v1/kv/';
const KV_METHODS = 'GET, HEAD, PUT, DELETE';

/** The key in a /v1/kv/ path, checked as the gateway's clients may use it. */
export function keyOf(encoded: string, maxKeyBytes: number): string {
  let key: string;
  try {
    key = decodeURIComponent(encoded);
  } catch {
    throw new HttpError('HS_ERR_KEY_ENCODING', 'the key is not valid percent-encoded UTF-8');
  }
  if (key === '') throw new HttpError('HS_ERR_KEY_EMPTY', 'the key must not be empty');
  const bytes = Buffer.byteLength(key);
  if (bytes > maxKeyBytes) {
    throw new HttpError(
      'HS_ERR_KEY_TOO_LONG',
      `the key is ${bytes} bytes; the limit is ${maxKeyBytes} (--max-key-bytes)`,
    );
  }
  if (isInternalKey(key))
    throw new HttpError('HS_ERR_KEY_RESERVED', 'this key is reserved for hotshield itself');
  return key;
}

/** Strong ETag of the stored bytes (content type included). */
function etagOf(stored: Buffer): string {
  return `"${hash('sha1', stored, 'base64url')}"`;
}

/**
 * A request header by its lower-case name, repeats joined as Node joins them: read from
 * rawHeaders, since `req.headers` builds an object of every header on first use.
 */
function headerOf(req: IncomingMessage, name: string): string | undefined {
  const raw = req.rawHeaders;
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length !== name.length || raw[i].toLowerCase() !== name) continue;
    value = value === undefined ? raw[i + 1] : `${value}, ${raw[i + 1]}`;
  }
  return value;
}

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

function ttlOf(query: URLSearchParams): number | undefined {
  const raw = query.get('ttl');
  if (raw === null) return undefined;
  const ms = parseDuration(raw);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < 1) {
    throw new HttpError(
      'HS_ERR_BAD_REQUEST',
      'ttl must be a duration like 500ms, 30s or a number of milliseconds',
    );
  }
  return ms;
}

/**
 * What a reply of a stored value needs, derived from its bytes once per entry version:
 * where the body starts rather than the body, so that it keeps no value alive.
 */
interface Prepared {
  version: number;
  /** The stored bytes' length too: a version number could come round again (32 bits). */
  length: number;
  etag: string;
  contentType: string;
  bodyStart: number;
}

function prepare(stored: Buffer, version: number): Prepared {
  const { contentType, body } = unwrap(stored);
  const bodyStart = stored.length - body.length;
  return { version, length: stored.length, etag: etagOf(stored), contentType, bodyStart };
}

/**
 * Replies of recent entries by key, valid while the L1 entry's version is unchanged: a
 * hot key's envelope is read and its hash computed once per refresh, not once per
 * request. Per thread, bounded (forgotten wholesale when full), a few strings each.
 */
const prepared = new Map<string, Prepared>();
const PREPARED_LIMIT = 10_000;

function preparedFor(key: string, found: Lookup): Prepared {
  const stored = found.value as Buffer;
  if (found.version === 0) return prepare(stored, 0);
  const cached = prepared.get(key);
  if (cached !== undefined && cached.version === found.version && cached.length === stored.length)
    return cached;
  if (prepared.size >= PREPARED_LIMIT) prepared.clear();
  const made = prepare(stored, found.version);
  prepared.set(key, made);
  return made;
}

const X_CACHE = { hit: 'HIT', stale: 'STALE', miss: 'MISS' } as const satisfies Record<
  Lookup['cache'],
  string
>;

function sendValue(req: IncomingMessage, res: ServerResponse, key: string, found: Lookup): number {
  const head = req.method === 'HEAD';
  const stored = found.value as Buffer;
  const { etag, contentType, bodyStart } = preparedFor(key, found);
  const body = bodyStart === 0 ? stored : stored.subarray(bodyStart);
  const headers: Record<string, string | number> = {
    etag,
    'x-cache': X_CACHE[found.cache],
    age: Math.floor(found.ageMs / 1000),
  };
  if (matches(headerOf(req, 'if-none-match'), etag)) {
    res.writeHead(304, headers);
    res.end();
    return 304;
  }
  headers['content-type'] = contentType;
  headers['content-length'] = body.length;
  res.writeHead(200, headers);
  res.end(head ? undefined : body);
  return 200;
}

async function getKey(
  ctx: RouteContext,
  req: IncomingMessage,
  res: ServerResponse,
  key: string,
): Promise<number> {
  const found = await ctx.tier.lookup(key);
  if (found === undefined) throw new HttpError('HS_ERR_NOT_FOUND', 'no such key');
  return sendValue(req, res, key, found);
}

async function putKey(
  ctx: RouteContext,
  req: IncomingMessage,
  res: ServerResponse,
  key: string,
  query: URLSearchParams,
): Promise<number> {
  ctx.guardWrite(req);
  const ttl = ttlOf(query);
  const contentType = req.headers['content-type'];
  if (contentType !== undefined && Buffer.byteLength(contentType) > MAX_CONTENT_TYPE_BYTES) {
    throw new HttpError(
      'HS_ERR_BAD_REQUEST',
      `content-type is longer than ${MAX_CONTENT_TYPE_BYTES} bytes`,
    );
  }
  const body = await readBody(req, ctx.maxValueBytes);
  await ctx.tier.set(key, wrap(contentType, body), { ttl });
  res.writeHead(204);
  res.end();
  return 204;
}

async function deleteKey(
  ctx: RouteContext,
  req: IncomingMessage,
  res: ServerResponse,
  key: string,
): Promise<number> {
  ctx.guardWrite(req);
  await wholeRequest(req, ctx.maxValueBytes);
  await ctx.tier.delete(key);
  res.writeHead(204);
  res.end();
  return 204;
}

/** Route a request under /v1/kv/ (`path` without its query); resolves to its status. */
export async function routeKv(
  ctx: RouteContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<number> {
  const method = req.method ?? 'GET';
  const key = keyOf(path.slice(KV_PREFIX.length), ctx.maxKeyBytes);
  if (method === 'GET' || method === 'HEAD') return getKey(ctx, req, res, key);
  if (method === 'PUT') return putKey(ctx, req, res, key, queryOf(req.url ?? ''));
  if (method === 'DELETE') return deleteKey(ctx, req, res, key);
  throw methodNotAllowed(KV_METHODS);
}

/**
 * The hot path: a GET or HEAD whose key L1 can answer right now is answered here,
 * synchronously, with no promise in between, and a miss goes straight to the tier with
 * the key already parsed (its promise resolves to the status sent). Returns the status
 * sent, or 0 when the request needs the full route: another method, another path, or a
 * key the full route must refuse with its proper error.
 */
export function answerFromL1(
  ctx: RouteContext,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
): number | Promise<number> {
  if (method !== 'GET' && method !== 'HEAD') return 0;
  const url = req.url ?? '/';
  if (!url.startsWith(KV_PREFIX)) return 0;
  let key: string;
  let found: Lookup | null | undefined;
  try {
    const q = url.indexOf('?');
    key = keyOf(url.slice(KV_PREFIX.length, q === -1 ? undefined : q), ctx.maxKeyBytes);
    found = ctx.tier.peek(key);
  } catch {
    return 0;
  }
  if (found === undefined) return getKey(ctx, req, res, key);
  try {
    if (found === null) {
      sendError(res, new HttpError('HS_ERR_NOT_FOUND', 'no such key'), method === 'HEAD');
      return 404;
    }
    return sendValue(req, res, key, found);
  } catch (error) {
    // Nothing thrown here may escape the request listener: it would kill the thread.
    ctx.log.error({ err: error, url: req.url, method }, 'request failed');
    if (!res.headersSent) return sendError(res, error, method === 'HEAD');
    res.destroy();
    return 500;
  }
}
