import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { counterRequestOf } from '../../../bench/fixtures/baseline-http.ts';
import { describeTotal, globEscape, sumCounts } from '../../../bench/lib/counter-total.ts';

describe('globEscape', () => {
  it('escapes the characters SCAN MATCH treats as pattern', () => {
    expect(globEscape('bench:counter:1')).toBe('bench:counter:1');
    expect(globEscape('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f');
  });
});

describe('sumCounts', () => {
  it('adds integers beyond 2^53 exactly and skips absent keys', () => {
    expect(sumCounts(['9007199254740993', null, '-3', '10'])).toBe(9007199254741000n);
    expect(sumCounts([])).toBe(0n);
  });

  it('refuses a value that is not an integer', () => {
    expect(() => sumCounts(['12', '1.5'])).toThrow(/not an integer/);
    expect(() => sumCounts([''])).toThrow(/not an integer/);
  });
});

describe('describeTotal', () => {
  it('says exact, or by how much and which way the total is off', () => {
    expect(describeTotal(1234n, 1234)).toBe('exact');
    expect(describeTotal(1240n, 1234)).toBe('+6 (more than acknowledged)');
    expect(describeTotal(1200n, 1234)).toBe('−34 (fewer than acknowledged)');
  });
});

describe('counterRequestOf (the baselines parse counter requests like the gateway)', () => {
  const req = (method: string, url: string) => ({ method, url }) as IncomingMessage;

  it('reads an increment and its by', () => {
    expect(counterRequestOf(req('POST', '/v1/counters/bench%3Ahot/incr'))).toEqual({
      name: 'bench:hot',
      by: 1,
    });
    expect(counterRequestOf(req('POST', '/v1/counters/hot/incr?by=-5&sync=1'))).toEqual({
      name: 'hot',
      by: -5,
    });
  });

  it('reads a read', () => {
    expect(counterRequestOf(req('GET', '/v1/counters/a%2Fb'))).toEqual({ name: 'a/b' });
  });

  it('answers a status for what it does not serve', () => {
    expect(counterRequestOf(req('GET', '/v1/counters/hot/incr'))).toBe(405);
    expect(counterRequestOf(req('POST', '/v1/counters/hot'))).toBe(405);
    expect(counterRequestOf(req('POST', '/v1/counters/hot/incr?by=0'))).toBe(400);
    expect(counterRequestOf(req('POST', '/v1/counters/%E0/incr'))).toBe(400);
    expect(counterRequestOf(req('POST', '/v1/counters//incr'))).toBe(400);
    expect(counterRequestOf(req('GET', '/v1/kv/hot'))).toBe(404);
  });
});
