import { describe, expect, it } from 'vitest';
import {
  counterOfTotalKey,
  counterTotalKey,
  isInternalKey,
} from '../../../src/keys/reserved-keys.ts';
import { homeShard } from '../../../src/refresher/counter-flusher.ts';

describe('counter flusher helpers', () => {
  it('home shards of many writers spread evenly over the shards', () => {
    const per = new Array(16).fill(0);
    for (let w = 0; w < 16_000; w++) {
      const writer = crypto.getRandomValues(new BigUint64Array(1))[0].toString(16);
      per[homeShard(`${writer}.${w % 7}`, 16)]++;
    }
    // 1,000 expected per shard; a fair spread stays well inside ±20 %.
    for (const n of per) expect(n).toBeGreaterThan(800);
    for (const n of per) expect(n).toBeLessThan(1200);
    expect(homeShard('abc.1', 16)).toBe(homeShard('abc.1', 16));
    expect(homeShard('abc.1', 1)).toBe(0);
  });

  it('a counter total key is internal and maps back to its counter only', () => {
    const key = counterTotalKey('likes:video:7');
    expect(isInternalKey(key)).toBe(true);
    expect(counterOfTotalKey(key)).toBe('likes:video:7');
    expect(counterOfTotalKey('likes:video:7')).toBeUndefined();
    expect(counterOfTotalKey('x:__hotshield:flushed:ab.1')).toBeUndefined();
  });
});
