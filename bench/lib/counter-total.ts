/**
 * A counter's total as the Redis Cluster holds it, read directly (not through the
 * contender under test): the key `name` (direct INCR) plus every shard key `name#…`
 * (hotshield), found with SCAN on every master. Scanning rather than deriving the shard
 * names means a shard written under a name nobody expected is counted too. The writers'
 * flush marks (`{name#i}…`) start with `{` and do not match.
 */

import type { Cluster } from 'ioredis';

/** `text` as a SCAN MATCH pattern matching only itself. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** The sum of counter values as Redis returns them (null: absent); throws on a non-integer. */
export function sumCounts(values: readonly (string | null)[]): bigint {
  let sum = 0n;
  for (const v of values) {
    if (v === null) continue;
    if (!/^-?\d+$/.test(v))
      throw new Error(`a counter key holds ${JSON.stringify(v)}, not an integer`);
    sum += BigInt(v);
  }
  return sum;
}

/** "exact", or how far the total is from the increments acknowledged, with the sign. */
export function describeTotal(total: bigint, acknowledged: number): string {
  const d = total - BigInt(acknowledged);
  if (d === 0n) return 'exact';
  return d > 0n ? `+${d} (more than acknowledged)` : `−${-d} (fewer than acknowledged)`;
}

export async function counterTotal(redis: Cluster, name: string): Promise<bigint> {
  const pattern = `${globEscape(name)}#*`;
  const perMaster = await Promise.all(
    redis.nodes('master').map(async (node) => {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        keys.push(...found);
      } while (cursor !== '0');
      // Each key lives on this master: read it here (keys of different slots, so no MGET).
      return Promise.all(keys.map((k) => node.get(k)));
    }),
  );
  return sumCounts([await redis.get(name), ...perMaster.flat()]);
}
