/**
 * Hot-set reports (src/refresher/hot-report.ts): merging processes' reports into the
 * fleet's, and reading another process's report from Redis, which may hold anything.
 */
import { describe, expect, it } from 'vitest';
import { mergeReports, parseReport, ratePerSecond } from '../../../src/refresher/hot-report.ts';
import type { HotKeysReport } from '../../../src/tier/index.ts';

const one = (reads: number, hitRatio: number | null, node = 'n1'): HotKeysReport => ({
  windowSeconds: 10,
  keys: [{ key: 'k', readsPerSecond: reads, writesPerSecond: 1, hitRatio, slot: 5, node }],
  counters: [{ name: 'c', incrementsPerSecond: reads }],
  nodes: [{ node, readsPerSecond: reads, missesPerSecond: 1 }],
});

describe('hot-set reports', () => {
  it('rates are over at least a second', () => {
    expect(ratePerSecond(200, 100)).toBe(200);
    expect(ratePerSecond(200, 2000)).toBe(100);
  });

  it('merging sums rates, weighs hit ratios by reads, and says how many processes', () => {
    const m = mergeReports([one(300, 1, 'n1'), one(100, 0.5, 'n2')], 10);
    expect(m.processes).toBe(2);
    expect(m.keys).toEqual([
      { key: 'k', readsPerSecond: 400, writesPerSecond: 2, hitRatio: 0.875, slot: 5, node: 'n1' },
    ]);
    expect(m.counters).toEqual([{ name: 'c', incrementsPerSecond: 400 }]);
    expect(m.nodes.map((n) => n.node)).toEqual(['n1', 'n2']);
    expect(mergeReports([], 10)).toMatchObject({ processes: 0, keys: [], counters: [], nodes: [] });
  });

  it('takes only the known fields of a published report, bounded, and drops bad rows', () => {
    const raw = JSON.stringify({
      ...one(10, 1),
      keys: [
        {
          key: 'ok',
          readsPerSecond: 1,
          writesPerSecond: 0,
          hitRatio: 1,
          slot: 2,
          node: 'n',
          truncated: true,
          extra: 'x',
        },
        { key: 'neg', readsPerSecond: -1, writesPerSecond: 0, hitRatio: 1, slot: 2, node: 'n' },
        { key: 'slot', readsPerSecond: 1, writesPerSecond: 0, hitRatio: 1, slot: 99999, node: 'n' },
        { key: 'ratio', readsPerSecond: 1, writesPerSecond: 0, hitRatio: 7, slot: 2, node: 'n' },
        ...Array.from({ length: 100 }, (_, i) => ({
          key: `many${i}`,
          readsPerSecond: 1,
          writesPerSecond: 0,
          hitRatio: null,
          slot: 1,
          node: null,
        })),
      ],
      __proto__: { polluted: true },
    });
    const r = parseReport(raw);
    expect(r?.keys[0]).toEqual({
      key: 'ok',
      readsPerSecond: 1,
      writesPerSecond: 0,
      hitRatio: 1,
      slot: 2,
      node: 'n',
      truncated: true,
    });
    expect(r?.keys.map((k) => k.key)).not.toContain('neg');
    expect(r?.keys.map((k) => k.key)).not.toContain('slot');
    expect(r?.keys.map((k) => k.key)).not.toContain('ratio');
    expect(r?.keys.length).toBeLessThanOrEqual(64);
    for (const bad of [
      '',
      'null',
      '[]',
      '{"keys":1,"counters":[],"nodes":[]}',
      '{"keys":[],"counters":[]}',
    ])
      expect(parseReport(bad), bad).toBeUndefined();
  });
});
