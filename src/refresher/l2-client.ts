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
import { Breaker } from './breaker.ts';
import { withDeadline } from './deadline.ts';
import { type RedisTarget, redisTargetOf } from './redis-target.ts';

export interface L2ClientOptions {
  /**
   * A RedisTarget (plain data, see redis-target.ts), cluster seeds as
   * `host:port,host:port`, a `redis://` / `rediss://` URL for a standalone Redis, or an
   * ioredis `Cluster` / `Redis` client used as it is (and not closed by us).
   */
  redis: RedisTarget | string | Cluster | Redis;
  /** Deadline of one read or write, in ms (default 250). */
  l2TimeoutMs?: number;
  /** TCP connect timeout per node, in ms (default 1000). */
  connectTimeoutMs?: number;
  /** How often the cluster's slot map is re-read, in ms (default 2000). */
  slotsRefreshIntervalMs?: number;
  /** Consecutive failures that open a node's circuit (default 5). */
  breakerThreshold?: number;
  /** How long an open circuit refuses calls before one probe, in ms (default 1000). */
  breakerCooldownMs?: number;
  username?: string;
  password?: string;
  /** Told about every call to a node: for per-node latency and error metrics. */
  onCall?: (call: L2Call) => void;
}

/** One call to one node, as reported to `onCall`. */
export interface L2Call {
  node: string;
  op: 'get' | 'set' | 'del' | 'flush';
  seconds: number;
  /** Keys in the call, and how many of them failed (with the first failure's code). */
  keys: number;
  failed: number;
  code?: string;
}

/** One key's outcome in a batch: its value, null when absent, or why it failed. */
export type L2Read = Buffer | null | HotshieldError;

/** One getMany call: its keys, where their outcomes go, and its shared deadline. */
interface Reads {
  readonly keys: readonly string[];
  readonly out: L2Read[];
  readonly deadlineAt: number;
}

const REDIRECT = /^(MOVED|ASK|TRYAGAIN) /;

const DEFAULTS = {
  l2TimeoutMs: 250,
  connectTimeoutMs: 1000,
  slotsRefreshIntervalMs: 2000,
  breakerThreshold: 5,
  breakerCooldownMs: 1000,
} as const;

const STANDALONE_NODE = 'redis';

function optionError(message: string): HotshieldError {
  return new HotshieldError('HS_ERR_OPTION', message);
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0)
    throw optionError(`${name} must be a positive integer of milliseconds (got ${value})`);
  return v;
}

/** Any failure of a Redis call as a typed L2 error. */
export function toL2Error(error: unknown): HotshieldError {
  if (error instanceof HotshieldError) return error;
  const message = error instanceof Error ? error.message : String(error);
  // ioredis' per-node commandTimeout can fire before our deadline: it is a timeout too.
  const code = /timed out/i.test(message) ? 'HS_ERR_L2_TIMEOUT' : 'HS_ERR_L2_UNAVAILABLE';
  return new HotshieldError(code, `Redis: ${message}`, { cause: error });
}

/**
 * Does `error` say the node is unwell (timeout, connection lost, cluster down), rather
 * than that this key's command was refused (WRONGTYPE, OOM…)?
 */
export function isNodeFailure(error: HotshieldError): boolean {
  return (
    error.code === 'HS_ERR_L2_TIMEOUT' ||
    /closed|connection is|ECONN|EPIPE|CLUSTERDOWN|MASTERDOWN|LOADING|isn't ready|Too many Cluster redirections/i.test(
      error.message,
    )
  );
}

/**
 * The idempotent counter flush (reliability research, section 3, "high-water mark"):
 * KEYS[1] shard, KEYS[2] mark hash (writer → last applied seq), same slot.
 * ARGV: writer, seq, delta, mark TTL in ms. Returns {applied 1|0, shard value as string}.
 * The value is read back with GET rather than taken from INCRBY: Lua numbers are doubles,
 * exact only below 2^53; the string is exact.
 */
const FLUSH_SHARD_LUA = `
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) <= last then
  return {0, redis.call('GET', KEYS[1]) or '0'}
end
redis.call('INCRBY', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1, redis.call('GET', KEYS[1])}
`;

interface FlushCommand {
  hotshieldFlushShard(...args: string[]): Promise<unknown>;
}

/** Teach a client the flush script (ioredis sends EVALSHA, and EVAL once if unknown). */
function defineFlush(client: Cluster | Redis): void {
  if ((client as unknown as Partial<FlushCommand>).hotshieldFlushShard !== undefined) return;
  client.defineCommand('hotshieldFlushShard', { numberOfKeys: 2, lua: FLUSH_SHARD_LUA });
}

function circuitOpen(node: string): HotshieldError {
  return new HotshieldError(
    'HS_ERR_L2_UNAVAILABLE',
    `Redis node ${node} is failing; its circuit is open (breakerCooldown)`,
  );
}

