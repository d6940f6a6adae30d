/** Output: progress lines, markdown tables for people, JSON for the record. */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** 1234567 → "1.23 M", 12345 → "12.3 k". */
export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k`;
  return perSecond.toFixed(0);
}

export function formatNs(ns: number): string {
  return ns >= 100 ? ns.toFixed(0) : ns.toFixed(1);
}

/** "median [min–max]" of a list of ns/op figures. */
export function formatNsRange(median: number, all: readonly number[]): string {
  return `${formatNs(median)} [${formatNs(Math.min(...all))}–${formatNs(Math.max(...all))}]`;
}

export function formatRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : '—';
}

export function formatPercent(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(n % 1024 ? 1 : 0)} KiB`;
  return `${n} B`;
}

export function writeJson(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
}

/** Progress goes to stderr so that stdout carries only the report. */
export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}
