/**
 * The refresher's connection to L2 (a Redis Cluster, or a standalone Redis): the one
 * place in hotshield that talks to Redis.
 *
 * - Batched reads and counter scripts go out as one pipeline per master node
 *   (l2-batch.ts), each key with its own result or typed error.
 * - Every call has a deadline (deadline.ts) and passes its node's circuit breaker
 *   (breaker.ts); a node that stops answering has its connection reset.
 * - The client is opened with the settings a cache wants (redis-connection.ts).
 */

import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { TIER_DEFAULTS } from '../defaults.ts';
import { HotshieldError, optionError } from '../errors.ts';
import { Breaker } from './breaker.ts';
import {
  appliedOf,
  defineScripts,
  type ShardFlush,
  type ShardRead,
  type ShardValue,
  sendFlush,
  sendShardRead,
  shardValueOf,
} from './counter-scripts.ts';
import { withDeadline } from './deadline.ts';
import {
  type BatchHost,
  type BatchSpec,
  isCluster,
  type L2Call,
  runBatch,
  STANDALONE_NODE,
} from './l2-batch.ts';
import { bulkOf, circuitOpen, isNodeFailure, toL2Error } from './l2-errors.ts';
import { openClient } from './redis-connection.ts';
import { type RedisTarget, type RedisTls, redisTargetOf } from './redis-target.ts';

/** Redis Cluster's hash slots. */
const SLOT_COUNT = 16384;

export interface L2ClientOptions {
  /**
   * A RedisTarget (plain data, see redis-target.ts), cluster seeds as
   * `host:port,host:port`, a `redis://` / `rediss://` URL for a standalone Redis, or an
   * ioredis `Cluster` / `Redis` client used as it is (and not closed by us).
   */
  redis: RedisTarget | string | Cluster | Redis;
  /** Deadline of one read or write, in ms (default: the tier's l2Timeout). */
  l2TimeoutMs?: number;
  /** TCP connect timeout per node, in ms (default: the tier's connectTimeout). */
  connectTimeoutMs?: number;
  /** How often the cluster's slot map is re-read, in ms (default: slotsRefreshInterval). */
  slotsRefreshIntervalMs?: number;
  /** Consecutive failures that open a node's circuit (default: breakerThreshold). */
  breakerThreshold?: number;
  /** How long an open circuit refuses calls before one probe, in ms (default: breakerCooldown). */
  breakerCooldownMs?: number;
  username?: string;
  password?: string;
  /** TLS for a target given as a string (validated: see redisTlsOf). */
  tls?: RedisTls;
  /** Told about every call to a node: for per-node latency and error metrics. */
  onCall?: (call: L2Call) => void;
}

/** One key's outcome in a batch: its value, null when absent, or why it failed. */
export type L2Read = Buffer | null | HotshieldError;

/** Breaker key of the wait for a client that is not connected (see #connected). */
const CONNECTING = '(connecting)';

/** The tier's defaults (defaults.ts), for a client made without a tier (tests, tools). */
const DEFAULTS = {
  l2TimeoutMs: TIER_DEFAULTS.l2Timeout.value,
  connectTimeoutMs: TIER_DEFAULTS.connectTimeout.value,
  slotsRefreshIntervalMs: TIER_DEFAULTS.slotsRefreshInterval.value,
  breakerThreshold: TIER_DEFAULTS.breakerThreshold.value,
  breakerCooldownMs: TIER_DEFAULTS.breakerCooldown.value,
} as const;

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0)
    throw optionError(`${name} must be a positive integer of milliseconds (got ${value})`);
  return v;
}

