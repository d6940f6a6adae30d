/**
 * Where L2 lives, as plain data. The refresher runs in its own thread and an ioredis
 * client object cannot cross threads, so whatever the user passes (seeds, a URL, the
 * seed lists and option objects ioredis takes, or a client of their own) is turned into
 * a RedisTarget in the calling thread, validated there, and the refresher opens its own
 * connections from it.
 *
 * This module is loaded by every thread that attaches a tier (tier/options.ts), so it
 * imports only ioredis' types: a client is recognised by its own `isCluster` flag.
 */

import type { Cluster, Redis } from 'ioredis';
import { optionError } from '../errors.ts';

/**
 * TLS settings as the `tls` option spells them. Key material is the PEM text itself, not
 * a file name: the tier reads no files.
 */
export interface RedisTlsOptions {
  /** CA certificates to trust instead of Node's bundled ones (a private CA). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate and its private key, for servers that verify clients (`tls-auth-clients`). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify the server certificate against (SNI), when nodes are reached by IP. */
  servername?: string;
  /** Default true; false accepts any server certificate (tests only: anyone can impersonate Redis). */
  rejectUnauthorized?: boolean;
}

/** TLS settings normalized to plain strings, so that they survive postMessage unchanged. */
export interface RedisTls {
  ca?: string[];
  cert?: string;
  key?: string;
  servername?: string;
  rejectUnauthorized?: boolean;
}

/** How to connect and authenticate, whatever the topology. `tls` undefined: plain TCP. */
export interface RedisConnection {
  username?: string;
  password?: string;
  tls?: RedisTls;
}

export type RedisTarget =
  | ({ kind: 'cluster'; nodes: Array<{ host: string; port: number }> } & RedisConnection)
  | ({ kind: 'standalone'; host: string; port: number; db: number } & RedisConnection);

const PEM = /-----BEGIN [A-Z0-9 ]+-----/;
const PEM_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/**
 * PEM text from a string or bytes. Never echoes the value (it may be a private key);
 * says what is wrong instead, the usual mistake being a file name where its contents go.
 */
function pemOf(name: string, value: unknown, pattern: RegExp): string {
  const text =
    typeof value === 'string'
      ? value
      : value instanceof Uint8Array
        ? Buffer.from(value).toString()
        : undefined;
  if (text === undefined || !pattern.test(text)) {
    throw optionError(
      `${name} must be PEM text (a string or Buffer holding "-----BEGIN …"), the file's contents rather than its name`,
    );
  }
  return text;
}

const TLS_FIELDS = new Set(['ca', 'cert', 'key', 'servername', 'rejectUnauthorized']);

/**
 * Validate the `tls` option: false/undefined (plain TCP), true (TLS, Node's CAs), or
 * RedisTlsOptions. Messages name the field and never include its value.
 */
export function redisTlsOf(value: unknown, name = 'tls'): RedisTls | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw optionError(
      `${name} must be true, false or { ca, cert, key, servername, rejectUnauthorized }`,
    );
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!TLS_FIELDS.has(k)) throw optionError(`${name} has an unknown field ${k}`);
  }
  const tls: RedisTls = {};
  if (o.ca !== undefined) {
    const list = Array.isArray(o.ca) ? o.ca : [o.ca];
    if (list.length === 0) throw optionError(`${name}.ca must hold at least one certificate`);
    tls.ca = list.map((c) => pemOf(`${name}.ca`, c, PEM));
  }
  if (o.cert !== undefined) tls.cert = pemOf(`${name}.cert`, o.cert, PEM);
  if (o.key !== undefined) tls.key = pemOf(`${name}.key`, o.key, PEM_KEY);
  if ((tls.cert === undefined) !== (tls.key === undefined))
    throw optionError(
      `${name}.cert and ${name}.key go together (a client certificate and its key)`,
    );
  if (o.servername !== undefined) {
    if (typeof o.servername !== 'string' || o.servername === '')
      throw optionError(`${name}.servername must be a non-empty string`);
    tls.servername = o.servername;
  }
  if (o.rejectUnauthorized !== undefined) {
    if (typeof o.rejectUnauthorized !== 'boolean')
      throw optionError(`${name}.rejectUnauthorized must be a boolean`);
    tls.rejectUnauthorized = o.rejectUnauthorized;
  }
  return tls;
}

