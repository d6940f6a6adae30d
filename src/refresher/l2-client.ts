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
import { type RedisTarget, type RedisTls, redisTargetOf } from './redis-target.ts';

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
  /** TLS for a target given as a string (validated: see redisTlsOf). */
  tls?: RedisTls;
  /** Told about every call to a node: for per-node latency and error metrics. */
  onCall?: (call: L2Call) => void;
}

/** One call to one node, as reported to `onCall`. */
export interface L2Call {
  node: string;
  op: L2Op;
  seconds: number;
  /** Keys in the call, and how many of them failed (with the first failure's code). */
  keys: number;
  failed: number;
  code?: string;
}

export type L2Op = 'get' | 'set' | 'del' | 'flush' | 'count';

/** One key's outcome in a batch: its value, null when absent, or why it failed. */
export type L2Read = Buffer | null | HotshieldError;

/** A command that a pipeline (or, after a redirect, the cluster client) can carry. */
type Commands = Record<string, (...args: unknown[]) => unknown>;

/**
 * One batch: one command per key, sent as one pipeline per master within one deadline;
 * `command(target, i)` adds key i's command to a pipeline, or sends it alone, and
 * `reply(raw, i)` turns its reply into the batch's result, throwing a HotshieldError for
 * a reply of the wrong shape (a broken or hostile node must not reach the codec).
 */
interface Batch {
  readonly op: L2Op;
  readonly keys: readonly string[];
  readonly out: unknown[];
  readonly deadlineAt: number;
  readonly command: (target: Commands, i: number) => unknown;
  readonly reply: (raw: unknown, i: number) => unknown;
}

/** One counter flush (see flushShard). */
export interface ShardFlush {
  shardKey: string;
  markKey: string;
  seq: bigint;
  delta: bigint;
}

/** One shard read for a counter total: the shard and the writer marks to read with it. */
export interface ShardRead {
  shardKey: string;
  markKeys: readonly string[];
}

/** A shard's value and the marks read atomically with it (0n when absent). */
export interface ShardValue {
  value: bigint;
  marks: bigint[];
}

/** A well-formed redirect (anything else is that key's error, never followed). */
const REDIRECT = /^(?:(?:MOVED|ASK) \d{1,5} \S*:\d{1,5}$|TRYAGAIN )/;
/** Breaker key of the wait for a client that is not connected (see #connected). */
const CONNECTING = '(connecting)';

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
 * KEYS[1] shard, KEYS[2] the flushing writer's mark (its last applied seq), same slot.
 * ARGV: seq, delta, mark TTL in ms. Returns 1 if applied, 0 if this seq or a later one
 * already was (a retry after a lost reply, or ioredis re-sending after a dropped
 * connection). A duplicate renews the mark too: a flush whose replies keep getting lost
 * is re-sent for as long as that lasts, and its mark must outlive every re-send. One mark key per writer, each with its own expiry, keeps Redis's memory
 * bounded by the writers of the last TTL.
 */
const FLUSH_SHARD_LUA = `
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) <= last then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 0
end
redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return 1
`;

/**
 * A shard and some writer marks, read atomically: KEYS[1] shard, KEYS[2..] marks.
 * Returns strings ('' when absent): whether a flush is in the shard is read with it.
 */
const READ_SHARD_LUA = `
local out = {redis.call('GET', KEYS[1]) or ''}
for i = 2, #KEYS do out[i] = redis.call('GET', KEYS[i]) or '' end
return out
`;

/** Teach a client (or a cluster node) the counter scripts (EVALSHA, EVAL once if unknown). */
function defineScripts(client: Cluster | Redis): void {
  if ((client as unknown as Partial<Commands>).hotshieldFlushShard !== undefined) return;
  client.defineCommand('hotshieldFlushShard', { numberOfKeys: 2, lua: FLUSH_SHARD_LUA });
  // No numberOfKeys: the caller passes the key count first (a shard and any marks).
  client.defineCommand('hotshieldReadShard', { lua: READ_SHARD_LUA });
}

function integerOf(raw: unknown, what: string): bigint {
  const text = Buffer.isBuffer(raw) ? raw.toString() : String(raw);
  if (text === '') return 0n;
  if (!/^-?\d{1,20}$/.test(text))
    throw new HotshieldError('HS_ERR_L2_UNAVAILABLE', `Redis: ${what} holds a non-integer`);
  return BigInt(text);
}

function kindOf(raw: unknown): string {
  if (Array.isArray(raw)) return 'an array';
  if (typeof raw === 'number' || typeof raw === 'bigint') return 'an integer';
  return typeof raw === 'object' ? 'a map' : `a ${typeof raw}`;
}

