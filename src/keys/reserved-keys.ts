/**
 * Keys hotshield keeps for itself (counter flush marks in Redis, counter totals in L1) carry
 * INTERNAL_MARK, so a front end can refuse to let a client address them.
 */

export const INTERNAL_MARK = ':__hotshield';

export function isInternalKey(key: string): boolean {
  return key.includes(INTERNAL_MARK);
}

const TOTAL_SUFFIX = `${INTERNAL_MARK}:total`;

/**
 * The L1 key caching a counter's total (as read from its shards, see counters/flusher.ts).
 * Only ever in L1, never written to Redis.
 */
export function counterTotalKey(name: string): string {
  return name + TOTAL_SUFFIX;
}

/** The counter whose total `key` caches, or undefined for any other key. */
export function counterOfTotalKey(key: string): string | undefined {
  return key.endsWith(TOTAL_SUFFIX) ? key.slice(0, -TOTAL_SUFFIX.length) : undefined;
}
