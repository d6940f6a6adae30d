/**
 * Tier options: validated eagerly, in the thread that calls createTier, then frozen into
 * a TierConfig of plain data that travels in the handle to every thread (and to the
 * refresher). Names match the gateway's flags (`softTtl` ↔ `--soft-ttl`); durations take
 * `500ms`/`3s` or milliseconds, sizes `256mb` or bytes. An error names the option.
 */

import type { Cluster, Redis } from 'ioredis';
import { TIER_DEFAULTS as D } from '../defaults.ts';
import { HotshieldError, optionError } from '../errors.ts';
import { MAX_SHARDS } from '../keys/shard-keys.ts';
import { L1Error } from '../l1/index.ts';
import { defaultMaxCounters, HOT_KEYS_MIN_BYTES, planLayout } from '../l1/layout.ts';
import type { RefresherConfig } from '../refresher/config.ts';
import { type RedisTlsOptions, redisTargetOf, redisTlsOf } from '../refresher/redis-target.ts';
import { parseBytes, parseDuration } from '../units.ts';
import { CODECS, type CodecName } from './codec.ts';

/** One cluster seed, in the forms ioredis' Cluster takes. */
export type RedisSeed = string | number | { host?: string; port?: number };

type Duration = number | string;
type Size = number | string;

export interface TierOptions {
  /**
   * Cluster seeds: `host:port,…`, or an array of seeds as ioredis' Cluster takes them
   * (`'host:port'`, a port, `{ host, port }`). A standalone Redis: a `redis://` URL or
   * `{ host, port, db }` (ioredis' Redis options). Or an ioredis client to copy settings from.
   */
  redis:
    | string
    | readonly RedisSeed[]
    | { host?: string; port?: number; db?: number }
    | Cluster
    | Redis;
  /** Redis ACL user and password (`AUTH`); they win over those of a URL or a client. */
  username?: string;
  password?: string;
  /**
   * TLS to Redis: true (Node's CAs), or { ca, cert, key, servername, rejectUnauthorized }
   * with PEM text; for a cluster, every node. A `rediss://` URL turns it on too.
   */
  tls?: boolean | RedisTlsOptions;
  /** L1 byte budget for this process (default 64mb). */
  l1Bytes?: Size;
  /**
   * Per thread: how many bytes (of encoded values) of recently read entries each thread
   * keeps decoded, re-validated against L1 on every read, so a hot key's hit skips the L1
   * copy and the decode; the value is then shared by the thread's reads until its entry
   * changes (default 4mb; 0 turns it off and every read returns its own copy).
   */
  memoBytes?: Size;
  /** Age after which a read returns the cached value and refreshes it in the background (default 3s). */
  softTtl?: Duration;
  /** How long past softTtl a value may still be served while it cannot be refreshed (default 30s). */
  staleTtl?: Duration;
  /** How long an absent key is remembered as absent (default 1s; 0 turns it off). */
  negativeTtl?: Duration;
  /** Value codec: 'msgpack', 'raw' (Buffers) or 'utf8' (strings) (default msgpack). */
  codec?: CodecName;
  /** Longest key in UTF-8 bytes (default 1024). */
  maxKeyBytes?: number;
  /** Largest value in bytes, encoded (default 1mb). */
  maxValueBytes?: Size;
  /** Threads that may attach to the tier at once, the refresher included (default 64). */
  maxThreads?: number;
  /** Keys the refresher fetches at once; beyond it asks fail with HS_ERR_QUEUE_FULL (default 10000). */
  maxInFlight?: number;
  /** Callers one thread may have waiting at once (default 100000). */
  maxWaiting?: number;
  /** How long a caller waits for a value or a write acknowledgement (default 1s). */
  requestTimeout?: Duration;
  /** Deadline of one Redis call (default 250ms). */
  l2Timeout?: Duration;
  /** TCP connect timeout per Redis node (default 1s). */
  connectTimeout?: Duration;
  /** How long a loader may run (default 5s). */
  loaderTimeout?: Duration;
  /** How often the cluster's slot map is re-read (default 2s). */
  slotsRefreshInterval?: Duration;
  /** Consecutive failures that open a Redis node's circuit (default 5). */
  breakerThreshold?: number;
  /** How long an open circuit refuses calls before one probe (default 1s). */
  breakerCooldown?: Duration;
  /**
   * Shard keys per counter, 1–256 (default 16). Every process sharing the counters must
   * use the same number: a read sums exactly these shards, so changing it is a migration.
   */
  counterShards?: number;
  /**
   * Distinct counters this process can hold, a power of two (default 4096, fewer for a
   * small l1Bytes); 256 bytes each, inside l1Bytes. A counter keeps its cell for the
   * life of the process.
   */
  maxCounters?: number;
  /** How often counter increments are flushed to Redis (default 100ms, at least 10ms). */
  flushInterval?: Duration;
  /**
   * How long Redis remembers a process's last flush to a shard, which makes a re-sent
   * flush a no-op (default 24h). A flush re-sent later than this after it was applied
   * would count twice, so keep it above the longest Redis outage you ride out.
   */
  counterMarkTtl?: Duration;
  /**
   * Keep L1 coherent with Redis (default on): Redis tells the refresher when a key it
   * read changes, whoever changed it, and L1 drops it at once (CLIENT TRACKING with a
   * subscriber per master). `false` (or `'off'`) leaves freshness to softTtl alone.
   */
  coherence?: boolean | 'on' | 'off';
  /**
   * Count every read and write per key in shared memory and keep the hot set (default on,
   * off when l1Bytes is under 4mb unless asked for): `tier.hotKeys()`. 256 KiB of l1Bytes.
   */
  hotKeys?: boolean | 'on' | 'off';
  /**
   * Reads a second from which a key is hot (default 1000): refreshed ahead of its soft
   * TTL so that it never turns stale while hot; the gateway logs it.
   */
  hotThreshold?: number;
}

