/**
 * Durations and sizes as users write them: `500ms`, `3s`, `2m` or a number of
 * milliseconds; `256mb`, `64kb`, `1gb` or a number of bytes. Shared by the embedded API
 * and the gateway's flags, so both accept exactly the same spellings; the format
 * functions write a value back in the shortest of them (for --help and messages).
 */

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i;
const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?$/i;

const MS_PER: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const BYTES_PER: Record<string, number> = {
  b: 1,
  kb: 1024,
  mb: 1024 ** 2,
  gb: 1024 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** Milliseconds from a number or a `500ms`/`3s` string; undefined if it is neither. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = DURATION.exec(value.trim());
  if (m === null) return undefined;
  return Math.round(Number(m[1]) * MS_PER[(m[2] ?? 'ms').toLowerCase()]);
}

/** Bytes from a number or a `256mb` string; undefined if it is neither. */
export function parseBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = SIZE.exec(value.trim());
  if (m === null) return undefined;
  return Math.floor(Number(m[1]) * BYTES_PER[(m[2] ?? 'b').toLowerCase()]);
}

/** `ms` in the largest unit that holds it whole: 250 → `250ms`, 3000 → `3s`, 86400000 → `24h`. */
export function formatDuration(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    if (ms >= MS_PER[unit] && ms % MS_PER[unit] === 0) return `${ms / MS_PER[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/** `bytes` in the largest unit that holds it whole: 67108864 → `64mb`, 1000 → `1000`. */
export function formatBytes(bytes: number): string {
  for (const unit of ['gb', 'mb', 'kb'] as const) {
    if (bytes >= BYTES_PER[unit] && bytes % BYTES_PER[unit] === 0)
      return `${bytes / BYTES_PER[unit]}${unit}`;
  }
  return String(bytes);
}