export class L2Client {
  readonly #client: Cluster | Redis;
  readonly #owned: boolean;
  readonly #timeoutMs: number;
  readonly #breaker: Breaker;
  readonly #onCall: (call: L2Call) => void;
  readonly #host: BatchHost;
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
      this.#client = openClient(target, {
        commandTimeout: this.#timeoutMs,
        connectTimeout,
        slotsRefreshInterval,
      });
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
    this.#host = {
      client: this.#client,
      breaker: this.#breaker,
      timeoutMs: this.#timeoutMs,
      onCall: (call) => this.#onCall(call),
      connected: (deadlineAt) => this.#connected(deadlineAt),
      nodeFailed: (nodeKey, timedOut) => this.#nodeFailed(nodeKey, timedOut),
      prepare: defineScripts,
    };
  }

  /** The ioredis client the calls go through (coherence.ts tracks its connections). */
  get client(): Cluster | Redis {
    return this.#client;
  }

  /** The last connection error ioredis reported (cleared once ready), for logs and errors. */
  get lastError(): string | undefined {
    return this.#lastError;
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
    const node = isCluster(client)
      ? client.nodes('all').find((n) => `${n.options.host}:${n.options.port}` === nodeKey)
      : client;
    if (node === undefined) return;
    this.#resets++;
    node.disconnect(true);
  }

  #batch(spec: BatchSpec): Promise<unknown[]> {
    return runBatch(this.#host, spec);
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
    const out = await this.#batch({
      op: 'get',
      keys,
      command: (target, i) => target.getBuffer(keys[i]),
      reply: bulkOf,
      onPart: onPart as BatchSpec['onPart'],
    });
    return out as L2Read[];
  }

  /**
   * Counter flushes (counter-scripts.ts), one pipeline per master, one deadline. Never
   * rejects: each flush's slot holds whether it was applied (false: a duplicate) or its
   * error.
   */
  async flushMany(
    flushes: readonly ShardFlush[],
    markTtlMs: number,
  ): Promise<Array<boolean | HotshieldError>> {
    const out = await this.#batch({
      op: 'flush',
      keys: flushes.map((f) => f.shardKey),
      command: (target, i) => sendFlush(target, flushes[i], markTtlMs),
      reply: appliedOf,
    });
    return out as Array<boolean | HotshieldError>;
  }

  /**
   * Counter shards, each read atomically with its marks (counter-scripts.ts), one
   * pipeline per master. Never rejects: each read's slot holds its values or its error.
   */
  async readShards(reads: readonly ShardRead[]): Promise<Array<ShardValue | HotshieldError>> {
    const out = await this.#batch({
      op: 'count',
      keys: reads.map((r) => r.shardKey),
      command: (target, i) => sendShardRead(target, reads[i]),
      reply: (raw, i) => shardValueOf(raw, reads[i].shardKey),
    });
    return out as Array<ShardValue | HotshieldError>;
  }

  /** SET with a TTL in ms (PX); `ttlMs` 0 means no expiry. */
  set(key: string, value: Uint8Array, ttlMs: number): Promise<void> {
    const v = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return this.#write(key, 'set', () =>
      ttlMs > 0 ? this.#client.set(key, v, 'PX', ttlMs) : this.#client.set(key, v),
    ).then(() => undefined);
  }

  /** DEL; true if the key existed. */
  async del(key: string): Promise<boolean> {
    return (await this.#write(key, 'del', () => this.#client.del(key))) > 0;
  }

  /**
   * Publish a report: PSETEX `key` `ttlMs`, then in `registry` (a sorted set) score
   * `member` `score` and drop members scored under `forgetBelow` (no MULTI: an ACL user
   * needs ZADD and ZREMRANGEBYSCORE, nothing more, and a half-done trim is harmless).
   */
  async publish(
    key: string,
    value: string,
    ttlMs: number,
    registry: { key: string; member: string; score: number; forgetBelow: number },
  ): Promise<void> {
    // PSETEX, not SET: the reports stay apart from the values' writes in Redis's
    // commandstats (and an ACL can grant them apart).
    await this.#write(key, 'report', () => this.#client.psetex(key, ttlMs, value));
    await this.#write(registry.key, 'report', () =>
      this.#client.zadd(registry.key, registry.score, registry.member),
    );
    await this.#write(registry.key, 'report', () =>
      this.#client.zremrangebyscore(registry.key, '-inf', `(${registry.forgetBelow}`),
    );
  }

  /** The members of sorted set `key` scored `min` or more. */
  members(key: string, min: number): Promise<string[]> {
    return this.#write(key, 'report', () => this.#client.zrangebyscore(key, min, '+inf'));
  }

  /** The master node (`host:port`) that owns `key`'s slot, as far as the client knows. */
  nodeOf(key: string): string {
    const client = this.#client;
    if (!isCluster(client)) return STANDALONE_NODE;
    return client.slots[calculateSlot(key)]?.[0] ?? 'unknown';
  }

  /**
   * Who owns each slot, as far as the client knows: the master (`host:port`) of each of the
   * 16384 slots, or, for a standalone Redis, its one address (hot-key attribution).
   */
  slotOwners(): string | (string | undefined)[] {
    const client = this.#client;
    if (!isCluster(client))
      return `${client.options.host ?? 'localhost'}:${client.options.port ?? 6379}`;
    const slots = client.slots;
    const owners = new Array<string | undefined>(SLOT_COUNT);
    for (let slot = 0; slot < SLOT_COUNT; slot++) owners[slot] = slots[slot]?.[0];
    return owners;
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

  async #write<T>(
    key: string,
    op: 'set' | 'del' | 'report',
    command: () => Promise<T>,
  ): Promise<T> {
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
