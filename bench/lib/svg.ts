/**
 * Grouped bar charts as standalone SVG documents for the benchmark report, without
 * dependencies: the report embeds or links them and any browser or Markdown viewer shows
 * them. Text uses font-family sans-serif, so no font has to be installed or embedded.
 *
 * Bars are emitted category by category and, within a category, in series order; each is
 * one `<rect class="bar">` (a zero or missing value gets a zero-height rect, so the count
 * is always categories × series) with a `<title>` tooltip, and its value printed above it.
 */

export interface Series {
  readonly name: string;
  /**
   * One value per category, same order as `categories`. NaN marks a missing figure
   * (labelled "n/a"); negative values are labelled but drawn as zero-height bars.
   */
  readonly values: readonly number[];
}

export interface GroupedBarChartOptions {
  readonly title: string;
  readonly categories: readonly string[];
  readonly series: readonly Series[];
  readonly yLabel: string;
  /** Default 800. */
  readonly width?: number;
  /** Default 420. */
  readonly height?: number;
  /**
   * Log10 y axis, for figures spanning orders of magnitude (300,000 GETs/s next to 2).
   * Zeros get no visible bar and the label "0".
   */
  readonly logScale?: boolean;
}

/** Tableau 10: distinct on white, mostly colour-blind safe; cycles past ten series. */
export const PALETTE: readonly string[] = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

const FONT = 'sans-serif';
const TEXT_COLOR = '#222';
const AXIS_COLOR = '#444';
const GRID_COLOR = '#e3e3e3';

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** 3 significant digits with k/M/G suffixes: 300000 → "300k", 1234567 → "1.23M", 0.5 → "0.5". */
export function formatCompact(value: number): string {
  if (Number.isNaN(value)) return 'n/a';
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '-∞';
  if (value === 0) return '0';
  const sign = value < 0 ? '-' : '';
  let abs = Math.abs(value);
  for (const suffix of ['', 'k', 'M', 'G']) {
    const rounded = Number(abs.toPrecision(3));
    if (rounded < 1000 || suffix === 'G') return `${sign}${rounded}${suffix}`;
    abs /= 1000;
  }
  throw new Error('unreachable');
}

/** Rounds a coordinate to 0.1 px so that the document stays short. */
const px = (n: number): string => String(Math.round(n * 10) / 10);

/** A rough text width for layout: sans-serif averages ~0.6 em per character. */
const textWidth = (text: string, fontSize: number): number => text.length * fontSize * 0.6;

interface Scale {
  /** Value → 0 (bottom of the plot) … 1 (top); 0 for zero, negative or missing values. */
  readonly fraction: (value: number) => number;
  readonly ticks: readonly number[];
}

/** The smallest of 1, 2, 2.5, 5, 10 × 10^k that is ≥ raw. */
function niceStep(raw: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * magnitude >= raw * (1 - 1e-9)) return m * magnitude;
  }
  return 10 * magnitude;
}

function linearScale(values: readonly number[]): Scale {
  const max = Math.max(0, ...values.filter(Number.isFinite));
  const step = max > 0 ? niceStep(max / 5) : 1;
  const intervals = Math.max(1, Math.ceil(max / step - 1e-9));
  const top = intervals * step;
  // i * step rather than a running sum, then rounded, so that 0.1 × 3 prints "0.3".
  const ticks = Array.from({ length: intervals + 1 }, (_, i) => Number((i * step).toPrecision(12)));
  return {
    fraction: (v) => (Number.isFinite(v) && v > 0 ? Math.min(v, top) / top : 0),
    ticks,
  };
}

function logScale(values: readonly number[]): Scale {
  const positive = values.filter((v) => Number.isFinite(v) && v > 0);
  // The bottom is a power of ten strictly below the smallest value, so that every positive
  // value gets a visible bar (1 → bottom 0.1, 2 → bottom 1).
  const lo = positive.length > 0 ? Math.ceil(Math.log10(Math.min(...positive))) - 1 : 0;
  const hi = Math.max(
    lo + 1,
    positive.length > 0 ? Math.ceil(Math.log10(Math.max(...positive))) : 1,
  );
  const every = Math.ceil((hi - lo) / 6); // at most ~6 labelled decades
  const top = lo + Math.ceil((hi - lo) / every) * every;
  const ticks: number[] = [];
  for (let e = lo; e <= top; e += every) ticks.push(Number((10 ** e).toPrecision(12)));
  return {
    fraction: (v) =>
      Number.isFinite(v) && v > 0 ? Math.max(0, Math.min(1, (Math.log10(v) - lo) / (top - lo))) : 0,
    ticks,
  };
}

interface LegendItem {
  readonly x: number;
  readonly row: number;
  readonly name: string;
  readonly color: string;
}

