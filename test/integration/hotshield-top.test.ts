/**
 * `hotshield top` driven in a real terminal (tmux): it shows a gateway's hot keys, their
 * masters and a bar per master, refreshes every interval, says what is wrong when it
 * cannot read them (no token), and quits on `q`.
 */
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startGatewayOn } from '../fixtures/gateway/gateway-process.ts';
import { agent, request } from '../fixtures/gateway/http.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';

const cluster = useOwnCluster();
const TOKEN = 'top-token-0123456789abc';
const BIN = fileURLToPath(new URL('../../bin/hotshield.js', import.meta.url));

const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
const screen = (session: string) => tmux('capture-pane', '-p', '-t', session);
const alive = (session: string) => {
  try {
    tmux('has-session', '-t', session);
    return true;
  } catch {
    return false;
  }
};

/** `hotshield top` with `args` in a detached 120×40 tmux session, killed after the test. */
function startTop(session: string, args: string[], env: Record<string, string> = {}): void {
  const exports = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  tmux(
    'new-session',
    '-d',
    '-s',
    session,
    '-x',
    '120',
    '-y',
    '40',
    'env',
    ...exports,
    process.execPath,
    BIN,
    'top',
    ...args,
  );
  onTestFinished(() => {
    if (alive(session)) tmux('kill-session', '-t', session);
  });
}

async function until(session: string, pattern: RegExp, ms = 10_000): Promise<string> {
  const end = Date.now() + ms;
  let last = '';
  while (Date.now() < end) {
    last = screen(session);
    if (pattern.test(last)) return last;
    await sleep(100);
  }
  throw new Error(`${pattern} not on screen within ${ms} ms:\n${last}`);
}

describe('hotshield top', () => {
  it('shows the hot keys live with their masters, and quits on q', async () => {
    const gw = await startGatewayOn(cluster.seeds, ['--threads', '1', '--token', TOKEN]);
    const redis = clusterClient(cluster.seeds);
    await redis.set('top:viral', 'v');
    await redis.set('top:warm', 'w');
    const http = agent(4);
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const key = i % 4 === 0 ? 'top:warm' : 'top:viral';
        await request(`${gw.url}/v1/kv/${key}`, { agent: http }).catch(() => undefined);
      }
    })();
    const session = `hs-top-${process.pid}`;
    startTop(session, ['--url', gw.url, '--interval', '300ms'], { HOTSHIELD_TOKEN: TOKEN });
    onTestFinished(() => {
      stop = true;
    });
    const first = await until(session, /top:viral[\s\S]*top:warm/);
    expect(first).toMatch(/KEY\s+READS\/S\s+WRITES\/S\s+HIT %\s+NODE/);
    expect(first).toMatch(/top:viral\s+[\d,]+\.\d\s+0\.0\s+\d+\.\d\d\s+127\.0\.0\.1:\d+/);
    expect(first).toMatch(/MASTER[\s\S]*127\.0\.0\.1:\d+\s+█+/);
    // Redrawn: the clock in the first line moves.
    const clock = /(\d\d:\d\d:\d\d) — q quits/.exec(first)?.[1];
    await until(session, /\d\d:\d\d:\d\d — q quits/);
    await sleep(1200);
    expect(/(\d\d:\d\d:\d\d) — q quits/.exec(screen(session))?.[1]).not.toBe(clock);
    tmux('send-keys', '-t', session, 'q');
    const end = Date.now() + 3000;
    while (alive(session) && Date.now() < end) await sleep(100);
    expect(alive(session)).toBe(false);
    stop = true;
    await load;
    await gw.stop();
  }, 60_000);

  it('says why when it cannot read the hot keys, and Ctrl-C quits', async () => {
    const gw = await startGatewayOn(cluster.seeds, ['--threads', '1', '--token', TOKEN]);
    const session = `hs-top-denied-${process.pid}`;
    startTop(session, ['--url', gw.url, '--interval', '300ms']);
    await until(session, /401: this gateway needs --token/);
    tmux('send-keys', '-t', session, 'C-c');
    const end = Date.now() + 3000;
    while (alive(session) && Date.now() < end) await sleep(100);
    expect(alive(session)).toBe(false);
    await gw.stop();
  }, 60_000);

  it('refuses bad flags with status 2 and the usage', () => {
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [BIN, 'top', '--scope', 'galaxy'], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (error) {
      const e = error as { status: number; stderr: string };
      status = e.status;
      stderr = e.stderr;
    }
    expect(status).toBe(2);
    expect(stderr).toMatch(/--scope must be process or cluster/);
  });
});