export interface TierConfig extends RefresherConfig {
  codec: CodecName;
  /** undefined: the L1's default for l1Bytes. */
  maxCounters: number | undefined;
  l1Bytes: number;
  memoBytes: number;
  maxValueBytes: number;
  maxWaiting: number;
  requestTimeoutMs: number;
  /** Resolved: the option, or on from HOT_KEYS_MIN_BYTES of l1Bytes. */
  hotKeys: boolean;
}

/** Every option: the connection's, and those with a default (defaults.ts). */
const KNOWN = new Set(['redis', 'username', 'password', 'tls', ...Object.keys(D)]);

/**
 * Longest duration accepted: Node's timers hold at most 2^31 − 1 ms (about 24.8 days)
 * and turn anything longer into 1 ms; this leaves room for the margins added to it.
 */
const MAX_DURATION_MS = 2_000_000_000;

/** A switch: true/false, or the words a flag or a variable gives (on/off, true/false, 1/0, yes/no). */
function onOff(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  const word = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  if (word === 'on' || word === 'true' || word === '1' || word === 'yes') return true;
  if (word === 'off' || word === 'false' || word === '0' || word === 'no') return false;
  throw optionError(`${name} must be on or off (got ${JSON.stringify(value)})`);
}

function duration(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < min || ms > MAX_DURATION_MS) {
    throw optionError(
      `${name} must be a duration from ${min} ms to ${MAX_DURATION_MS} ms, as milliseconds or like "500ms"/"3s" (got ${JSON.stringify(value)})`,
    );
  }
  return ms;
}

function size(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const bytes = parseBytes(value);
  if (bytes === undefined || !Number.isSafeInteger(bytes) || bytes < min) {
    throw optionError(
      `${name} must be a size, as bytes or like "64kb"/"256mb" (got ${JSON.stringify(value)})`,
    );
  }
  return bytes;
}

function count(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw optionError(`${name} must be a positive integer (got ${JSON.stringify(value)})`);
  }
  return value as number;
}

function shardCount(value: unknown): number {
  if (value === undefined) return D.counterShards.value;
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > MAX_SHARDS)
    throw optionError(
      `counterShards must be an integer from 1 to ${MAX_SHARDS} (got ${JSON.stringify(value)})`,
    );
  return value as number;
}

function counterCells(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = count('maxCounters', value, 0);
  if ((n & (n - 1)) !== 0 || n > 1 << 24)
    throw optionError(`maxCounters must be a power of two up to 2^24 (got ${n})`);
  return n;
}

function optionalString(name: string, value: unknown): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw optionError(`${name} must be a string`);
}

