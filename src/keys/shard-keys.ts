/**
 * Shard keys of a write-hot counter: `name#i`, N of them, spread over the cluster's
 * masters so that flushes and reads of one counter do not all land on one node.
 *
 * The suffixes are chosen by slot, not by the current owner of each slot: shard k is
 * `name#i` for the smallest i whose CRC16 slot falls in the k-th of N equal slot ranges.
 * Masters own contiguous ranges, so N shards spread over M masters in proportion to the
 * slots each owns (evenly on a balanced cluster, N a multiple of M); and the names never
 * depend on the topology, so every process derives the same ones, today and after a
 * reshard or a failover. Choosing by owner would balance an unbalanced cluster better,
 * but a reshard would then rename shards and orphan the counts already in them.
 *
 * Names containing `{` or `}` are refused: a hash tag would pin every shard to one slot.
 */

import calculateSlot from 'cluster-key-slot';
import { HotshieldError, optionError } from '../errors.ts';
import { MAX_COUNTER_NAME_BYTES } from '../l1/index.ts';
import { INTERNAL_MARK } from './reserved-keys.ts';

const SLOTS = 16384;
/** Enough candidates to fill any range of 16384 / 256 slots many times over. */
const MAX_SUFFIX = 1_000_000;
export const MAX_SHARDS = 256;

/** The name, if it can be a counter; else HS_ERR_COUNTER_NAME saying why. */
export function checkCounterName(name: unknown): string {
  const bad = (why: string) => new HotshieldError('HS_ERR_COUNTER_NAME', `counter name ${why}`);
  if (typeof name !== 'string' || name === '') throw bad('must be a non-empty string');
  if (!name.isWellFormed()) throw bad('is not well-formed UTF-16 (lone surrogate)');
  const bytes = Buffer.byteLength(name);
  // The shard suffix (#i) must fit too.
  if (bytes > MAX_COUNTER_NAME_BYTES - 8)
    throw bad(`is ${bytes} UTF-8 bytes; the limit is ${MAX_COUNTER_NAME_BYTES - 8}`);
  if (name.includes('{') || name.includes('}'))
    throw bad('must not contain { or } (a hash tag would put every shard in one slot)');
  if (name.includes(INTERNAL_MARK)) throw bad(`must not contain ${INTERNAL_MARK}`);
  return name;
}

function checkShards(shards: number): void {
  if (!Number.isSafeInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
    throw optionError(`counterShards must be an integer from 1 to ${MAX_SHARDS} (got ${shards})`);
  }
}

/** Which of `shards` equal slot ranges `key`'s slot falls in. */
function rangeOf(key: string, shards: number): number {
  return Math.floor((calculateSlot(key) * shards) / SLOTS);
}

/** The `shards` shard keys of counter `name` (see the header), in shard order. */
export function shardKeysFor(name: string, shards: number): string[] {
  checkCounterName(name);
  checkShards(shards);
  const out: Array<string | undefined> = new Array(shards).fill(undefined);
  let missing = shards;
  for (let i = 1; i <= MAX_SUFFIX && missing > 0; i++) {
    const key = `${name}#${i}`;
    const range = rangeOf(key, shards);
    if (out[range] === undefined) {
      out[range] = key;
      missing--;
    }
  }
  if (missing > 0)
    throw new HotshieldError('HS_ERR_COUNTER_NAME', `no shard suffixes found for counter ${name}`);
  return out as string[];
}

/**
 * The key holding `writer`'s last applied flush to a shard: in the shard's own slot (the
 * hash tag is the whole shard key), marked internal.
 */
export function flushMarkKeyOf(shardKey: string, writer: string): string {
  return `{${shardKey}}${INTERNAL_MARK}:flushed:${writer}`;
}

const SHARD_KEY = /^(.+)#(\d{1,7})$/s;

/**
 * Is `key` one of the `shards` shard keys of some counter (`name#i` for counter `name`)?
 * A plain write to it would corrupt that counter (a non-integer breaks every flush and
 * read; a DEL drops counts), so the tier refuses to write such keys. Checked on every
 * write of a key ending in `#digits` (`user#123`), so it stops at the first suffix in
 * the key's slot range, the one shardKeysFor picks there (about `shards` CRC16s),
 * instead of deriving every shard.
 */
export function isCounterShardKey(key: string, shards: number): boolean {
  const m = SHARD_KEY.exec(key);
  if (m === null) return false;
  try {
    checkCounterName(m[1]);
    checkShards(shards);
  } catch {
    // Not a possible counter name: no counter has this shard.
    return false;
  }
  const range = rangeOf(key, shards);
  for (let i = 1; i <= MAX_SUFFIX; i++) {
    const candidate = `${m[1]}#${i}`;
    if (rangeOf(candidate, shards) === range) return candidate === key;
  }
  return false;
}
