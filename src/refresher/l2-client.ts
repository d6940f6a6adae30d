/**
 * The refresher's connection to L2 (a Redis Cluster, or a standalone Redis): the one
 * place in hotshield that talks to Redis.
 *
 * - Batched reads go out as one pipeline of GETs per master node: keys are grouped by
 *   the master that owns their slot (CRC16 via cluster-key-slot, then the client's slot
 *   table), never as a cross-slot MGET. A key whose GET comes back with a redirect
 *   (MOVED/ASK during a reshard or failover) is re-read alone through the cluster
 *   client, which follows redirects; the rest of its batch is unaffected (ioredis' own
 *   pipelines would retry or fail the batch whole, ioredis#2075).
 * - Every call has a deadline (deadline.ts), and the client is built with the settings
 *   a cache wants: no offline queue (a call while the cluster is down fails at once
 *   instead of queueing without bound), an explicit slot refresh period (ioredis 5 and 6
 *   leave it off), per-node command and connect timeouts.
 */

import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { HotshieldError } from '../errors.ts';
import { withDeadline } from './deadline.ts';

export interface L2ClientOptions {
  /**
   * Cluster seeds as `host:port,host:port`, a `redis://` / `rediss://` URL for a
   * standalone Redis, or an ioredis `Cluster` / `Redis` client (not closed by us).
   */
  redis: string | Cluster | Redis;
  /** Deadline of one read or write, in ms (default 250). */
  l2TimeoutMs?: number;
  /** TCP connect timeout per node, in ms (default 1000). */
  connectTimeoutMs?: number;
  /** How often the cluster's slot map is re-read, in ms (default 2000). */
  slotsRefreshIntervalMs?: number;
  username?: string;
  password?: string;
}

/** One key's outcome in a batch: its value, null when absent, or why it failed. */
export type L2Read = Buffer | null | HotshieldError;

const REDIRECT = /^(MOVED|ASK|TRYAGAIN) /;

const DEFAULTS = {
  l2TimeoutMs: 250,
  connectTimeoutMs: 1000,
  slotsRefreshIntervalMs: 2000,
} as const;

function optionError(message: string): HotshieldError {
  return new HotshieldError('HS_ERR_REDIS_OPTION', message);
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0)
    throw optionError(`${name} must be a positive integer of milliseconds (got ${value})`);
  return v;
}

/** Parse `host:port,host:port` into ioredis startup nodes. */
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

/** Any failure of a Redis call as a typed L2 error. */
export function toL2Error(error: unknown): HotshieldError {
  if (error instanceof HotshieldError) return error;
  const message = error instanceof Error ? error.message : String(error);
  // ioredis' per-node commandTimeout can fire before our deadline: it is a timeout too.
  const code = /timed out/i.test(message) ? 'HS_ERR_L2_TIMEOUT' : 'HS_ERR_L2_UNAVAILABLE';
  return new HotshieldError(code, `Redis: ${message}`, { cause: error });
}

export class L2Client {
  readonly #client: Cluster | Redis;
  readonly #owned: boolean;
  readonly #timeoutMs: number;
  #closed = false;

