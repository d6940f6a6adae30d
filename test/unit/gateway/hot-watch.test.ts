/**
 * When the gateway says a key (or a counter) is hot and when it has cooled down
 * (src/gateway/hot-watch.ts): at the threshold, once, and only back under half of it.
 */
import { describe, expect, it } from 'vitest';
import { hotChanges } from '../../../src/gateway/hot-watch.ts';
import type { HotKeysReport } from '../../../src/tier/index.ts';

const report = (reads: Record<string, number>, increments: Record<string, number> = {}) =>
  ({
    windowSeconds: 10,
    keys: Object.entries(reads).map(([key, readsPerSecond]) => ({
      key,
      readsPerSecond,
      writesPerSecond: 0,
      hitRatio: 1,
      slot: 1,
      node: '10.0.0.1:7000',
    })),
    counters: Object.entries(increments).map(([name, incrementsPerSecond]) => ({
      name,
      incrementsPerSecond,
    })),
    nodes: [],
  }) satisfies HotKeysReport;

describe('hot and cooled log lines', () => {
  it('a key is hot once at the threshold, cooled only under half of it', () => {
    const hot = new Set<string>();
    expect(hotChanges(report({ a: 999 }), 1000, hot)).toEqual({ hot: [], cooled: [] });
    const first = hotChanges(report({ a: 1000, b: 10 }), 1000, hot);
    expect(first.hot).toEqual([
      { kind: 'key', name: 'a', rate: 1000, slot: 1, node: '10.0.0.1:7000' },
    ]);
    // Still hot, or hovering between half and the threshold: nothing to say.
    expect(hotChanges(report({ a: 5000 }), 1000, hot)).toEqual({ hot: [], cooled: [] });
    expect(hotChanges(report({ a: 600 }), 1000, hot)).toEqual({ hot: [], cooled: [] });
    expect(hotChanges(report({ a: 499 }), 1000, hot).cooled).toEqual([
      { kind: 'key', name: 'a', rate: 499 },
    ]);
    // Gone from the hot set altogether counts as cooled, at 0.
    hotChanges(report({ c: 2000 }), 1000, hot);
    expect(hotChanges(report({}), 1000, hot).cooled).toEqual([{ kind: 'key', name: 'c', rate: 0 }]);
    expect(hot.size).toBe(0);
  });

  it('counters too, apart from keys of the same name; names with spaces survive', () => {
    const hot = new Set<string>();
    const r = hotChanges(report({ 'likes 7': 1500 }, { 'likes 7': 1500 }), 1000, hot);
    expect(r.hot.map((h) => `${h.kind}:${h.name}`)).toEqual(['key:likes 7', 'counter:likes 7']);
    const cooled = hotChanges(report({ 'likes 7': 1500 }), 1000, hot).cooled;
    expect(cooled).toEqual([{ kind: 'counter', name: 'likes 7', rate: 0 }]);
  });
});
