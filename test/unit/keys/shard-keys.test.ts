import calculateSlot from 'cluster-key-slot';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkCounterName,
  flushMarkKeyOf,
  isCounterShardKey,
  shardKeysFor,
} from '../../../src/keys/shard-keys.ts';

describe('counter shard keys', () => {
  it('are `name#i`, one per equal slot range, in range order, and the same every time', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9:._-]{1,40}$/),
        fc.integer({ min: 1, max: 64 }),
        (name, n) => {
          const keys = shardKeysFor(name, n);
          expect(keys).toHaveLength(n);
          expect(new Set(keys).size).toBe(n);
          keys.forEach((key, k) => {
            expect(key.startsWith(`${name}#`)).toBe(true);
            expect(Math.floor((calculateSlot(key) * n) / 16384)).toBe(k);
          });
          expect(shardKeysFor(name, n)).toEqual(keys);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('spread evenly over masters that own equal slot ranges (the launcher’s 3-master layout)', () => {
    const owner = (slot: number) => (slot <= 5460 ? 'a' : slot <= 10922 ? 'b' : 'c');
    for (const n of [3, 6, 12]) {
      const per: Record<string, number> = {};
      for (const key of shardKeysFor('likes:video:7', n)) {
        const m = owner(calculateSlot(key));
        per[m] = (per[m] ?? 0) + 1;
      }
      expect(Object.values(per)).toEqual([n / 3, n / 3, n / 3]);
    }
  });

  it('keep each shard’s flush mark in the shard’s own slot, marked internal', () => {
    for (const key of shardKeysFor('likes', 6)) {
      const mark = flushMarkKeyOf(key, '0123456789abcdef.7');
      expect(calculateSlot(mark)).toBe(calculateSlot(key));
      expect(mark).toContain(':__hotshield');
    }
  });

  it('refuse names that would pin shards to one slot, or are not names', () => {
    for (const bad of [
      '',
      'a{b}',
      'x}',
      '{tag',
      '\ud800',
      'k'.repeat(121),
      'a:__hotshield:b',
      42,
    ]) {
      expect(() => checkCounterName(bad)).toThrow(
        expect.objectContaining({ code: 'HS_ERR_COUNTER_NAME' }),
      );
    }
    expect(() => shardKeysFor('ok', 0)).toThrow(expect.objectContaining({ code: 'HS_ERR_OPTION' }));
    expect(() => shardKeysFor('ok', 257)).toThrow(
      expect.objectContaining({ code: 'HS_ERR_OPTION' }),
    );
    expect(checkCounterName('likes:video:7')).toBe('likes:video:7');
  });

  it('isCounterShardKey is true for exactly the keys shardKeysFor derives', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9:._#-]{1,40}$/),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 400 }),
        (name, n, i) => {
          const shards = shardKeysFor(name, n);
          for (const key of shards) expect(isCounterShardKey(key, n)).toBe(true);
          const other = `${name}#${i}`;
          expect(isCounterShardKey(other, n)).toBe(shards.includes(other));
        },
      ),
      { numRuns: 200 },
    );
    // Not shard keys of anything: no suffix, not canonical, a hash tag, no name, too long.
    for (const key of ['plain', 'x#', 'x#07', 'a{b}#1', '#1', 'x#12345678'])
      expect(isCounterShardKey(key, 16)).toBe(false);
  });
});
