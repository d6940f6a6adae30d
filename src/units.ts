/**
 * Durations and sizes as users write them: `500ms`, `3s`, `2m` or a number of
 * milliseconds; `256mb`, `64kb`, `1gb` or a number of bytes. Shared by the embedded API
 * and the gateway's flags, so both accept exactly the same spellings; the format
 * functions write a value back in the shortest of them (for --help and messages).
 */

/** One kind of quantity: its spelling, its units, how a parsed value is rounded. */
interface Units {
  readonly spelling: RegExp;
  readonly per: Readonly<Record<string, number>>;
  /** The unit of a bare number. */
  readonly bare: string;
  readonly round: (n: number) => number;
  /** The units a value is written back in, largest first. */
  readonly largestFirst: readonly string[];
}

const DURATIONS: Units = {
  spelling: /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i,
  per: { ms: 1, s: 1000, m: 60_000, h: 3_600_000 },
  bare: 'ms',
  round: Math.round,
  largestFirst: ['h', 'm', 's'],
};

const SIZES: Units = {
  spelling: /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?$/i,
  per: { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 },
  bare: 'b',
  round: Math.floor,
  largestFirst: ['gb', 'mb', 'kb'],
};

function parse(value: unknown, units: Units): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = units.spelling.exec(value.trim());
  if (m === null) return undefined;
  return units.round(Number(m[1]) * units.per[(m[2] ?? units.bare).toLowerCase()]);
}

/** `n` in the largest unit that holds it whole, or undefined if none does. */
function inLargestUnit(n: number, units: Units): string | undefined {
  const unit = units.largestFirst.find((u) => n >= units.per[u] && n % units.per[u] === 0);
  return unit === undefined ? undefined : `${n / units.per[unit]}${unit}`;
}

/** Milliseconds from a number or a `500ms`/`3s` string; undefined if it is neither. */
export function parseDuration(value: unknown): number | undefined {
  return parse(value, DURATIONS);
}

/** Bytes from a number or a `256mb` string; undefined if it is neither. */
export function parseBytes(value: unknown): number | undefined {
  return parse(value, SIZES);
}

/** `ms` in the largest unit that holds it whole: 250 → `250ms`, 3000 → `3s`, 86400000 → `24h`. */
export function formatDuration(ms: number): string {
  return inLargestUnit(ms, DURATIONS) ?? `${ms}ms`;
}

/** `bytes` in the largest unit that holds it whole: 67108864 → `64mb`, 1000 → `1000`. */
export function formatBytes(bytes: number): string {
  return inLargestUnit(bytes, SIZES) ?? String(bytes);
}