/** Validate `options` and return the frozen configuration every thread shares. */
export function tierConfigOf(options: TierOptions): TierConfig {
  if (options === null || typeof options !== 'object') {
    throw optionError('createTier needs an options object with at least { redis }');
  }
  for (const k of Object.keys(options)) if (!KNOWN.has(k)) throw optionError(`unknown option ${k}`);
  if (options.redis === undefined)
    throw optionError('redis is required: cluster seeds, a redis:// URL or an ioredis client');
  const codec = options.codec ?? D.codec.value;
  if (!CODECS.includes(codec))
    throw optionError(`codec must be one of ${CODECS.join(', ')} (got ${JSON.stringify(codec)})`);
  const softTtlMs = duration('softTtl', options.softTtl, D.softTtl.value);
  const l2TimeoutMs = duration('l2Timeout', options.l2Timeout, D.l2Timeout.value);
  const requestTimeoutMs = duration(
    'requestTimeout',
    options.requestTimeout,
    D.requestTimeout.value,
  );
  const l1Bytes = size('l1Bytes', options.l1Bytes, D.l1Bytes.value);
  const config: TierConfig = Object.freeze({
    tierId: crypto.randomUUID(),
    redis: redisTargetOf(options.redis, {
      username: optionalString('username', options.username),
      password: optionalString('password', options.password),
      tls: redisTlsOf(options.tls),
    }),
    codec,
    l1Bytes,
    memoBytes: size('memoBytes', options.memoBytes, D.memoBytes.value, 0),
    maxKeyBytes: count('maxKeyBytes', options.maxKeyBytes, D.maxKeyBytes.value),
    maxValueBytes: size('maxValueBytes', options.maxValueBytes, D.maxValueBytes.value),
    maxThreads: count('maxThreads', options.maxThreads, D.maxThreads.value),
    maxInFlight: count('maxInFlight', options.maxInFlight, D.maxInFlight.value),
    maxWaiting: count('maxWaiting', options.maxWaiting, D.maxWaiting.value),
    softTtlMs,
    staleTtlMs: duration('staleTtl', options.staleTtl, D.staleTtl.value, 0),
    negativeTtlMs: duration('negativeTtl', options.negativeTtl, D.negativeTtl.value, 0),
    requestTimeoutMs,
    l2TimeoutMs,
    connectTimeoutMs: duration('connectTimeout', options.connectTimeout, D.connectTimeout.value),
    loaderTimeoutMs: duration('loaderTimeout', options.loaderTimeout, D.loaderTimeout.value),
    slotsRefreshIntervalMs: duration(
      'slotsRefreshInterval',
      options.slotsRefreshInterval,
      D.slotsRefreshInterval.value,
    ),
    breakerThreshold: count('breakerThreshold', options.breakerThreshold, D.breakerThreshold.value),
    breakerCooldownMs: duration(
      'breakerCooldown',
      options.breakerCooldown,
      D.breakerCooldown.value,
    ),
    counterShards: shardCount(options.counterShards),
    maxCounters: counterCells(options.maxCounters),
    flushIntervalMs: duration('flushInterval', options.flushInterval, D.flushInterval.value, 10),
    coherence: onOff('coherence', options.coherence, D.coherence.value),
    counterMarkTtlMs: duration(
      'counterMarkTtl',
      options.counterMarkTtl,
      D.counterMarkTtl.value,
      60_000,
    ),
    hotKeys:
      options.hotKeys === undefined
        ? l1Bytes >= HOT_KEYS_MIN_BYTES
        : onOff('hotKeys', options.hotKeys, D.hotKeys.value),
    hotThreshold: count('hotThreshold', options.hotThreshold, D.hotThreshold.value),
  });
  checkL1Sizing(config);
  return config;
}

/**
 * The L1 sizing rules (the largest value must fit the main ring four times, counters must
 * leave room for entries…), checked here without allocating: a gateway finds a bad
 * combination of flags before it forks anything, and the message names the options.
 */
function checkL1Sizing(c: TierConfig): void {
  try {
    planLayout({
      bytes: c.l1Bytes,
      maxKeyBytes: c.maxKeyBytes,
      maxValueBytes: c.maxValueBytes,
      maxThreads: c.maxThreads,
      maxCounters: c.maxCounters ?? defaultMaxCounters(c.l1Bytes),
      hotKeys: c.hotKeys,
    });
  } catch (error) {
    if (!(error instanceof L1Error)) throw error;
    throw new HotshieldError('HS_ERR_OPTION', error.message, { cause: error });
  }
}

/** A per-call duration option (`ttl`, `timeout`), validated like the tier's. */
export function callDuration(name: string, value: unknown, fallback: number, min: number): number {
  return duration(name, value, fallback, min);
}
