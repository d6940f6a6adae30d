import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWrk, wrkAvailable } from '../../../bench/lib/wrk.ts';

// Paths seen by the server, so the test can tell what wrk really sent.
const seen = new Map<string, number>();
const server = createServer((req, res) => {
  const path = req.url ?? '';
  seen.set(path, (seen.get(path) ?? 0) + 1);
  res.writeHead(path.startsWith('/ok') ? 200 : 404, { 'content-length': 2 });
  res.end('hi');
});
let url = '';

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));

describe('wrk as the suite load generator (bench/lib/wrk.ts)', () => {
  it('is installed here (.ci/run installs it)', () => {
    expect(wrkAvailable()).toBe(true);
  });

  it('counts what the server answered, 2xx and not, and its own CPU', async () => {
    seen.clear();
    const { results, cpuSeconds } = await runWrk({
      urls: [url],
      connections: 4,
      pipelining: 1,
      seconds: 1,
      path: '/ok/fixed',
    });
    const [r] = results;
    const served = seen.get('/ok/fixed') ?? 0;
    expect(r.requests).toBeGreaterThan(100);
    // wrk counts the answers it read; the server may have answered a few more at the cut.
    expect(served).toBeGreaterThanOrEqual(r.requests);
    expect(served - r.requests).toBeLessThanOrEqual(4);
    expect(r.ok).toBe(r.requests);
    expect(r.non2xx).toBe(0);
    expect(r.requestsPerSecond).toBeGreaterThan(r.requests / 2);
    expect(r.latencyMs.p99).toBeGreaterThanOrEqual(r.latencyMs.p50);
    expect(cpuSeconds).toBeGreaterThan(0);
  });

  it('draws a seeded Zipf trace (zipfTrace, as loadgen.ts), pipelined, and counts 404s as non-2xx', async () => {
    seen.clear();
    const { results } = await runWrk({
      urls: [url],
      connections: 2,
      pipelining: 4,
      seconds: 1,
      path: { zipf: { keys: 50, s: 0.99, seed: 42, prefix: '/missing/' } },
    });
    const [r] = results;
    expect(r.requests).toBeGreaterThan(100);
    expect(r.non2xx).toBe(r.requests);
    expect(r.ok).toBe(0);
    // Zipf: the most frequent key is asked far more often than the rarest.
    const counts = [...seen.values()].sort((a, b) => b - a);
    expect([...seen.keys()].every((p) => /^\/missing\/\d+$/.test(p))).toBe(true);
    expect(counts[0]).toBeGreaterThan(10 * (counts.at(-1) ?? 0));
  });
});