/** Lays the legend out left to right, wrapping into rows that fit `maxWidth`. */
function layoutLegend(names: readonly string[], maxWidth: number, fontSize: number) {
  const items: LegendItem[] = [];
  let x = 0;
  let row = 0;
  names.forEach((name, i) => {
    const width = 14 + textWidth(name, fontSize) + 18;
    if (x > 0 && x + width > maxWidth) {
      x = 0;
      row++;
    }
    items.push({ x, row, name, color: PALETTE[i % PALETTE.length] });
    x += width;
  });
  return { items, rows: names.length > 0 ? row + 1 : 0 };
}

export function groupedBarChart(options: GroupedBarChartOptions): string {
  const { title, categories, series, yLabel } = options;
  const width = options.width ?? 800;
  const height = options.height ?? 420;
  for (const s of series) {
    if (s.values.length !== categories.length) {
      throw new RangeError(
        `series "${s.name}" has ${s.values.length} values for ${categories.length} categories`,
      );
    }
  }

  const all = series.flatMap((s) => s.values);
  const scale = options.logScale ? logScale(all) : linearScale(all);

  // Layout, top to bottom: title, legend rows, headroom for value labels, plot, category labels.
  const legendFont = 12;
  const left = 78;
  const right = 20;
  const legend = layoutLegend(
    series.map((s) => s.name),
    width - left - right,
    legendFont,
  );
  const legendTop = 44;
  const plotTop = legendTop + legend.rows * 20 + 18;
  const plotBottom = height - 42;
  const plotLeft = left;
  const plotRight = width - right;
  const plotHeight = Math.max(1, plotBottom - plotTop);
  const plotWidth = Math.max(1, plotRight - plotLeft);
  const y = (value: number) => plotBottom - scale.fraction(value) * plotHeight;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" fill="${TEXT_COLOR}">`,
  );
  out.push(`<title>${escapeXml(title)}</title>`);
  out.push(`<rect class="background" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${px(width / 2)}" y="26" font-size="16" font-weight="bold" text-anchor="middle">${escapeXml(title)}</text>`,
  );

  // Legend.
  for (const item of legend.items) {
    const top = legendTop + item.row * 20;
    out.push(
      `<rect class="legend" x="${px(plotLeft + item.x)}" y="${top}" width="12" height="12" fill="${item.color}"/>`,
      `<text x="${px(plotLeft + item.x + 16)}" y="${top + 10}" font-size="${legendFont}">${escapeXml(item.name)}</text>`,
    );
  }

  // Y axis: grid lines, tick labels, axis title.
  for (const tick of scale.ticks) {
    const ty = px(y(tick));
    out.push(
      `<line x1="${plotLeft}" y1="${ty}" x2="${plotRight}" y2="${ty}" stroke="${GRID_COLOR}"/>`,
      `<text x="${plotLeft - 6}" y="${ty}" font-size="11" text-anchor="end" dominant-baseline="middle">${escapeXml(formatCompact(tick))}</text>`,
    );
  }
  const midY = px(plotTop + plotHeight / 2);
  out.push(
    `<text x="16" y="${midY}" font-size="12" text-anchor="middle" dominant-baseline="middle" transform="rotate(-90 16 ${midY})">${escapeXml(yLabel + (options.logScale ? ' (log scale)' : ''))}</text>`,
  );

  // Bars, category by category.
  const groupWidth = plotWidth / Math.max(1, categories.length);
  const barWidth = (groupWidth * 0.8) / Math.max(1, series.length);
  const valueFont = Math.max(7, Math.min(11, barWidth / 2.4));
  categories.forEach((category, c) => {
    const groupLeft = plotLeft + c * groupWidth + groupWidth * 0.1;
    series.forEach((s, i) => {
      const value = s.values[c];
      const x = groupLeft + i * barWidth;
      const top = y(value);
      const label = escapeXml(formatCompact(value));
      out.push(
        `<rect class="bar" x="${px(x + 1)}" y="${px(top)}" width="${px(Math.max(1, barWidth - 2))}" height="${px(plotBottom - top)}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(`${s.name} – ${category}`)}: ${label}</title></rect>`,
        `<text x="${px(x + barWidth / 2)}" y="${px(top - 4)}" font-size="${px(valueFont)}" text-anchor="middle">${label}</text>`,
      );
    });
    // Shrink a long category label to fit its group rather than overlap the next one.
    const categoryFont = Math.max(8, Math.min(12, (groupWidth * 0.95) / (category.length * 0.6)));
    out.push(
      `<text x="${px(plotLeft + (c + 0.5) * groupWidth)}" y="${plotBottom + 20}" font-size="${px(categoryFont)}" text-anchor="middle">${escapeXml(category)}</text>`,
    );
  });

  // Axes last, over the bars' edges.
  out.push(
    `<line x1="${plotLeft}" y1="${plotTop}" x2="${plotLeft}" y2="${plotBottom}" stroke="${AXIS_COLOR}"/>`,
    `<line x1="${plotLeft}" y1="${plotBottom}" x2="${plotRight}" y2="${plotBottom}" stroke="${AXIS_COLOR}"/>`,
  );
  out.push('</svg>');
  return out.join('\n');
}