  constructor(options: L2ClientOptions) {
    this.#timeoutMs = positiveInt('l2TimeoutMs', options.l2TimeoutMs, DEFAULTS.l2TimeoutMs);
    const connectTimeout = positiveInt(
      'connectTimeoutMs',
      options.connectTimeoutMs,
      DEFAULTS.connectTimeoutMs,
    );
    const slotsRefreshInterval = positiveInt(
      'slotsRefreshIntervalMs',
      options.slotsRefreshIntervalMs,
      DEFAULTS.slotsRefreshIntervalMs,
    );
    const auth = { username: options.username, password: options.password };
    const redis = options.redis;
    if (redis instanceof Cluster || redis instanceof Redis) {
      this.#client = redis;
      this.#owned = false;
    } else if (typeof redis === 'string' && /^rediss?:\/\//.test(redis)) {
      this.#client = new Redis(redis, {
        ...auth,
        enableOfflineQueue: false,
        commandTimeout: this.#timeoutMs,
        connectTimeout,
        maxRetriesPerRequest: 1,
      });
      this.#owned = true;
    } else if (typeof redis === 'string') {
      this.#client = new Cluster(parseSeeds(redis), {
        enableOfflineQueue: false,
        slotsRefreshInterval,
        slotsRefreshTimeout: connectTimeout,
        scaleReads: 'master',
        redisOptions: { ...auth, commandTimeout: this.#timeoutMs, connectTimeout },
      });
      this.#owned = true;
    } else {
      throw optionError(
        'redis must be a seed list, a redis:// URL, or an ioredis Cluster/Redis client',
      );
    }
    // Connection trouble is reported through call results; an 'error' event without a
    // listener would crash the thread. A client passed in keeps its owner's listeners.
    if (this.#owned) this.#client.on('error', () => {});
  }

  get isCluster(): boolean {
    return this.#client instanceof Cluster;
  }

  /** Resolves once the client is ready to take commands, or rejects after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void> {
    if (this.#client.status === 'ready') return Promise.resolve();
    const readyEvent = new Promise<void>((resolve) => this.#client.once('ready', () => resolve()));
    return withDeadline(readyEvent, timeoutMs, 'connecting to Redis');
  }

  /** GET one key (null when absent). */
  async get(key: string): Promise<Buffer | null> {
    const [r] = await this.getMany([key]);
    if (r instanceof HotshieldError) throw r;
    return r;
  }

  /**
   * GET many keys, one pipeline per master node, all within one deadline. Never rejects:
   * each key's slot in the result holds its value, null, or its own error.
   */
  async getMany(keys: readonly string[]): Promise<L2Read[]> {
    const out: L2Read[] = new Array(keys.length).fill(null);
    const deadlineAt = performance.now() + this.#timeoutMs;
    const client = this.#client;
    if (!(client instanceof Cluster)) {
      await this.#pipelineGets(
        client,
        'redis',
        keys,
        keys.map((_, i) => i),
        out,
        deadlineAt,
      );
      return out;
    }
    const masters = new Map<string, Redis>();
    for (const node of client.nodes('master'))
      masters.set(`${node.options.host}:${node.options.port}`, node);
    const groups = new Map<string, number[]>();
    for (let i = 0; i < keys.length; i++) {
      const nodeKey = client.slots[calculateSlot(keys[i])]?.[0] ?? '';
      const group = groups.get(nodeKey);
      if (group) group.push(i);
      else groups.set(nodeKey, [i]);
    }
    await Promise.all(
      [...groups].map(([nodeKey, indexes]) => {
        const node = masters.get(nodeKey);
        return node
          ? this.#pipelineGets(node, nodeKey, keys, indexes, out, deadlineAt)
          : this.#clusterGets(keys, indexes, out, deadlineAt);
      }),
    );
    return out;
  }

  async #pipelineGets(
    node: Redis,
    nodeKey: string,
    keys: readonly string[],
    indexes: number[],
    out: L2Read[],
    deadlineAt: number,
  ): Promise<void> {
    const pipeline = node.pipeline();
    for (const i of indexes) pipeline.getBuffer(keys[i]);
    try {
      const replies = await withDeadline(
        pipeline.exec(),
        Math.max(1, deadlineAt - performance.now()),
        `GET of ${indexes.length} keys on ${nodeKey}`,
      );
      // A redirect (slot moved or moving) is followed through the cluster client; any
      // other error is that key's answer.
      const retry: number[] = [];
      const cluster = this.#client instanceof Cluster;
      replies?.forEach(([error, value], j) => {
        if (error && cluster && REDIRECT.test(error.message)) retry.push(indexes[j]);
        else out[indexes[j]] = error ? toL2Error(error) : ((value as Buffer | null) ?? null);
      });
      if (retry.length > 0) await this.#clusterGets(keys, retry, out, deadlineAt);
    } catch (error) {
      const e = toL2Error(error);
      for (const i of indexes) out[i] = e;
    }
  }

  /** One GET per key through the cluster client, which follows MOVED/ASK. */
  async #clusterGets(
    keys: readonly string[],
    indexes: number[],
    out: L2Read[],
    deadlineAt: number,
  ): Promise<void> {
    await Promise.all(
      indexes.map(async (i) => {
        try {
          out[i] = await withDeadline(
            this.#client.getBuffer(keys[i]),
            Math.max(1, deadlineAt - performance.now()),
            `GET ${keys[i]}`,
          );
        } catch (error) {
          out[i] = toL2Error(error);
        }
      }),
    );
  }

  /** SET with a TTL in ms (PX); `ttlMs` 0 means no expiry. */
  async set(key: string, value: Buffer | string, ttlMs: number): Promise<void> {
    try {
      const command =
        ttlMs > 0 ? this.#client.set(key, value, 'PX', ttlMs) : this.#client.set(key, value);
      await withDeadline(command, this.#timeoutMs, `SET ${key}`);
    } catch (error) {
      throw toL2Error(error);
    }
  }

  /** DEL; true if the key existed. */
  async del(key: string): Promise<boolean> {
    try {
      return (await withDeadline(this.#client.del(key), this.#timeoutMs, `DEL ${key}`)) > 0;
    } catch (error) {
      throw toL2Error(error);
    }
  }

  /** Close the connections this client opened (idempotent; a passed-in client is left open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#owned) return;
    try {
      await withDeadline(this.#client.quit(), this.#timeoutMs, 'QUIT');
    } catch {
      // Unreachable Redis: drop the sockets instead of waiting for a goodbye.
    }
    this.#client.disconnect();
  }
}