/** Open a client for `target` with the settings a cache wants (see the header). */
function openClient(
  target: RedisTarget,
  commandTimeout: number,
  connectTimeout: number,
  slotsRefreshInterval: number,
): Cluster | Redis {
  const auth = { username: target.username, password: target.password };
  if (target.kind === 'standalone') {
    return new Redis({
      ...auth,
      host: target.host,
      port: target.port,
      db: target.db,
      tls: target.tls ? {} : undefined,
      enableOfflineQueue: false,
      commandTimeout,
      connectTimeout,
      maxRetriesPerRequest: 1,
    });
  }
  return new Cluster(target.nodes, {
    enableOfflineQueue: false,
    slotsRefreshInterval,
    slotsRefreshTimeout: connectTimeout,
    scaleReads: 'master',
    redisOptions: { ...auth, commandTimeout, connectTimeout },
  });
}

export class L2Client {
  readonly #client: Cluster | Redis;
  readonly #owned: boolean;
  readonly #timeoutMs: number;
  readonly #breaker: Breaker;
  readonly #onCall: (call: L2Call) => void;
  #readyEvent: Promise<void> | undefined;
  #closed = false;

  constructor(options: L2ClientOptions) {
    this.#timeoutMs = positiveInt('l2TimeoutMs', options.l2TimeoutMs, DEFAULTS.l2TimeoutMs);
    this.#onCall = options.onCall ?? (() => {});
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
    this.#breaker = new Breaker(
      positiveInt('breakerThreshold', options.breakerThreshold, DEFAULTS.breakerThreshold),
      positiveInt('breakerCooldownMs', options.breakerCooldownMs, DEFAULTS.breakerCooldownMs),
    );
    const redis = options.redis;
    if (redis instanceof Cluster || redis instanceof Redis) {
      this.#client = redis;
      this.#owned = false;
    } else {
      const target =
        typeof redis === 'object' && redis !== null && 'kind' in redis
          ? redis
          : redisTargetOf(redis, { username: options.username, password: options.password });
      this.#client = openClient(target, this.#timeoutMs, connectTimeout, slotsRefreshInterval);
      this.#owned = true;
    }
    // Connection trouble is reported through call results; an 'error' event without a
    // listener would crash the thread. A client passed in keeps its owner's listeners.
    if (this.#owned) this.#client.on('error', () => {});
    defineFlush(this.#client);
  }

  get isCluster(): boolean {
    return this.#client instanceof Cluster;
  }

  /** Resolves once the client is ready to take commands, or rejects after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void> {
    if (this.#client.status === 'ready') return Promise.resolve();
    this.#readyEvent ??= new Promise<void>((resolve) =>
      this.#client.once('ready', () => {
        this.#readyEvent = undefined;
        resolve();
      }),
    );
    return withDeadline(this.#readyEvent, timeoutMs, 'connecting to Redis');
  }

  /**
   * While the client is still connecting (a fresh refresher, a reconnect), a call waits
   * for it within its own deadline instead of failing at once: the offline queue this
   * client does not have, bounded by time. A closed client fails at once.
   */
  async #connected(deadlineAt: number): Promise<void> {
    const status = this.#client.status;
    if (status === 'ready') return;
    if (this.#closed || status === 'end' || status === 'close')
      throw new HotshieldError('HS_ERR_L2_UNAVAILABLE', `Redis: the connection is ${status}`);
    await this.ready(Math.max(1, deadlineAt - performance.now()));
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
    try {
      await this.#connected(deadlineAt);
    } catch (error) {
      return out.fill(toL2Error(error));
    }
    const reads: Reads = { keys, out, deadlineAt };
    const client = this.#client;
    if (!(client instanceof Cluster)) {
      await this.#pipelineGets(
        reads,
        client,
        STANDALONE_NODE,
        keys.map((_, i) => i),
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
          ? this.#pipelineGets(reads, node, nodeKey, indexes)
          : this.#clusterGets(reads, indexes);
      }),
    );
    return out;
  }

  async #pipelineGets(
    reads: Reads,
    node: Redis,
    nodeKey: string,
    indexes: number[],
  ): Promise<void> {
    const { out } = reads;
    const started = performance.now();
    const report = () => {
      let failed = 0;
      let code: string | undefined;
      for (const i of indexes) {
        const r = out[i];
        if (r instanceof HotshieldError) {
          failed++;
          code ??= r.code;
        }
      }
      const seconds = (performance.now() - started) / 1000;
      this.#onCall({ node: nodeKey, op: 'get', seconds, keys: indexes.length, failed, code });
    };
    if (!this.#breaker.allow(nodeKey, performance.now())) {
      const e = circuitOpen(nodeKey);
      for (const i of indexes) out[i] = e;
      report();
      return;
    }
    try {
      await this.#pipelineOnce(reads, node, nodeKey, indexes);
    } finally {
      report();
    }
  }

  async #pipelineOnce(
    reads: Reads,
    node: Redis,
    nodeKey: string,
    indexes: number[],
  ): Promise<void> {
    const { keys, out, deadlineAt } = reads;
    const pipeline = node.pipeline();
    for (const i of indexes) pipeline.getBuffer(keys[i]);
    try {
      const replies = await withDeadline(
        pipeline.exec(),
        Math.max(1, deadlineAt - performance.now()),
        `GET of ${indexes.length} keys on ${nodeKey}`,
      );
      // A redirect (slot moved or moving) is followed through the cluster client; any
      // other error is that key's answer. ioredis' own commandTimeout fails commands
      // inside a pipeline that still resolves: those count against the node.
      const retry: number[] = [];
      const cluster = this.#client instanceof Cluster;
      let nodeFailed = false;
      replies?.forEach(([error, value], j) => {
        if (error && cluster && REDIRECT.test(error.message)) retry.push(indexes[j]);
        else if (error) {
          const e = toL2Error(error);
          nodeFailed ||= isNodeFailure(e);
          out[indexes[j]] = e;
        } else out[indexes[j]] = (value as Buffer | null) ?? null;
      });
      if (nodeFailed) this.#breaker.failure(nodeKey, performance.now());
      else this.#breaker.success(nodeKey);
      if (retry.length > 0) await this.#clusterGets(reads, retry);
    } catch (error) {
      this.#breaker.failure(nodeKey, performance.now());
      const e = toL2Error(error);
      for (const i of indexes) out[i] = e;
    }
  }

  /** One GET per key through the cluster client, which follows MOVED/ASK. */
  async #clusterGets(reads: Reads, indexes: number[]): Promise<void> {
    const { keys, out, deadlineAt } = reads;
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
  set(key: string, value: Uint8Array, ttlMs: number): Promise<void> {
    const v = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return this.#write(key, 'set', () =>
      ttlMs > 0 ? this.#client.set(key, v, 'PX', ttlMs) : this.#client.set(key, v),
    ).then(() => undefined);
  }

  /**
   * Add `delta` to the counter shard `shardKey` at most once for (`writer`, `seq`):
   * atomically (one Lua script, both keys in the shard's slot) the shard is incremented
   * and `seq` recorded as `writer`'s last applied flush in `markKey`, unless a flush with
   * that or a later `seq` was already applied (a retry after a lost reply, or ioredis
   * re-sending after a dropped connection). The mark expires after `markTtlMs` without
   * flushes, so it holds one small hash field per live writer.
   */
  async flushShard(
    shardKey: string,
    markKey: string,
    writer: string,
    seq: number,
    delta: bigint,
    markTtlMs: number,
  ): Promise<{ applied: boolean; value: bigint }> {
    const [applied, value] = (await this.#write(shardKey, 'flush', () =>
      (this.#client as unknown as FlushCommand).hotshieldFlushShard(
        shardKey,
        markKey,
        writer,
        String(seq),
        delta.toString(),
        String(markTtlMs),
      ),
    )) as [number, string];
    return { applied: applied === 1, value: BigInt(value) };
  }

  /** DEL; true if the key existed. */
  async del(key: string): Promise<boolean> {
    return (await this.#write(key, 'del', () => this.#client.del(key))) > 0;
  }

  /** The master node (`host:port`) that owns `key`'s slot, as far as the client knows. */
  nodeOf(key: string): string {
    const client = this.#client;
    if (!(client instanceof Cluster)) return STANDALONE_NODE;
    return client.slots[calculateSlot(key)]?.[0] ?? 'unknown';
  }

  /** Is the client connected and ready for commands? */
  get isReady(): boolean {
    return this.#client.status === 'ready';
  }

  /** Calls refused by open circuits, circuits opened, and the nodes open now. */
  breakerState(): { rejected: number; opened: number; openNodes: string[] } {
    return { ...this.#breaker.counts, openNodes: this.#breaker.openNodes(performance.now()) };
  }

  async #write<T>(key: string, op: 'set' | 'del' | 'flush', command: () => Promise<T>): Promise<T> {
    const node = this.nodeOf(key);
    const what = `${op.toUpperCase()} ${key}`;
    const started = performance.now();
    const report = (code?: string) =>
      this.#onCall({
        node,
        op,
        seconds: (performance.now() - started) / 1000,
        keys: 1,
        failed: code === undefined ? 0 : 1,
        code,
      });
    if (!this.#breaker.allow(node, performance.now())) {
      const e = circuitOpen(node);
      report(e.code);
      throw e;
    }
    try {
      const deadlineAt = performance.now() + this.#timeoutMs;
      await this.#connected(deadlineAt);
      const result = await withDeadline(
        command(),
        Math.max(1, deadlineAt - performance.now()),
        what,
      );
      this.#breaker.success(node);
      report();
      return result;
    } catch (error) {
      const e = toL2Error(error);
      // A refused write (WRONGTYPE, OOM) still proves the node answers: a half-open
      // circuit must close on it, not wait for ever for a verdict.
      if (isNodeFailure(e)) this.#breaker.failure(node, performance.now());
      else this.#breaker.success(node);
      report(e.code);
      throw e;
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