/** The TLS settings of an existing ioredis client, as far as they are plain data. */
function tlsOfClient(tls: unknown): RedisTls | undefined {
  if (tls === undefined || tls === null || typeof tls !== 'object') return undefined;
  const known = Object.fromEntries(
    Object.entries(tls as Record<string, unknown>).filter(
      ([k, v]) => TLS_FIELDS.has(k) && v !== undefined,
    ),
  );
  return redisTlsOf(known, "redis (the client's tls)");
}

type Seed = { host: string; port: number };

/** An ioredis Cluster client: ioredis sets `isCluster` on both of its client classes. */
function isClusterClient(value: object): value is Cluster {
  const v = value as { isCluster?: unknown; nodes?: unknown };
  return v.isCluster === true && typeof v.nodes === 'function';
}

function isRedisClient(value: object): value is Redis {
  const v = value as { isCluster?: unknown; options?: unknown };
  return v.isCluster === false && typeof v.options === 'object' && v.options !== null;
}

/** Parse `host:port,host:port` into cluster seeds. */
function parseSeeds(seeds: string): Array<{ host: string; port: number }> {
  const nodes = seeds
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (nodes.length === 0) throw optionError('redis must list at least one host:port seed');
  return nodes.map((node) => {
    const at = node.lastIndexOf(':');
    const host = node.slice(0, at);
    const port = Number(node.slice(at + 1));
    if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw optionError(`redis seed "${node}" is not host:port`);
    }
    return { host, port };
  });
}

/**
 * A Redis URL (or text holding one) with its password replaced by `***`, for logs and
 * messages. The password runs to the last `@` of the authority, as URL parsing has it.
 */
export function redactRedis(text: string): string {
  try {
    const u = new URL(text);
    if (u.password === '') return text;
    u.password = '***';
    return u.toString().replace(':%2A%2A%2A@', ':***@');
  } catch {
    return text.replace(/\/\/([^:@/]*):[^/]*@/, '//$1:***@');
  }
}

function parseUrl(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw optionError(`redis URL "${redactRedis(url)}" is not a valid URL`);
  }
  const port = u.port === '' ? 6379 : Number(u.port);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0)
    throw optionError(`redis URL "${redactRedis(url)}" has a bad db number`);
  return {
    kind: 'standalone',
    host: u.hostname,
    port,
    db,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    username: u.username === '' ? undefined : decodeURIComponent(u.username),
    password: u.password === '' ? undefined : decodeURIComponent(u.password),
  };
}

function nodeOf(r: Redis): Seed {
  return { host: r.options.host ?? '127.0.0.1', port: r.options.port ?? 6379 };
}

/** A port as ioredis takes it (a number or a numeric string), checked. */
function portOf(value: unknown, what: string): number {
  const port = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)
    throw optionError(`${what} has a bad port ${JSON.stringify(value)}`);
  return port as number;
}

/**
 * `{ host, port }` (either may be left out, as ioredis allows: 127.0.0.1, 6379); any other
 * field but those of `fields` is refused (undefined: ignored, for a client's own nodes).
 */
function hostPortOf(
  value: Record<string, unknown>,
  what: string,
  fields: Set<string> | undefined,
): Seed {
  for (const k of Object.keys(value)) {
    if (fields !== undefined && !fields.has(k))
      throw optionError(
        `${what} has an unknown field ${k} (credentials and TLS are options of their own)`,
      );
  }
  const host = value.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw optionError(`${what} has a bad host`);
  return { host, port: value.port === undefined ? 6379 : portOf(value.port, what) };
}

const SEED_FIELDS = new Set(['host', 'port']);
const STANDALONE_FIELDS = new Set(['host', 'port', 'db']);

