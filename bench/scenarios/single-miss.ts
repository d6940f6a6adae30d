/**
 * single-miss: the latency of one miss without load. One keep-alive connection sends
 * requests one after the other, each for a key no contender has read before, so every
 * request is a miss (hotshield: two thread hops around a Redis GET; l2-only: the GET).
 * The first requests of each run warm the miss path's JIT and are not counted.
 */

import { Agent, request } from 'node:http';
import { startContender } from '../lib/contenders.ts';
import { formatPercent, markdownTable, progress } from '../lib/report.ts';
import { percentile } from '../lib/soak-load.ts';
import { median, met, type ScenarioOutcome, type Suite, storeKeys } from '../lib/suite.ts';

const CONTENDERS = ['hotshield', 'l2-only'] as const;
type Contender = (typeof CONTENDERS)[number];
const VALUE_BYTES = 64;

interface Run {
  contender: Contender;
  p50: number;
  p90: number;
  p99: number;
}

/** GET `path` over `agent`; resolves with the milliseconds it took once the body is read. */
function timedGet(agent: Agent, port: number, path: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, timeout: 5000 }, (res) => {
      res.resume();
      res.once('end', () =>
        res.statusCode === 200
          ? resolve(performance.now() - started)
          : reject(new Error(`GET ${path}: ${res.statusCode}`)),
      );
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.once('error', reject);
    req.end();
  });
}

export async function singleMiss(suite: Suite): Promise<ScenarioOutcome> {
  const chosen = CONTENDERS.filter((c) => suite.contenders.includes(c));
  const warmup = suite.quick ? 100 : 300;
  const measured = suite.quick ? 200 : 500;
  const perRun = warmup + measured;
  const total = suite.rounds * chosen.length * perRun;
  progress(`single-miss: storing ${total} keys of ${VALUE_BYTES} B`);
  await storeKeys(suite, 'bench:sm:', total, Buffer.alloc(VALUE_BYTES, 's'));
  const runs: Run[] = [];
  let next = 0;
  for (let round = 0; round < suite.rounds; round++) {
    const order = chosen.map((_, i) => chosen[(i + round) % chosen.length]);
    for (const contender of order) {
      const running = await startContender(contender, {
        seeds: suite.cluster.seeds,
        threads: suite.threads,
        softTtlMs: suite.softTtlMs,
        bodyBytes: VALUE_BYTES,
        l1Bytes: 64 * 1024 * 1024,
      });
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const times: number[] = [];
        for (let i = 0; i < perRun; i++) {
          const ms = await timedGet(agent, running.port, `/v1/kv/bench:sm:${next++}`);
          if (i >= warmup) times.push(ms);
        }
        times.sort((a, b) => a - b);
        const run = {
          contender,
          p50: percentile(times, 0.5),
          p90: percentile(times, 0.9),
          p99: percentile(times, 0.99),
        };
        runs.push(run);
        progress(
          `single-miss ${contender} (round ${round + 1}/${suite.rounds}): p50 ${run.p50.toFixed(2)} ms, p99 ${run.p99.toFixed(2)} ms`,
        );
      } finally {
        agent.destroy();
        await running.stop();
      }
    }
  }
  const rows = chosen.map((contender) => {
    const mine = runs.filter((r) => r.contender === contender);
    return {
      contender,
      p50: median(mine.map((r) => r.p50)),
      p90: median(mine.map((r) => r.p90)),
      p99: median(mine.map((r) => r.p99)),
      p50s: mine.map((r) => r.p50),
    };
  });
  const hs = rows.find((r) => r.contender === 'hotshield');
  const l2 = rows.find((r) => r.contender === 'l2-only');
  const ms = (x: number) => x.toFixed(2);
  return {
    name: 'single-miss',
    record: {
      settings: { rounds: suite.rounds, warmup, measured, valueBytes: VALUE_BYTES },
      rows,
      runs,
    },
    report:
      `### single-miss: ${measured} sequential misses over one keep-alive connection (after ${warmup} unmeasured), no other load\n\n` +
      markdownTable(
        ['contender', 'p50 ms (median of rounds)', 'p90 ms', 'p99 ms', 'p50 of each round'],
        rows.map((r) => [r.contender, ms(r.p50), ms(r.p90), ms(r.p99), r.p50s.map(ms).join(', ')]),
      ),
    goals:
      hs === undefined || l2 === undefined
        ? []
        : [
            `single miss, no load: hotshield p50 ${ms(hs.p50)} ms, l2-only ${ms(l2.p50)} ms, +${ms(hs.p50 - l2.p50)} ms = ${formatPercent(hs.p50 / l2.p50 - 1)} more (goal ≤ +0.20 ms: ${met(hs.p50 <= l2.p50 + 0.2)})`,
          ],
  };
}
