/**
 * Where L2 lives, as plain data. The refresher runs in its own thread and an ioredis
 * client object cannot cross threads, so whatever the user passes (seeds, a URL, or a
 * client of their own) is turned into a RedisTarget in the calling thread, validated
 * there, and the refresher opens its own connections from it.
 */

import { Cluster, Redis } from 'ioredis';
import { HotshieldError } from '../errors.ts';

export interface RedisAuth {
  username?: string;
  password?: string;
}

export type RedisTarget =
  | ({ kind: 'cluster'; nodes: Array<{ host: string; port: number }> } & RedisAuth)
  | ({ kind: 'standalone'; host: string; port: number; db: number; tls: boolean } & RedisAuth);

function optionError(message: string): HotshieldError {
  return new HotshieldError('HS_ERR_OPTION', message);
}

/** Parse `host:port,host:port` into cluster seeds. */
export function parseSeeds(seeds: string): Array<{ host: string; port: number }> {
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
    tls: u.protocol === 'rediss:',
    username: u.username === '' ? undefined : decodeURIComponent(u.username),
    password: u.password === '' ? undefined : decodeURIComponent(u.password),
  };
}

function nodeOf(r: Redis): { host: string; port: number } {
  return { host: r.options.host ?? '127.0.0.1', port: r.options.port ?? 6379 };
}

/**
 * The target described by the `redis` option: `host:port,…` cluster seeds, a
 * `redis://`/`rediss://` URL of a standalone Redis, or an ioredis client whose
 * connection settings are copied (the client itself is neither used nor closed).
 */
export function redisTargetOf(redis: unknown, auth: RedisAuth = {}): RedisTarget {
  const withAuth = <T extends RedisTarget>(t: T): T => ({
    ...t,
    username: auth.username ?? t.username,
    password: auth.password ?? t.password,
  });
  if (typeof redis === 'string') {
    return withAuth(
      /^rediss?:\/\//.test(redis) ? parseUrl(redis) : { kind: 'cluster', nodes: parseSeeds(redis) },
    );
  }
  if (redis instanceof Cluster) {
    const known = redis.nodes('all').map(nodeOf);
    const startup = (redis as unknown as { startupNodes: unknown[] }).startupNodes ?? [];
    const nodes =
      known.length > 0
        ? known
        : startup.map((n) =>
            typeof n === 'string'
              ? parseSeeds(n)[0]
              : typeof n === 'number'
                ? { host: '127.0.0.1', port: n }
                : {
                    host: (n as { host?: string }).host ?? '127.0.0.1',
                    port: Number((n as { port?: number }).port ?? 6379),
                  },
          );
    if (nodes.length === 0) throw optionError('redis: the Cluster client given has no nodes');
    const ro = redis.options.redisOptions ?? {};
    return withAuth({ kind: 'cluster', nodes, username: ro.username, password: ro.password });
  }
  if (redis instanceof Redis) {
    const o = redis.options;
    return withAuth({
      kind: 'standalone',
      ...nodeOf(redis),
      db: o.db ?? 0,
      tls: o.tls !== undefined,
      username: o.username,
      password: o.password,
    });
  }
  throw optionError(
    'redis must be cluster seeds "host:port,…", a redis:// URL, or an ioredis Cluster/Redis client',
  );
}
