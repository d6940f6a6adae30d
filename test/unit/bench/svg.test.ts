import { describe, expect, it } from 'vitest';
import { escapeXml, formatCompact, groupedBarChart } from '../../../bench/lib/svg.ts';

/** Checks that tags nest and close properly and that every `&` starts an entity. */
function expectWellFormed(svg: string): void {
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg.endsWith('</svg>')).toBe(true);
  const stack: string[] = [];
  for (const [, slash, name, selfClosing] of svg.matchAll(/<(\/?)([a-zA-Z][\w-]*)[^<>]*?(\/?)>/g)) {
    if (slash) expect(stack.pop()).toBe(name);
    else if (!selfClosing) stack.push(name);
  }
  expect(stack).toEqual([]);
  // Nothing but tags contains < or >; every & is an entity.
  expect(svg.replace(/<[^<>]*>/g, '')).not.toMatch(/[<>]/);
  expect(svg).not.toMatch(/&(?!(amp|lt|gt|quot|#39);)/);
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
}

interface Bar {
  y: number;
  height: number;
}

function bars(svg: string): Bar[] {
  return [...svg.matchAll(/<rect class="bar" [^>]*?y="([^"]+)"[^>]*? height="([^"]+)"/g)].map(
    ([, y, height]) => ({ y: Number(y), height: Number(height) }),
  );
}

const categories = ['get 64 B', 'get 1 KiB', 'R&D <hot>'];
const series = [
  { name: 'hotshield & L1', values: [300_000, 120_000, 2] },
  { name: 'Map <fresh>', values: [150_000, 0, 40_000] },
  { name: "lru-cache 'ttl'", values: [90_000, 60_000, 1_000] },
];

describe('groupedBarChart', () => {
  it('is a well-formed standalone SVG with escaped title, categories and series', () => {
    const svg = groupedBarChart({
      title: 'GETs/s: L1 & <friends>',
      categories,
      series,
      yLabel: 'ops/s',
    });
    expectWellFormed(svg);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg).toContain('GETs/s: L1 &amp; &lt;friends&gt;');
    for (const c of categories) expect(svg).toContain(escapeXml(c));
    for (const s of series) expect(svg).toContain(escapeXml(s.name));
    expect(svg).toContain('R&amp;D &lt;hot&gt;');
    expect(svg).toContain('hotshield &amp; L1');
    expect(svg).toContain('lru-cache &#39;ttl&#39;');
    expect(svg).toContain('ops/s');
    expect(svg).toContain('font-family="sans-serif"');
  });

  it('draws one rect per bar, heights monotone in the values, on a common baseline', () => {
    const svg = groupedBarChart({ title: 't', categories, series, yLabel: 'ops/s' });
    const drawn = bars(svg);
    expect(drawn).toHaveLength(categories.length * series.length);
    // Bars go category by category, series in order within a category.
    const values = categories.flatMap((_, c) => series.map((s) => s.values[c]));
    const baseline = drawn[0].y + drawn[0].height;
    for (const bar of drawn) expect(bar.y + bar.height).toBeCloseTo(baseline, 0);
    const order = values.map((v, i) => ({ v, h: drawn[i].height })).sort((a, b) => a.v - b.v);
    for (let i = 1; i < order.length; i++) {
      if (order[i].v > order[i - 1].v) expect(order[i].h).toBeGreaterThanOrEqual(order[i - 1].h);
    }
    // The zero is flat, the largest value is the tallest, and linear means proportional.
    expect(drawn[values.indexOf(0)].height).toBe(0);
    const tallest = drawn[values.indexOf(300_000)].height;
    expect(Math.max(...drawn.map((b) => b.height))).toBe(tallest);
    expect(drawn[values.indexOf(150_000)].height / tallest).toBeCloseTo(0.5, 2);
  });

  it('labels the y axis with ~5 nicely rounded ticks and the bars with compact values', () => {
    const svg = groupedBarChart({ title: 't', categories, series, yLabel: 'ops/s' });
    for (const tick of ['0', '100k', '200k', '300k']) expect(svg).toContain(`>${tick}</text>`);
    for (const value of ['150k', '120k', '90k', '60k', '40k', '1k', '2']) {
      expect(svg).toContain(`>${value}</text>`);
    }
    const ticks = groupedBarChart({
      title: 't',
      categories: ['a'],
      series: [{ name: 's', values: [0.93] }],
      yLabel: 'ratio',
    });
    for (const tick of ['0', '0.2', '0.4', '0.6', '0.8', '1'])
      expect(ticks).toContain(`>${tick}</text>`);
  });

  it('log scale: no NaN/Infinity for zeros, zeros flat and labelled "0", bars ordered', () => {
    const svg = groupedBarChart({
      title: 'Redis GETs/s',
      categories: ['hot key', 'cold'],
      series: [
        { name: 'direct', values: [300_000, 0] },
        { name: 'slow-l2', values: [2, 0] },
      ],
      yLabel: 'GETs/s',
      logScale: true,
    });
    expectWellFormed(svg);
    const drawn = bars(svg);
    expect(drawn).toHaveLength(4);
    const [big, small, zeroA, zeroB] = drawn;
    expect(big.height).toBeGreaterThan(small.height);
    expect(small.height).toBeGreaterThan(0); // 2 is well above the axis bottom (1)
    expect(zeroA.height).toBe(0);
    expect(zeroB.height).toBe(0);
    expect(svg).toContain('>0</text>');
    for (const tick of ['1', '10', '100', '1k', '10k', '100k', '1M']) {
      expect(svg).toContain(`>${tick}</text>`);
    }
    expect(svg).toContain('(log scale)');
  });

  it('survives degenerate input: all zeros, missing values, no series', () => {
    for (const logScale of [false, true]) {
      const zeros = groupedBarChart({
        title: 'z',
        categories: ['a', 'b'],
        series: [{ name: 's', values: [0, Number.NaN] }],
        yLabel: 'y',
        logScale,
      });
      expectWellFormed(zeros);
      expect(zeros).toContain('>n/a</text>');
      expect(bars(zeros).map((b) => b.height)).toEqual([0, 0]);
      expectWellFormed(
        groupedBarChart({ title: 'e', categories: [], series: [], yLabel: 'y', logScale }),
      );
    }
    expect(() =>
      groupedBarChart({
        title: 't',
        categories: ['a'],
        series: [{ name: 's', values: [] }],
        yLabel: 'y',
      }),
    ).toThrow(RangeError);
  });
});

describe('formatCompact', () => {
  it('keeps 3 significant digits with k/M/G suffixes', () => {
    expect(formatCompact(0)).toBe('0');
    expect(formatCompact(2)).toBe('2');
    expect(formatCompact(0.125)).toBe('0.125');
    expect(formatCompact(999)).toBe('999');
    expect(formatCompact(1234)).toBe('1.23k');
    expect(formatCompact(12_345)).toBe('12.3k');
    expect(formatCompact(300_000)).toBe('300k');
    expect(formatCompact(999_999)).toBe('1M');
    expect(formatCompact(1_234_567)).toBe('1.23M');
    expect(formatCompact(2.5e9)).toBe('2.5G');
    expect(formatCompact(-1500)).toBe('-1.5k');
    expect(formatCompact(Number.NaN)).toBe('n/a');
  });
});