/** One cluster seed in any form ioredis' Cluster takes: `host:port`, a port, `{ host, port }`. */
function seedOf(seed: unknown, i: number, fields: Set<string> | undefined = SEED_FIELDS): Seed {
  const what = `redis seed ${i}`;
  if (typeof seed === 'string') {
    const seeds = parseSeeds(seed);
    if (seeds.length !== 1) throw optionError(`${what} must be one "host:port" (got "${seed}")`);
    return seeds[0];
  }
  if (typeof seed === 'number') return { host: '127.0.0.1', port: portOf(seed, what) };
  if (seed !== null && typeof seed === 'object' && !Array.isArray(seed))
    return hostPortOf(seed as Record<string, unknown>, what, fields);
  throw optionError(`${what} must be "host:port", a port or { host, port }`);
}

/** `{ host, port, db }`, the options object ioredis' Redis takes, for a standalone Redis. */
function standaloneOf(options: Record<string, unknown>): RedisTarget {
  const what = 'redis { host, port, db }';
  const node = hostPortOf(options, what, STANDALONE_FIELDS);
  const db = options.db ?? 0;
  if (!Number.isSafeInteger(db) || (db as number) < 0)
    throw optionError(`${what} has a bad db ${JSON.stringify(options.db)}`);
  return { kind: 'standalone', ...node, db: db as number };
}

/**
 * The target described by the `redis` option: `host:port,…` cluster seeds, or an array
 * of them in any form ioredis' Cluster takes (`'host:port'`, a port, `{ host, port }`);
 * a `redis://`/`rediss://` URL or a `{ host, port, db }` object (ioredis' Redis options)
 * for a standalone Redis; or an ioredis client whose connection settings are copied (the
 * client itself is neither used nor closed). `connection` (the `username`, `password`
 * and `tls` options) wins over what the URL or the client says; TLS given there turns
 * TLS on for any target.
 */
export function redisTargetOf(redis: unknown, connection: RedisConnection = {}): RedisTarget {
  const withConnection = <T extends RedisTarget>(t: T): T => ({
    ...t,
    username: connection.username ?? t.username,
    password: connection.password ?? t.password,
    tls: connection.tls ?? t.tls,
  });
  if (typeof redis === 'string') {
    return withConnection(
      /^rediss?:\/\//.test(redis) ? parseUrl(redis) : { kind: 'cluster', nodes: parseSeeds(redis) },
    );
  }
  if (Array.isArray(redis)) {
    if (redis.length === 0) throw optionError('redis must list at least one cluster seed');
    return withConnection({ kind: 'cluster', nodes: redis.map((seed, i) => seedOf(seed, i)) });
  }
  if (redis !== null && typeof redis === 'object') {
    if (isClusterClient(redis)) return withConnection(clusterClientTarget(redis));
    if (isRedisClient(redis)) {
      const o = redis.options;
      return withConnection({
        kind: 'standalone',
        ...nodeOf(redis),
        db: o.db ?? 0,
        tls: tlsOfClient(o.tls),
        username: o.username,
        password: o.password,
      });
    }
    if (!('isCluster' in redis))
      return withConnection(standaloneOf(redis as Record<string, unknown>));
  }
  throw optionError(
    'redis must be cluster seeds "host:port,…" (or an array of seeds), a redis:// URL or { host, port }, or an ioredis Cluster/Redis client',
  );
}

/** The seeds and connection settings of an ioredis Cluster client. */
function clusterClientTarget(redis: Cluster): RedisTarget {
  const known = redis.nodes('all').map(nodeOf);
  const startup = (redis as unknown as { startupNodes: unknown[] }).startupNodes ?? [];
  // The client's own startup nodes may carry more than host and port (ignored here).
  const nodes = known.length > 0 ? known : startup.map((seed, i) => seedOf(seed, i, undefined));
  if (nodes.length === 0) throw optionError('redis: the Cluster client given has no nodes');
  const ro = redis.options.redisOptions ?? {};
  return {
    kind: 'cluster',
    nodes,
    username: ro.username,
    password: ro.password,
    tls: tlsOfClient(ro.tls),
  };
}
