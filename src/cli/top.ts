/**
 * `hotshield top --url http://host:port [--token T] [--scope cluster] [--interval 1s]`:
 * a live terminal view of a gateway's hot set, like htop: the hottest keys (reads and
 * writes a second, hit ratio, master), a bar per Redis master, the hottest counters,
 * redrawn every interval from GET /v1/hotkeys. `q` or Ctrl-C quits. Plain ANSI: it needs
 * no terminal library and works over ssh, tmux or a bare console; without a terminal
 * (output piped) it prints one frame per interval.
 */

import { parseArgs } from 'node:util';
import type { HotKeysReport } from '../tier/index.ts';
import { parseDuration } from '../tier/index.ts';
import { ConfigError } from './config.ts';

export interface TopOptions {
  url: string;
  token: string | undefined;
  scope: 'process' | 'cluster';
  intervalMs: number;
}

const USAGE =
  'usage: hotshield top [--url http://127.0.0.1:8080] [--token T | HOTSHIELD_TOKEN] [--scope process|cluster] [--interval 1s]';

export function parseTopArgs(argv: string[], env: NodeJS.ProcessEnv): TopOptions {
  let parsed: ReturnType<typeof parseTop>;
  try {
    parsed = parseTop(argv);
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n${USAGE}`);
  }
  const { values } = parsed;
  const url = values.url ?? 'http://127.0.0.1:8080';
  if (!/^https?:\/\/[^/]+\/?$/.test(url))
    throw new ConfigError(`--url must be a gateway's base URL like http://host:8080 (got ${url})`);
  const scope = values.scope ?? 'process';
  if (scope !== 'process' && scope !== 'cluster')
    throw new ConfigError(`--scope must be process or cluster (got ${scope})`);
  const intervalMs = parseDuration(values.interval ?? '1s');
  if (intervalMs === undefined || intervalMs < 100 || intervalMs > 60_000)
    throw new ConfigError(
      `--interval must be a duration from 100ms to 60s (got ${values.interval})`,
    );
  return {
    url: url.replace(/\/$/, ''),
    token: values.token ?? env.HOTSHIELD_TOKEN,
    scope,
    intervalMs,
  };
}

function parseTop(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      scope: { type: 'string' },
      interval: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
}

const number = new Intl.NumberFormat('en-US', {
  maximumFractionDigits: 1,
  minimumFractionDigits: 1,
});
const rate = (x: number) => number.format(x);
/**
 * A key (anyone's bytes) made safe for a terminal: control characters, which could move
 * the cursor, retitle the window or write the clipboard (OSC 52), shown as \xNN.
 */
export function printable(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    out += c < 0x20 || (c >= 0x7f && c <= 0x9f) ? `\\x${c.toString(16).padStart(2, '0')}` : ch;
  }
  return out;
}
const clip = (s: string, width: number) =>
  s.length > width ? `${s.slice(0, Math.max(0, width - 1))}…` : s.padEnd(width);
const right = (s: string, width: number) => s.padStart(width);

