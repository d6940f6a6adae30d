/**
 * The package as another project gets it: `npm pack` (which runs prepack, the dist/ build),
 * the tarball installed into a throwaway ESM project, and a consumer script run there with
 * the pinned Node 24: it creates a tier against the run-wide cluster, and a worker thread
 * attaches to it by importing 'hotshield' itself and reads back what the main thread set.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const execFileP = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The environment without what `npm test` / `npx` put in it (npm_config_prefix,
 * npm_config_local_prefix, …): the nested npm must configure itself from the temp project,
 * not from the repo's npm invocation. PATH stays, so `npm` and `node` are what the run uses.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  }
  return { ...env, ...extra };
}

/** execFile that, when the command fails, says what it printed (tsc's errors go to stdout). */
async function run(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileP(file, args, { ...options, maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    const { message, stdout, stderr } = e as { message: string; stdout?: string; stderr?: string };
    throw new Error(
      `${file} ${args.join(' ')} failed: ${message}\nstdout: ${stdout}\nstderr: ${stderr}`,
    );
  }
}

// The worker is eval'd ESM: it resolves 'hotshield' from the consumer project (its cwd).
const CONSUMER = `
import { createTier, attachTier } from 'hotshield';
import { Worker } from 'node:worker_threads';

const tier = await createTier({ redis: process.env.SEEDS, l1Bytes: 8 * 1024 * 1024 });
await tier.set('pkg:k', { a: 1, when: new Date(5) });

const worker = new Worker(
  "import { workerData, parentPort } from 'node:worker_threads';" +
    "import { attachTier } from 'hotshield';" +
    'const t = attachTier(workerData.handle);' +
    "const v = await t.get('pkg:k');" +
    'parentPort.postMessage(v);' +
    'await t.close();',
  { eval: true, workerData: { handle: tier.handle } },
);
const exited = new Promise((resolve) => worker.once('exit', resolve));
const fromWorker = await new Promise((resolve, reject) => {
  worker.once('message', resolve);
  worker.once('error', reject);
  worker.once('exit', (code) => reject(new Error('worker exited with ' + code + ' before answering')));
});
const workerExit = await exited;
const fromMain = await tier.get('pkg:k');

// A Date that survived is reported as its epoch; anything else is reported as what it is.
const show = (v) =>
  v && typeof v === 'object'
    ? { a: v.a, when: v.when instanceof Date ? v.when.getTime() : 'not a Date: ' + String(v.when) }
    : { unexpected: String(v) };
console.log(JSON.stringify({
  attachTier: typeof attachTier,
  worker: show(fromWorker),
  workerExit,
  main: show(fromMain),
}));
await tier.close();
`;

let dir: string;
let tarball: string;
let app: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'hotshield-package-'));
  const packDir = path.join(dir, 'pack');
  app = path.join(dir, 'app');
  await mkdir(packDir);
  await mkdir(app);
  // prepack builds dist/ first; the tarball is the only file in packDir afterwards.
  await run('npm', ['pack', '--pack-destination', packDir], { cwd: root, env: cleanEnv() });
  const packed = (await readdir(packDir)).filter((f) => f.endsWith('.tgz'));
  expect(packed).toHaveLength(1);
  tarball = path.join(packDir, packed[0]);

  const manifest = { name: 'hotshield-consumer', private: true, type: 'module' };
  await writeFile(path.join(app, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
    cwd: app,
    env: cleanEnv(),
  });
  await writeFile(path.join(app, 'consumer.mjs'), CONSUMER);
}, 300_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the built JS and its types, the thread entries of workers/ among them, and no sources, tests or benches', async () => {
    const { stdout } = await run('tar', ['tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean);
    expect(files).toContain('package/package.json');
    expect(files).toContain('package/dist/src/index.js');
    expect(files).toContain('package/dist/src/index.d.ts');
    expect(files).toContain('package/dist/src/l1/index.js');
    expect(files).toContain('package/dist/src/l1/index.d.ts');
    // Every thread entry the product starts, built next to dist/src/ as workerFile() expects.
    expect(files).toContain('package/dist/workers/refresher.js');
    expect(files).toContain('package/dist/workers/http-thread.js');
    expect(files).toContain('package/dist/src/cli/main.js');
    expect(files).toContain('package/bin/hotshield.js');
    // The live hot-key page's own files (uPlot comes with the dependencies).
    expect(files).toContain('package/dashboard/index.html');
    expect(files).toContain('package/dashboard/dashboard.js');
    expect(
      files.filter((f) => /^package\/(src|workers|test|bench|node_modules)\//.test(f)),
    ).toEqual([]);
  });

  it('works from an installed copy: a worker thread attaches to the tier and reads what the main thread set', async () => {
    // Node does not strip types under node_modules: this only works on the emitted JS.
    const { stdout, stderr } = await run(process.execPath, ['consumer.mjs'], {
      cwd: app,
      env: cleanEnv({ SEEDS: inject('redisSeeds') }),
      timeout: 60_000,
    });
    const last = stdout.trim().split('\n').at(-1) ?? '';
    let printed: unknown;
    try {
      printed = JSON.parse(last);
    } catch {
      throw new Error(`consumer printed no JSON line\nstdout: ${stdout}\nstderr: ${stderr}`);
    }
    const set = { a: 1, when: new Date(5).getTime() };
    expect(printed).toEqual({ attachTier: 'function', worker: set, workerExit: 0, main: set });
  }, 120_000);

  it('installs the hotshield command, which runs from the built JS', async () => {
    const bin = path.join(app, 'node_modules', '.bin', 'hotshield');
    const { readFile } = await import('node:fs/promises');
    expect((await readFile(bin, 'utf8')).startsWith('#!/usr/bin/env node')).toBe(true);
    const { stdout } = await run(process.execPath, [bin, '--help'], { cwd: app, env: cleanEnv() });
    expect(stdout).toMatch(/^Usage: hotshield/);
    expect(stdout).toContain('HOTSHIELD_SOFT_TTL');
  });

  it('the installed gateway serves its dashboard, uPlot included, from the package', async () => {
    const bin = path.join(app, 'node_modules', '.bin', 'hotshield');
    const { spawn } = await import('node:child_process');
    const { freePort } = await import('../fixtures/gateway/gateway-process.ts');
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [bin, '--redis', inject('redisSeeds'), '--port', String(port), '--threads', '1'],
      {
        cwd: app,
        env: cleanEnv({ HOTSHIELD_LOG_FORMAT: 'json' }),
        stdio: 'ignore',
        detached: true,
      },
    );
    try {
      const url = `http://127.0.0.1:${port}`;
      let page: Response | undefined;
      const end = Date.now() + 30_000;
      while (page === undefined && Date.now() < end) {
        page = await fetch(`${url}/dashboard`).catch(() => undefined);
        if (page === undefined) await new Promise((r) => setTimeout(r, 200));
      }
      expect(page?.status).toBe(200);
      expect(await page?.text()).toContain('/dashboard/dashboard.js');
      const uplot = await fetch(`${url}/dashboard/uPlot.iife.min.js`);
      expect(uplot.status).toBe(200);
      expect(await uplot.text()).toContain('uPlot');
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
      await exited;
    }
  }, 60_000);
});
