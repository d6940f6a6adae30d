/**
 * The live hot-key page (GET /dashboard) in a real headless browser (Debian's chromium,
 * driven by puppeteer-core): it loads with every script from the gateway itself (no
 * other origin is ever asked), shows the hot keys and the masters' load, draws its
 * charts from a history that grows every second, takes its token from the address's
 * fragment, and shows a key's bytes as text, never as markup. A screenshot goes to
 * test-results/dashboard.png.
 */
import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import puppeteer, { type Browser } from 'puppeteer-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startGatewayOn } from '../fixtures/gateway/gateway-process.ts';
import { agent, request } from '../fixtures/gateway/http.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';

const cluster = useOwnCluster();
const TOKEN = 'dashboard-token-0123456789';
const CHROMIUM = process.env.HOTSHIELD_CHROMIUM ?? '/usr/bin/chromium';
const HOSTILE = '<img src=x onerror="window.pwned=1">';

async function browser(): Promise<Browser> {
  const b = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  onTestFinished(() => b.close());
  return b;
}

describe('the dashboard', () => {
  it('shows the hot keys and the masters live, from the gateway alone, and draws its charts', async () => {
    const gw = await startGatewayOn(cluster.seeds, ['--threads', '1', '--token', TOKEN]);
    const redis = clusterClient(cluster.seeds);
    await redis.set('dash:viral', 'v');
    await redis.set(HOSTILE, 'x');
    const http = agent(4);
    let stop = false;
    onTestFinished(() => {
      stop = true;
    });
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const key = i % 5 === 0 ? HOSTILE : 'dash:viral';
        await request(`${gw.url}/v1/kv/${encodeURIComponent(key)}`, { agent: http }).catch(
          () => undefined,
        );
      }
    })();

    const b = await browser();
    const page = await b.newPage();
    await page.setViewport({ width: 1200, height: 900 });
    const asked: string[] = [];
    const consoleErrors: string[] = [];
    page.on('request', (r) => asked.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    await page.goto(`${gw.url}/dashboard#token=${TOKEN}`, { waitUntil: 'load' });
    // The token left the address bar (kept for the tab only).
    expect(page.url()).toBe(`${gw.url}/dashboard`);
    // Browser-side code as strings: this project's types are Node's, not the DOM's.
    await page.waitForFunction(
      "document.querySelector('#keys tbody')?.textContent?.includes('dash:viral')",
      { timeout: 10_000 },
    );
    await page.waitForFunction('window.hotshieldDashboard.samples.t.length >= 3', {
      timeout: 10_000,
    });
    const view = (await page.evaluate(`({
      keys: [...document.querySelectorAll('#keys tbody tr')].map((tr) =>
        [...tr.querySelectorAll('td')].map((td) => td.textContent)),
      nodes: [...document.querySelectorAll('#nodes tbody tr')].map((tr) => tr.querySelector('td')?.textContent),
      meters: [...document.querySelectorAll('#nodes .meter')].map((m) => m.style.width),
      canvases: document.querySelectorAll('canvas').length,
      status: document.querySelector('#status')?.textContent,
      pwned: window.pwned,
      injected: document.querySelectorAll('#keys img').length,
    })`)) as {
      keys: string[][];
      nodes: string[];
      meters: string[];
      canvases: number;
      status: string;
      pwned: unknown;
      injected: number;
    };
    expect(view.keys[0][0]).toBe('dash:viral');
    expect(view.keys[0][5]).toMatch(/^127\.0\.0\.1:\d+$/);
    // The hostile key is shown as its bytes; nothing of it ran or was parsed as markup.
    expect(view.keys.some((cells) => cells[0] === HOSTILE)).toBe(true);
    expect(view.pwned).toBeUndefined();
    expect(view.injected).toBe(0);
    expect(view.nodes).toHaveLength(3);
    expect(view.meters).toContain('100%');
    expect(view.canvases).toBe(2);
    expect(view.status).toMatch(/^updated /);
    // Its one failed request is the tokenless poll of the second page, below: none here.
    expect(consoleErrors).toEqual([]);
    // Every request went to the gateway: no CDN, no other origin.
    expect(asked.length).toBeGreaterThan(4);
    for (const url of asked) expect(url.startsWith(`${gw.url}/`), url).toBe(true);
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });
    console.log(`dashboard screenshot: ${process.cwd()}/test-results/dashboard.png`);

    // Without the token the page says what it needs, and shows no data.
    const bare = await (await browser()).newPage();
    await bare.goto(`${gw.url}/dashboard`, { waitUntil: 'load' });
    await bare.waitForFunction(
      "document.querySelector('#status')?.textContent?.includes('needs a token')",
      { timeout: 10_000 },
    );
    expect(await bare.evaluate("document.querySelectorAll('#keys tbody tr').length")).toBe(0);
    stop = true;
    await load;
    await sleep(10);
    await gw.stop();
  }, 90_000);

  it('serves its files with a same-origin policy, and nothing else under /dashboard', async () => {
    const gw = await startGatewayOn(cluster.seeds, ['--threads', '1']);
    const page = await request(`${gw.url}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toMatch(
      /default-src 'none'; script-src 'self'/,
    );
    expect(page.text).toContain('/dashboard/uPlot.iife.min.js');
    for (const [path, type] of [
      ['/dashboard/dashboard.js', /^text\/javascript/],
      ['/dashboard/uPlot.iife.min.js', /^text\/javascript/],
      ['/dashboard/uPlot.min.css', /^text\/css/],
    ] as const) {
      const r = await request(`${gw.url}${path}`);
      expect(r.status, path).toBe(200);
      expect(r.headers['content-type']).toMatch(type);
    }
    expect((await request(`${gw.url}/dashboard/../package.json`)).status).toBe(404);
    expect((await request(`${gw.url}/dashboard/index.html`)).status).toBe(404);
    expect((await request(`${gw.url}/dashboard`, { method: 'POST' })).status).toBe(405);
    await gw.stop();
  }, 30_000);
});
