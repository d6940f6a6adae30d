/**
 * The docs are part of the product: docs/ARCHITECTURE.md's module tables name every
 * module of the tree and nothing else, and the README's flag and option tables, --help
 * and the options' doc comments give the defaults the code uses (src/defaults.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultOf, envName, helpText, SETTINGS, type Setting } from '../../src/cli/config.ts';
import { type DefaultedOption, shownDefault, TIER_DEFAULTS } from '../../src/defaults.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

/** Rows of the markdown tables in `text` whose first cell is one backticked word. */
function rows(text: string): Array<{ key: string; cells: string[] }> {
  const out: Array<{ key: string; cells: string[] }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) continue;
    const cells = line
      .split(/(?<!\\)\|/)
      .map((c) => c.trim())
      .slice(1, -1);
    const key = /^`([^`]+)`$/.exec(cells[0] ?? '')?.[1];
    if (key !== undefined) out.push({ key, cells });
  }
  return out;
}

/** A section of a markdown text, up to the next heading of its level or above. */
function section(text: string, heading: string): string {
  const at = text.indexOf(`\n${heading}\n`);
  expect(at, heading).toBeGreaterThan(0);
  const level = heading.indexOf(' ');
  const body = at + heading.length + 2;
  const next = text.slice(body).search(new RegExp(`\\n#{1,${level}} `));
  return text.slice(at, next === -1 ? undefined : body + next);
}

const unquote = (cell: string) => cell.replace(/`/g, '');

function modules(dir: string): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|js)$/.test(e.name))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

describe('docs/ARCHITECTURE.md', () => {
  it('its module tables name every module of src/, workers/ and bin/, once, and nothing else', () => {
    const tables = rows(section(read('docs/ARCHITECTURE.md'), '## Modules'))
      .map((r) => r.key)
      .filter((key) => /^(src|workers|bin)\//.test(key));
    const tree = [...modules('src'), ...modules('workers'), ...modules('bin')].sort();
    expect([...tables].sort()).toEqual(tree);
    expect(new Set(tables).size).toBe(tables.length);
  });
});

describe("the README's defaults", () => {
  const readme = read('README.md');

  it('the flag table has every flag, its variable and the default --help gives', () => {
    const table = new Map(rows(section(readme, '### Flags')).map((r) => [r.key, r.cells] as const));
    const help = helpText();
    for (const [name, setting] of Object.entries(SETTINGS) as Array<[string, Setting]>) {
      const cells = table.get(`--${name}`);
      expect(cells, `README lists --${name}`).toBeDefined();
      expect(cells?.[1]).toBe(`\`${envName(name as keyof typeof SETTINGS)}\``);
      const shown = defaultOf(setting);
      expect(unquote(cells?.[2] ?? ''), `default of --${name}`).toBe(shown ?? '—');
      if (shown !== undefined) expect(help).toContain(`(default ${shown})`);
    }
    expect([...table.keys()].filter((flag) => !Object.hasOwn(SETTINGS, flag.slice(2)))).toEqual([]);
  });

  it("the embedded API's option table gives every option's default", () => {
    const table = new Map(
      rows(section(readme, '### Configuration')).map((r) => [r.key, r.cells] as const),
    );
    for (const option of Object.keys(TIER_DEFAULTS) as DefaultedOption[]) {
      const cell = table.get(option)?.[1];
      expect(cell, `README documents ${option}`).toBeDefined();
      // maxCounters says more: "4096 (fewer below 64 MiB of l1Bytes)".
      expect(unquote(cell ?? '').split(' (')[0], `default of ${option}`).toBe(shownDefault(option));
    }
  });

  it("the options' doc comments give the same defaults", () => {
    const source = read('src/tier/options.ts');
    const body = source.slice(source.indexOf('export interface TierOptions'));
    for (const option of Object.keys(TIER_DEFAULTS) as DefaultedOption[]) {
      const at = body.search(new RegExp(`\\n  ${option}\\?:`));
      expect(at, `TierOptions has ${option}`).toBeGreaterThan(0);
      const doc = body.slice(body.lastIndexOf('/**', at), at);
      expect(doc, `the doc comment of ${option}`).toContain(`default ${shownDefault(option)}`);
    }
  });
});