function wrongReply(op: string, raw: unknown): HotshieldError {
  return new HotshieldError('HS_ERR_L2_UNAVAILABLE', `Redis: ${op} answered ${kindOf(raw)}`);
}

/** GET's reply: a string (as a Buffer) or nil. */
function bulkOf(raw: unknown): Buffer | null {
  if (raw === null || Buffer.isBuffer(raw)) return raw;
  throw wrongReply('GET', raw);
}

/** FLUSH_SHARD_LUA's reply: 1 if applied, 0 if a duplicate. */
function appliedOf(raw: unknown): boolean {
  if (raw === 0 || raw === 1) return raw === 1;
  throw wrongReply('a counter flush', raw);
}

/** READ_SHARD_LUA's reply: the shard's value, then its marks. */
function shardValueOf(raw: unknown, shardKey: string): ShardValue {
  if (!Array.isArray(raw) || raw.length === 0) throw wrongReply('a shard read', raw);
  const [value, ...marks] = raw.map((x) => integerOf(x, shardKey));
  return { value, marks };
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
  // The same credentials and TLS settings for every node: ioredis Cluster gives
  // redisOptions to each node connection, seeds and nodes found in the slot map alike.
  const auth = { username: target.username, password: target.password, tls: target.tls };
  if (target.kind === 'standalone') {
    return new Redis({
      ...auth,
      host: target.host,
      port: target.port,
      db: target.db,
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

/** Key i's reply as the batch's result, or the error saying why it is not one. */
function replyOf(batch: Batch, raw: unknown, i: number): unknown {
  try {
    return batch.reply(raw, i);
  } catch (error) {
    return toL2Error(error);
  }
}

export class L2Client {
  readonly #client: Cluster | Redis;
  readonly #owned: boolean;
  readonly #timeoutMs: number;
  readonly #breaker: Breaker;
  readonly #onCall: (call: L2Call) => void;
  #readyEvent: Promise<void> | undefined;
  #lastError: string | undefined;
  #resets = 0;
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
          : redisTargetOf(redis, {
              username: options.username,
              password: options.password,
              tls: options.tls,
            });
      this.#client = openClient(target, this.#timeoutMs, connectTimeout, slotsRefreshInterval);
      this.#owned = true;
    }
    // Connection trouble is reported through call results; an 'error' event without a
    // listener would crash the thread. Its message is kept: "WRONGPASS" must reach the
    // operator, not just "took too long". A client passed in keeps its owner's listeners.
    const note = (error: Error & { lastNodeError?: Error }) => {
      this.#lastError = (error.lastNodeError?.message ?? error.message).slice(0, 300);
    };
    this.#client.on('ready', () => {
      this.#lastError = undefined;
    });
    if (this.#owned) {
      this.#client.on('error', note);
      this.#client.on('node error', note);
    }
    defineScripts(this.#client);
  }

  /** The last connection error ioredis reported (cleared once ready), for logs and errors. */
  get lastError(): string | undefined {
    return this.#lastError;
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
    return withDeadline(this.#readyEvent, timeoutMs, 'connecting to Redis').catch((error) => {
      const last = this.#lastError;
      if (last === undefined) throw error;
      // Refused credentials are not slowness: say so, with what Redis said.
      const refused = /WRONGPASS|NOAUTH|NOPERM|invalid password/i.test(last);
      throw new HotshieldError(
        refused ? 'HS_ERR_L2_UNAVAILABLE' : 'HS_ERR_L2_TIMEOUT',
        `${(error as Error).message} (last error: ${last})`,
        { cause: error },
      );
    });
  }

  /**
   * While the client is still connecting (a fresh refresher, a reconnect), a call waits
   * for it within its own deadline instead of failing at once: the offline queue this
   * client does not have, bounded by time. A closed client fails at once. So does every
   * call once `breakerThreshold` waits in a row have timed out (all of Redis down), until
   * the cool-down lets one wait through again: a miss then costs nothing, not a deadline.
   */
  async #connected(deadlineAt: number): Promise<void> {
    const status = this.#client.status;
    if (status === 'ready') {
      this.#breaker.success(CONNECTING);
      return;
    }
    if (this.#closed || status === 'end' || status === 'close')
      throw new HotshieldError('HS_ERR_L2_UNAVAILABLE', `Redis: the connection is ${status}`);
    if (!this.#breaker.allow(CONNECTING, performance.now())) {
      const last = this.#lastError === undefined ? '' : ` (last error: ${this.#lastError})`;
      throw new HotshieldError(
        'HS_ERR_L2_UNAVAILABLE',
        `Redis is not connected${last}; calls fail at once until the next try (breakerCooldown)`,
      );
    }
    try {
      await this.ready(Math.max(1, deadlineAt - performance.now()));
      this.#breaker.success(CONNECTING);
    } catch (error) {
      this.#breaker.failure(CONNECTING, performance.now());
      throw error;
    }
  }

  /**
   * Drop and reopen every connection: after ioredis met a reply it could not match to a
   * command (an unsolicited reply, a malformed redirect), the stream may be out of step
   * with the commands, and only a new connection is sure to be in step again.
   */
  resetConnections(): void {
    if (this.#closed) return;
    this.#resets++;
    this.#client.disconnect(true);
  }

  /**
   * A node failed a call. If that opened its circuit and the node had stopped answering
   * (timeouts), its connection is reset too: a connection whose parser waits for the
   * rest of a reply that never comes (a truncated bulk string) times out every later
   * command, and only a new connection starts clean. A cluster node's connection is not
   * reconnected by ioredis; the next redirect or slot refresh opens a new one.
   */
  #nodeFailed(nodeKey: string, timedOut: boolean): void {
    if (!this.#breaker.failure(nodeKey, performance.now()) || !timedOut || this.#closed) return;
    const client = this.#client;
    const node =
      client instanceof Cluster
        ? client.nodes('all').find((n) => `${n.options.host}:${n.options.port}` === nodeKey)
        : client;
    if (node === undefined) return;
    this.#resets++;
    node.disconnect(true);
  }

  /** GET one key (null when absent). */
  async get(key: string): Promise<Buffer | null> {
    const [r] = await this.getMany([key]);
    if (r instanceof HotshieldError) throw r;
    return r;
  }

  /**
   * GET many keys, one pipeline per master node, all within one deadline. Never rejects:
   * each key's slot in the result holds its value, null, or its own error. `onPart` hears
   * of each master's keys as soon as that master has answered (or failed); every key is
   * in exactly one part.
   */
  async getMany(
    keys: readonly string[],
    onPart?: (indexes: readonly number[], reads: readonly L2Read[]) => void,
  ): Promise<L2Read[]> {
    const out = await this.#batch(
      'get',
      keys,
      (target, i) => target.getBuffer(keys[i]),
      bulkOf,
      onPart as ((indexes: readonly number[], out: readonly unknown[]) => void) | undefined,
    );
    return out as L2Read[];
  }

  /**
   * Counter flushes (flushShard), one pipeline per master, one deadline. Never rejects:
   * each flush's slot holds whether it was applied (false: a duplicate) or its error.
   */
  async flushMany(
    flushes: readonly ShardFlush[],
    markTtlMs: number,
  ): Promise<Array<boolean | HotshieldError>> {
    const out = await this.#batch(
      'flush',
      flushes.map((f) => f.shardKey),
      (target, i) => {
        const f = flushes[i];
        const args = [f.shardKey, f.markKey, f.seq.toString(), f.delta.toString()];
        return target.hotshieldFlushShard(...args, String(markTtlMs));
      },
      appliedOf,
    );
    return out as Array<boolean | HotshieldError>;
  }

  /**
   * Counter shards, each read atomically with its marks (READ_SHARD_LUA), one pipeline
   * per master. Never rejects: each read's slot holds its values or its error.
   */
  async readShards(reads: readonly ShardRead[]): Promise<Array<ShardValue | HotshieldError>> {
    const out = await this.#batch(
      'count',
      reads.map((r) => r.shardKey),
      (target, i) => {
        const r = reads[i];
        return target.hotshieldReadShard(1 + r.markKeys.length, r.shardKey, ...r.markKeys);
      },
      (raw, i) => shardValueOf(raw, reads[i].shardKey),
    );
    return out as Array<ShardValue | HotshieldError>;
  }

  /** Run `command` for every key as one pipeline per master (see Batch); never rejects. */
  async #batch(
    op: L2Op,
    keys: readonly string[],
    command: Batch['command'],
    reply: Batch['reply'],
    onPart?: (indexes: readonly number[], out: readonly unknown[]) => void,
  ): Promise<unknown[]> {
    const out: unknown[] = new Array(keys.length).fill(null);
    const all = () => keys.map((_, i) => i);
    const deadlineAt = performance.now() + this.#timeoutMs;
    try {
      await this.#connected(deadlineAt);
    } catch (error) {
      out.fill(toL2Error(error));
      onPart?.(all(), out);
      return out;
    }
    const batch: Batch = { op, keys, out, deadlineAt, command, reply };
    const client = this.#client;
    if (!(client instanceof Cluster)) {
      const indexes = all();
      await this.#pipeline(batch, client, STANDALONE_NODE, indexes);
      onPart?.(indexes, out);
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
        const part = node
          ? this.#pipeline(batch, node, nodeKey, indexes)
          : this.#oneByOne(batch, indexes);
        // A master that answers is not kept waiting for one that hangs.
        return onPart === undefined ? part : part.then(() => onPart(indexes, out));
      }),
    );
    return out;
  }

  async #pipeline(batch: Batch, node: Redis, nodeKey: string, indexes: number[]): Promise<void> {
    const { out } = batch;
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
      this.#onCall({ node: nodeKey, op: batch.op, seconds, keys: indexes.length, failed, code });
    };
    if (!this.#breaker.allow(nodeKey, performance.now())) {
      const e = circuitOpen(nodeKey);
      for (const i of indexes) out[i] = e;
      report();
      return;
    }
    try {
      await this.#pipelineOnce(batch, node, nodeKey, indexes);
    } finally {
      report();
    }
  }

  async #pipelineOnce(
    batch: Batch,
    node: Redis,
    nodeKey: string,
    indexes: number[],
  ): Promise<void> {
    const { out, deadlineAt } = batch;
    defineScripts(node);
    const pipeline = node.pipeline();
    for (const i of indexes) batch.command(pipeline as unknown as Commands, i);
    try {
      const replies = await withDeadline(
        pipeline.exec(),
        Math.max(1, deadlineAt - performance.now()),
        `${batch.op.toUpperCase()} of ${indexes.length} keys on ${nodeKey}`,
      );
      // A redirect (slot moved or moving) is followed through the cluster client; any
      // other error is that key's answer. ioredis' own commandTimeout fails commands
      // inside a pipeline that still resolves: those count against the node.
      const retry: number[] = [];
      const cluster = this.#client instanceof Cluster;
      let nodeFailed = false;
      let timedOut = false;
      replies?.forEach(([error, value], j) => {
        const i = indexes[j];
        if (error && cluster && REDIRECT.test(error.message)) retry.push(i);
        else if (error) {
          const e = toL2Error(error);
          nodeFailed ||= isNodeFailure(e);
          timedOut ||= e.code === 'HS_ERR_L2_TIMEOUT';
          out[i] = e;
        } else out[i] = replyOf(batch, value, i);
      });
      if (nodeFailed) this.#nodeFailed(nodeKey, timedOut);
      else this.#breaker.success(nodeKey);
      if (retry.length > 0) await this.#oneByOne(batch, retry);
    } catch (error) {
      const e = toL2Error(error);
      this.#nodeFailed(nodeKey, e.code === 'HS_ERR_L2_TIMEOUT');
      for (const i of indexes) out[i] = e;
    }
  }

  /** Each key's command alone through the cluster client, which follows MOVED/ASK. */
  async #oneByOne(batch: Batch, indexes: number[]): Promise<void> {
    const { keys, out, deadlineAt } = batch;
    await Promise.all(
      indexes.map(async (i) => {
        try {
          const raw = await withDeadline(
            batch.command(this.#client as unknown as Commands, i) as Promise<unknown>,
            Math.max(1, deadlineAt - performance.now()),
            `${batch.op.toUpperCase()} ${keys[i]}`,
          );
          out[i] = replyOf(batch, raw, i);
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
   * Add `delta` to the counter shard `shardKey` at most once for (`markKey`, `seq`):
   * atomically (one Lua script, both keys in the shard's slot) the shard is incremented
   * and `seq` recorded in the writer's mark, unless that seq or a later one already was.
   * The mark expires `markTtlMs` after the writer's last flush. True if applied now.
   */
  async flushShard(flush: ShardFlush, markTtlMs: number): Promise<boolean> {
    const [r] = await this.flushMany([flush], markTtlMs);
    if (r instanceof HotshieldError) throw r;
    return r;
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

  /** Calls refused by open circuits, circuits opened, connections reset, and the nodes open now. */
  breakerState(): { rejected: number; opened: number; resets: number; openNodes: string[] } {
    return {
      ...this.#breaker.counts,
      resets: this.#resets,
      openNodes: this.#breaker.openNodes(performance.now()),
    };
  }

  async #write<T>(key: string, op: 'set' | 'del', command: () => Promise<T>): Promise<T> {
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
      if (isNodeFailure(e)) this.#nodeFailed(node, e.code === 'HS_ERR_L2_TIMEOUT');
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
