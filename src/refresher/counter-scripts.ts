/**
 * The two Lua scripts behind write-hot counters, and the parsers of their replies: the
 * idempotent flush of one shard, and the atomic read of a shard with the writer marks
 * that say which flushes are in it (counter-flusher.ts).
 */

import type { Cluster, Redis } from 'ioredis';
import { HotshieldError } from '../errors.ts';
import type { Commands } from './l2-batch.ts';
import { wrongReply } from './l2-errors.ts';

/** One counter flush: `delta` onto `shardKey`, at most once for (`markKey`, `seq`). */
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

/**
 * The idempotent counter flush (reliability research, section 3, "high-water mark"):
 * KEYS[1] shard, KEYS[2] the flushing writer's mark (its last applied seq), same slot.
 * ARGV: seq, delta, mark TTL in ms. Returns 1 if applied, 0 if this seq or a later one
 * already was (a retry after a lost reply, or ioredis re-sending after a dropped
 * connection). A duplicate renews the mark too: a flush whose replies keep getting lost
 * is re-sent for as long as that lasts, and its mark must outlive every re-send. One
 * mark key per writer, each with its own expiry, keeps Redis's memory bounded by the
 * writers of the last TTL.
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
export function defineScripts(client: Cluster | Redis): void {
  if ((client as unknown as Partial<Commands>).hotshieldFlushShard !== undefined) return;
  client.defineCommand('hotshieldFlushShard', { numberOfKeys: 2, lua: FLUSH_SHARD_LUA });
  // No numberOfKeys: the caller passes the key count first (a shard and any marks).
  client.defineCommand('hotshieldReadShard', { lua: READ_SHARD_LUA });
}

/** Send `flush` through `target`, a client, node or pipeline that knows the scripts. */
export function sendFlush(target: Commands, flush: ShardFlush, markTtlMs: number): unknown {
  const { shardKey, markKey, seq, delta } = flush;
  return target.hotshieldFlushShard(
    shardKey,
    markKey,
    seq.toString(),
    delta.toString(),
    String(markTtlMs),
  );
}

/** Send `read` through `target`. */
export function sendShardRead(target: Commands, read: ShardRead): unknown {
  return target.hotshieldReadShard(1 + read.markKeys.length, read.shardKey, ...read.markKeys);
}

function integerOf(raw: unknown, what: string): bigint {
  const text = Buffer.isBuffer(raw) ? raw.toString() : String(raw);
  if (text === '') return 0n;
  if (!/^-?\d{1,20}$/.test(text))
    throw new HotshieldError('HS_ERR_L2_UNAVAILABLE', `Redis: ${what} holds a non-integer`);
  return BigInt(text);
}

/** FLUSH_SHARD_LUA's reply: 1 if applied, 0 if a duplicate. */
export function appliedOf(raw: unknown): boolean {
  if (raw === 0 || raw === 1) return raw === 1;
  throw wrongReply('a counter flush', raw);
}

/** READ_SHARD_LUA's reply: the shard's value, then its marks. */
export function shardValueOf(raw: unknown, shardKey: string): ShardValue {
  if (!Array.isArray(raw) || raw.length === 0) throw wrongReply('a shard read', raw);
  const [value, ...marks] = raw.map((x) => integerOf(x, shardKey));
  return { value, marks };
}
