/**
 * The README's commands, run as a new user runs them in a clone of the repository: the
 * `hotshield` bin through npx, and the gateway quick start block line by line (its port
 * moved to a free one). The gateway runs in a real terminal (tmux), as in the quick
 * start, so its logs must be readable lines there, and Ctrl-C must stop it cleanly.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../fixtures/gateway/gateway-process.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
/** A tmux server of this file's own, so no other tmux session is touched. */
const TMUX = ['-L', `hotshield-readme-${process.pid}`];
const SESSION = 'quickstart';

const tmux = (...args: string[]) => run('tmux', [...TMUX, ...args], { cwd: root });

afterAll(async () => {
  await tmux('kill-server').catch(() => {});
});

/** The first ```sh block of a README section. */
function shellBlock(heading: string): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  expect(at, `README has "${heading}"`).toBeGreaterThan(0);
  const open = readme.indexOf('```sh\n', at) + '```sh\n'.length;
  return readme
    .slice(open, readme.indexOf('```', open))
    .split('\n')
    .map((line) => line.replace(/\s+#\s.*$/, '').trim())
    .filter((line) => line !== '');
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Has the pane's process exited? */
async function paneState(): Promise<{ dead: boolean }> {
  const { stdout } = await tmux('display-message', '-p', '-t', SESSION, '#{pane_dead}');
  return { dead: stdout.trim() === '1' };
}

const pane = async () => (await tmux('capture-pane', '-p', '-J', '-S', '-', '-t', SESSION)).stdout;

describe("the README's commands", () => {
  it('npx hotshield runs the bin from a clone of the repository', async () => {
    const { stdout } = await run('npx', ['hotshield', '--help'], { cwd: root });
    expect(stdout).toMatch(/^Usage: hotshield \[flags\]/);
    expect(stdout).toContain('--log-format');
  });

  it('the gateway quick start works as written, with readable logs on a terminal and a clean Ctrl-C', async () => {
    const [start, ...curls] = shellBlock('## Quick start: gateway');
    expect(start).toBe('npx hotshield');
    expect(curls.length).toBeGreaterThanOrEqual(4);
    const port = await freePort();
    await tmux(
      'new-session',
      '-d',
      '-s',
      SESSION,
      '-x',
      '200',
      '-y',
      '50',
      '-e',
      `HOTSHIELD_PORT=${port}`,
      // exec: the command is the pane's process, so its exit status is the pane's.
      `exec ${start}`,
      ';',
      'set-option',
      '-t',
      SESSION,
      'remain-on-exit',
      'on',
    );
    await until('the gateway to listen', () => portOpen(port), 40_000);

    const output: string[] = [];
    for (const line of curls) {
      const { stdout } = await run('bash', ['-c', line.replaceAll(':8080', `:${port}`)]);
      output.push(stdout);
    }
    const [put, get, incr, read] = output;
    expect(put).toBe('');
    expect(get).toMatch(/^HTTP\/1\.1 200/);
    expect(get).toMatch(/^x-cache: HIT\r?$/im);
    expect(get).toMatch(/^etag: "/im);
    expect(get.endsWith('{"title":"viral"}')).toBe(true);
    expect(JSON.parse(incr)).toEqual({ name: 'likes:video:7', by: 1, flushed: false });
    expect(JSON.parse(read)).toEqual({ name: 'likes:video:7', value: 1 });

    // On a terminal the logs are readable lines, not JSON. The gateway process logs that it
    // listens after its threads do, so on a slow machine the curls can finish first.
    const listening = /INFO.*gateway process listening/;
    await until('the listening line', async () => listening.test(await pane()), 10_000);
    const screen = await pane();
    expect(screen).toMatch(listening);
    expect(screen).toMatch(/started a throwaway local Redis Cluster/);
    expect(screen).not.toContain('{"level"');

    // Ctrl-C, as the quick start says: the gateway drains, stops its cluster and exits (npx
    // itself dies of the SIGINT the terminal sends its whole process group).
    const seeds = /seeds: "([^"]+)"/.exec(screen)?.[1]?.split(',') ?? [];
    expect(seeds).toHaveLength(3);
    await tmux('send-keys', '-t', SESSION, 'C-c');
    await until('the gateway to exit', async () => (await paneState()).dead, 30_000);
    const after = await pane();
    expect(after).toMatch(
      /INFO.*draining gateway processes[\s\S]*INFO.*gateway process drained[\s\S]*INFO.*stopped/,
    );
    expect(await portOpen(port)).toBe(false);
    for (const seed of seeds) expect(await portOpen(Number(seed.split(':')[1])), seed).toBe(false);
  }, 120_000);
});
