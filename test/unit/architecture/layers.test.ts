/**
 * The house rules of docs/ARCHITECTURE.md, read from the code's imports: every import
 * points down the layers, the layers above the tier know only its API, the L1 imports
 * nothing of the project, only the refresher and the dev launcher load ioredis, no two
 * files import each other in a loop, and a thread entry in workers/ stays thin.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** Top first; a file may import from its own layer and from layers of a lower rank only. */
const LAYERS = [
  { name: 'entry points', rank: 9, test: /^(workers\/|bin\/)/ },
  { name: 'cli', rank: 8, test: /^src\/cli\// },
  { name: 'gateway', rank: 7, test: /^src\/gateway\// },
  { name: 'package', rank: 6, test: /^src\/index\.ts$/ },
  { name: 'tier', rank: 5, test: /^src\/tier\// },
  { name: 'refresher', rank: 4, test: /^src\/refresher\// },
  { name: 'keys', rank: 3, test: /^src\/keys\// },
  { name: 'dev', rank: 3, test: /^src\/dev\// },
  { name: 'base', rank: 2, test: /^src\/[^/]+\.ts$/ },
  { name: 'l1', rank: 1, test: /^src\/l1\// },
];

interface Import {
  /** A project file (relative to the root), or the package or `node:` module named. */
  target: string;
  local: boolean;
  typeOnly: boolean;
}

function layerOf(file: string): (typeof LAYERS)[number] {
  const layer = LAYERS.find((l) => l.test.test(file));
  if (layer === undefined)
    throw new Error(`${file} is in no layer: add it to LAYERS and to ARCHITECTURE.md`);
  return layer;
}

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|js)$/.test(e.name))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

const FILES = [...sources('src'), ...sources('workers'), ...sources('bin')].sort();

const IMPORT =
  /^(?:import|export)\s+(type\s+)?(?:[^'"`;]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

function importsOf(file: string): Import[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  const out: Import[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[2] ?? m[3];
    const local = spec.startsWith('.');
    const target = local ? path.normalize(path.join(path.dirname(file), spec)) : spec;
    // `import { type A, type B }` loads nothing either.
    const braces = /\{([^}]*)\}/.exec(m[0])?.[1];
    const allTypes =
      braces?.split(',').every((n) => n.trim() === '' || /^type\s/.test(n.trim())) === true;
    out.push({ target, local, typeOnly: m[1] !== undefined || allTypes });
  }
  return out;
}

const GRAPH = new Map(FILES.map((f) => [f, importsOf(f)]));

describe('the layers (docs/ARCHITECTURE.md)', () => {
  it('every file is in a layer and every import of a project file resolves', () => {
    for (const [file, imports] of GRAPH) {
      layerOf(file);
      for (const i of imports.filter((x) => x.local))
        expect(GRAPH.has(i.target), `${file} imports ${i.target}`).toBe(true);
    }
  });

  it('every import points down: to the same layer or a lower one', () => {
    const up: string[] = [];
    for (const [file, imports] of GRAPH) {
      const from = layerOf(file);
      for (const i of imports.filter((x) => x.local)) {
        const to = layerOf(i.target);
        if (to !== from && to.rank >= from.rank)
          up.push(`${file} (${from.name}) → ${i.target} (${to.name})`);
      }
    }
    expect(up).toEqual([]);
  });

  it('the layers above the tier know only its API (src/tier/index.ts), never the L1 or the refresher', () => {
    const around: string[] = [];
    for (const [file, imports] of GRAPH) {
      if (!['cli', 'gateway'].includes(layerOf(file).name)) continue;
      for (const i of imports.filter((x) => x.local)) {
        const to = layerOf(i.target).name;
        if (
          ['refresher', 'keys', 'l1'].includes(to) ||
          (to === 'tier' && i.target !== 'src/tier/index.ts')
        )
          around.push(`${file} → ${i.target}`);
      }
    }
    expect(around).toEqual([]);
  });

  it('the L1 imports Node built-ins and itself only', () => {
    const outside: string[] = [];
    for (const [file, imports] of GRAPH) {
      if (layerOf(file).name !== 'l1') continue;
      for (const i of imports) {
        const ok = i.local ? i.target.startsWith('src/l1/') : i.target.startsWith('node:');
        if (!ok) outside.push(`${file} → ${i.target}`);
      }
    }
    expect(outside).toEqual([]);
  });

  it('only the refresher and the dev launcher load ioredis, and attaching a tier does not', () => {
    const loaders = [...GRAPH]
      .filter(([, imports]) => imports.some((i) => i.target === 'ioredis' && !i.typeOnly))
      .map(([file]) => file);
    expect(loaders.length).toBeGreaterThan(0);
    for (const file of loaders) expect(file, file).toMatch(/^src\/(refresher|dev)\//);
    // What a thread loads when it imports the tier: runtime imports only, followed through.
    const loaded = new Set<string>();
    const visit = (file: string) => {
      if (loaded.has(file)) return;
      loaded.add(file);
      for (const i of GRAPH.get(file) ?? []) if (!i.typeOnly) visit(i.target);
    };
    visit('src/tier/index.ts');
    expect(loaded.has('src/tier/create.ts')).toBe(true);
    expect(loaded.has('ioredis')).toBe(false);
  });

  it('no files import each other in a loop', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const loops: string[] = [];
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        loops.push([...trail.slice(trail.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'visiting');
      for (const i of GRAPH.get(file) ?? []) if (i.local) visit(i.target, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of FILES) visit(file, []);
    expect(loops).toEqual([]);
  });

  it('a thread entry in workers/ is thin: it reads its data and calls one start function', () => {
    const entries = FILES.filter((f) => f.startsWith('workers/'));
    expect(entries.sort()).toEqual(['workers/http-thread.ts', 'workers/refresher.ts']);
    for (const file of entries) {
      const code = readFileSync(path.join(root, file), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.trim().startsWith('//'));
      expect(code.length, `${file}: lines of code`).toBeLessThanOrEqual(12);
      const project = (GRAPH.get(file) ?? []).filter((i) => i.local);
      expect(project, `${file} imports one start module`).toHaveLength(1);
    }
  });
});