/** One frame of the view, as lines no wider than `width`, at most `height` of them. Pure. */
export function renderTop(
  state: { report?: HotKeysReport; error?: string; at: Date },
  o: TopOptions,
  width: number,
  height: number,
): string[] {
  const lines: string[] = [];
  const time = state.at.toISOString().slice(11, 19);
  lines.push(clip(`hotshield top — ${o.url} (${o.scope}) — ${time} — q quits`, width));
  const r = state.report;
  if (state.error !== undefined || r === undefined) {
    lines.push(clip(printable(state.error ?? 'waiting for the first answer…'), width));
    return lines.map((l) => l.trimEnd());
  }
  const processes = r.processes === undefined ? '' : `, ${r.processes} process(es)`;
  lines.push(clip(`rates a second over the last ${r.windowSeconds} s${processes}`, width));
  lines.push('');
  const nodeWidth = 22;
  const keyWidth = Math.max(12, width - 12 - 12 - 8 - nodeWidth - 4);
  lines.push(
    `${clip('KEY', keyWidth)} ${right('READS/S', 12)}${right('WRITES/S', 12)}${right('HIT %', 8)}  ${clip('NODE', nodeWidth)}`,
  );
  const budget = Math.max(3, height - 8 - r.nodes.length - Math.min(3, r.counters.length));
  for (const k of r.keys.slice(0, budget)) {
    const hit = k.hitRatio === null ? '–' : (k.hitRatio * 100).toFixed(2);
    lines.push(
      `${clip(printable(k.key) + (k.truncated ? '…' : ''), keyWidth)} ${right(rate(k.readsPerSecond), 12)}${right(rate(k.writesPerSecond), 12)}${right(hit, 8)}  ${clip(printable(k.node ?? '?'), nodeWidth)}`,
    );
  }
  if (r.keys.length === 0) lines.push('(no key counted yet)');
  lines.push('');
  const top = Math.max(1, ...r.nodes.map((n) => n.readsPerSecond));
  const barWidth = Math.max(10, width - nodeWidth - 30);
  lines.push(
    `${clip('MASTER', nodeWidth)} ${clip('READS/S', barWidth)} ${right('READS/S', 12)}${right('MISSES/S', 12)}`,
  );
  for (const n of r.nodes) {
    const filled = Math.round((n.readsPerSecond / top) * barWidth);
    const bar = '█'.repeat(filled) + '░'.repeat(barWidth - filled);
    lines.push(
      `${clip(printable(n.node), nodeWidth)} ${bar} ${right(rate(n.readsPerSecond), 12)}${right(rate(n.missesPerSecond), 12)}`,
    );
  }
  if (r.counters.length > 0) {
    lines.push('');
    lines.push(`${clip('COUNTER', keyWidth)} ${right('INCR/S', 12)}`);
    for (const c of r.counters.slice(0, 3))
      lines.push(`${clip(printable(c.name), keyWidth)} ${right(rate(c.incrementsPerSecond), 12)}`);
  }
  return lines.slice(0, height).map((l) => clip(l, width).trimEnd());
}

/** What GET /v1/hotkeys answered, or why not, in words for the screen. */
async function fetchReport(
  o: TopOptions,
  limit: number,
): Promise<{ report?: HotKeysReport; error?: string }> {
  const url = `${o.url}/v1/hotkeys?limit=${limit}&scope=${o.scope}`;
  try {
    const res = await fetch(url, {
      headers: o.token === undefined ? {} : { authorization: `Bearer ${o.token}` },
      signal: AbortSignal.timeout(Math.max(1000, o.intervalMs * 2)),
    });
    const text = await res.text();
    if (res.status === 401)
      return { error: '401: this gateway needs --token (or HOTSHIELD_TOKEN)' };
    if (res.status === 403)
      return { error: '403: without a token only loopback clients may read hot keys' };
    if (res.status !== 200) return { error: `${res.status}: ${text.slice(0, 200)}` };
    return { report: JSON.parse(text) as HotKeysReport };
  } catch (error) {
    return { error: `cannot reach ${o.url}: ${(error as Error).message}` };
  }
}

/** Run the view until `q`, Ctrl-C or SIGINT/SIGTERM; resolves when it has stopped. */
export async function runTop(o: TopOptions): Promise<void> {
  const out = process.stdout;
  const tty = out.isTTY === true;
  const stdin = process.stdin;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const onKey = (data: Buffer) => {
    const s = data.toString();
    if (s === 'q' || s === 'Q' || s === '\u0003') stop();
  };
  if (stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onKey);
  }
  process.once('SIGINT', () => stop());
  process.once('SIGTERM', () => stop());
  if (tty) out.write('\x1b[?1049h\x1b[?25l');
  let done = false;
  void stopped.then(() => {
    done = true;
  });
  try {
    while (!done) {
      const width = tty ? out.columns : 120;
      const height = tty ? out.rows : 40;
      const state = {
        ...(await fetchReport(o, Math.min(512, Math.max(10, height)))),
        at: new Date(),
      };
      if (done) break;
      const frame = renderTop(state, o, width, height).join('\n');
      out.write(tty ? `\x1b[H\x1b[2J${frame}` : `${frame}\n\n`);
      await Promise.race([stopped, new Promise((r) => setTimeout(r, o.intervalMs))]);
    }
  } finally {
    if (tty) out.write('\x1b[?25h\x1b[?1049l');
    if (stdin.isTTY) {
      stdin.off('data', onKey);
      stdin.setRawMode(false);
      stdin.pause();
    }
  }
}
