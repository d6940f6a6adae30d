/**
 * hotkeys: how well and how soon hotshield knows its hot keys, and what knowing costs.
 *
 * Accuracy (in-process, lib/heat-accuracy.ts): seeded Zipf traces (s = 0.9, 1.1; 10^4,
 * 10^5, 10^6 keys) fed at 100,000 events a second into an L1's heat table for 12 s (6 s
 * with --quick), against the trace's exact counts over the report's window: precision of
 * the top 10 and top 100, rate error of the 10 most read keys.
 *
 * Detection latency: a gateway under a Zipf load (the load generator, 10^5 keys), and a
 * key nobody read so far requested at 1,500 a second from then on; a poller reads
 * /v1/hotkeys?limit=512 every 50 ms: the time until the key is listed, and until its
 * reads a second are at least 1,000. One jump per round.
 *
 * Refresh-ahead: the hot key under load for a run with hot keys on (refreshed ahead)
 * and off, while a prober reads it one request after another: its STALE and MISS
 * answers (x-cache), and Redis GETs of the key per soft TTL.
 *
 * Overhead: the hot key's hit path with --hot-keys on against off (lib/switch-cost.ts:
 * both gateways up, measured in turn), the throughput and the server's CPU per request. On this VM that is noise-bound (±10 %
 * between runs of one build), so the same path is also timed in-process, where a few
 * nanoseconds resolve: `tier.peek` of a hot key with hotKeys on and off, in alternating
 * runs of 200,000 reads (yielding every 1,000 so the tallies' timer runs), the median of
 * each side and of the ratios.
 */

import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTier, type HotKeysReport, type Tier } from '../../src/tier/index.ts';
import { startContender } from '../lib/contenders.ts';
import { type AccuracyCell, heatAccuracy } from '../lib/heat-accuracy.ts';
import { measure, runLoad } from '../lib/http-measure.ts';
import { formatRate, formatRatio, markdownTable, progress } from '../lib/report.ts';
import { median, met, type ScenarioOutcome, type Suite, storeKeys } from '../lib/suite.ts';
import { switchCost } from '../lib/switch-cost.ts';

const HOT = 'bench:hk:hot';
const ZIPF_KEYS = 100_000;
const JUMP_RATE = 1500;
const THRESHOLD = 1000;

function get(agent: Agent, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('timeout', () => req.destroy(new Error('request timed out')));
    req.once('error', reject);
    req.end();
  });
}

interface Detection {
  key: string;
  /** ms from the first request of the key to its first listing, and to a rate ≥ THRESHOLD. */
  listedMs: number | undefined;
  rateMs: number | undefined;
  /** What the jumping client achieved, requests a second. */
  sentPerSecond: number;
}

/** One jump: a new key at JUMP_RATE/s under a Zipf load, polled until seen at the threshold. */
async function detectOnce(
  suite: Suite,
  port: number,
  url: string,
  key: string,
): Promise<Detection> {
  const seconds = 6;
  const load = runLoad({
    urls: [url],
    tool: suite.loadgens.includes('wrk') ? 'wrk' : 'autocannon',
    connections: Math.max(2, Math.floor(suite.connections / 2)),
    pipelining: 1,
    seconds,
    path: { zipf: { keys: ZIPF_KEYS, s: 0.99, seed: 5, prefix: '/v1/kv/bench:hk:z:' } },
  });
  await sleep(2000);
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const poller = new Agent({ keepAlive: true, maxSockets: 1 });
  const path = `/v1/kv/${key}`;
  const start = performance.now();
  let sent = 0;
  let stop = false;
  const sender = (async () => {
    while (!stop) {
      const due = start + (sent * 1000) / JUMP_RATE;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const batch: Promise<unknown>[] = [];
      for (let i = 0; i < 8 && performance.now() >= start + (sent * 1000) / JUMP_RATE; i++) {
        sent++;
        batch.push(get(agent, port, path).catch(() => undefined));
      }
      await Promise.all(batch);
    }
  })();
  let listedMs: number | undefined;
  let rateMs: number | undefined;
  while (performance.now() - start < 3000 && rateMs === undefined) {
    const r = await get(poller, port, '/v1/hotkeys?limit=512');
    const at = performance.now() - start;
    const row = (JSON.parse(r.body) as HotKeysReport).keys.find((k) => k.key === key);
    if (row !== undefined) listedMs ??= at;
    if (row !== undefined && row.readsPerSecond >= THRESHOLD) rateMs = at;
    await sleep(50);
  }
  stop = true;
  await sender;
  const sentPerSecond = (sent * 1000) / (performance.now() - start);
  agent.destroy();
  poller.destroy();
  await load;
  return { key, listedMs, rateMs, sentPerSecond };
}

/** Hot key throughput and CPU per request with hot keys on and off, rotated rounds. */
async function overhead(
  suite: Suite,
  base: { seeds: string; softTtlMs: number; bodyBytes: number; l1Bytes: number },
) {
  const runs = await switchCost(suite, base, {
    flag: '--hot-keys',
    path: `/v1/kv/${HOT}`,
    label: 'hotkeys hit path',
  });
  const rate = (side: 'on' | 'off') => median(runs[side].map((m) => m.requestsPerSecond));
  const cpu = (side: 'on' | 'off') => median(runs[side].map((m) => m.serverCpuPerRequestUs));
  return { runs, on: rate('on'), off: rate('off'), cpuOn: cpu('on'), cpuOff: cpu('off') };
}

interface AheadRun {
  on: boolean;
  probes: number;
  stale: number;
  miss: number;
  getsPerSoftTtl: number;
}

/** Refresh-ahead's effect: the prober's STALE/MISS answers and the key's GETs, on and off. */
async function refreshAheadEffect(
  suite: Suite,
  base: { seeds: string; softTtlMs: number; bodyBytes: number; l1Bytes: number },
): Promise<AheadRun[]> {
  const out: AheadRun[] = [];
  for (let round = 0; round < suite.rounds; round++) {
    for (const on of round % 2 === 0 ? [true, false] : [false, true]) {
      const pod = await startContender('hotshield', {
        ...base,
        threads: suite.threads,
        extraArgs: ['--hot-keys', on ? 'on' : 'off'],
      });
      try {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        // The first read, a miss, before the measured run.
        await get(agent, pod.port, `/v1/kv/${HOT}`);
        let stop = false;
        const seen = { probes: 0, stale: 0, miss: 0 };
        const prober = (async () => {
          while (!stop) {
            const r = await new Promise<string | undefined>((resolve) => {
              const req = request(
                { host: '127.0.0.1', port: pod.port, path: `/v1/kv/${HOT}`, agent },
                (res) => {
                  res.resume();
                  res.once('end', () => resolve(String(res.headers['x-cache'])));
                },
              );
              req.once('error', () => resolve(undefined));
              req.end();
            });
            seen.probes++;
            if (r === 'STALE') seen.stale++;
            if (r === 'MISS') seen.miss++;
          }
        })();
        const m = await measure({
          label: `hotkeys refresh-ahead (${on ? 'on' : 'off'})`,
          serverPids: [pod.pid],
          redisPorts: suite.redisPorts,
          spec: {
            urls: [pod.url('/')],
            tool: suite.loadgens.includes('wrk') ? 'wrk' : 'autocannon',
            connections: Math.max(2, suite.connections / 2),
            pipelining: 1,
            seconds: Math.max(suite.seconds, 9),
            path: `/v1/kv/${HOT}`,
          },
          progress,
        });
        stop = true;
        await prober;
        agent.destroy();
        const gets = m.redis.reduce((a, n) => a + n.gets, 0);
        const ttls = (m.seconds * 1000) / base.softTtlMs;
        out.push({ on, ...seen, getsPerSoftTtl: gets / ttls });
      } finally {
        await pod.stop();
      }
    }
  }
  return out;
}

/** ns per `tier.peek` hit of one hot key, hot keys on and off, alternating runs. */
async function inProcessHitCost(suite: Suite, runs: number) {
  const common = {
    redis: suite.cluster.seeds,
    codec: 'raw',
    softTtl: '10m',
    coherence: false,
  } as const;
  const on = await createTier(common);
  const off = await createTier({ ...common, hotKeys: false });
  try {
    for (const t of [on, off]) {
      await t.set(HOT, Buffer.alloc(64, 0x61));
      await t.get(HOT);
    }
    const time = async (t: Tier, n: number) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        if (t.peek(HOT) == null) throw new Error('the hot key left L1');
        if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
      }
      return ((performance.now() - t0) * 1e6) / n;
    };
    const ons: number[] = [];
    const offs: number[] = [];
    for (let r = 0; r < runs; r++) {
      ons.push(await time(on, 200_000));
      offs.push(await time(off, 200_000));
    }
    return {
      runs,
      nsOn: median(ons),
      nsOff: median(offs),
      ratio: median(offs.map((o, i) => o / ons[i])),
    };
  } finally {
    await on.close();
    await off.close();
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const msOf = (x: number | undefined) => (x === undefined ? 'not seen' : `${Math.round(x)} ms`);

export async function hotkeys(suite: Suite): Promise<ScenarioOutcome> {
  const accuracy: AccuracyCell[] = [];
  const seconds = suite.quick ? 6 : 12;
  for (const s of [0.9, 1.1]) {
    for (const keys of [10_000, 100_000, 1_000_000]) {
      progress(`hotkeys accuracy: Zipf(${s}) over ${keys} keys, ${seconds} s`);
      accuracy.push(await heatAccuracy({ s, keys, rate: 100_000, seconds, seed: 7 }));
    }
  }
  const value = Buffer.alloc(64, 0x61);
  await suite.redis.set(HOT, value);
  await storeKeys(suite, 'bench:hk:z:', suite.quick ? 2000 : 20_000, value);
  const base = {
    seeds: suite.cluster.seeds,
    softTtlMs: suite.softTtlMs,
    bodyBytes: 64,
    l1Bytes: 64 * 1024 * 1024,
  };
  const detections: Detection[] = [];
  const pod = await startContender('hotshield', {
    ...base,
    threads: suite.threads,
    extraArgs: ['--hot-threshold', String(THRESHOLD)],
  });
  try {
    for (let round = 0; round < suite.rounds; round++) {
      const key = `bench:hk:jump:${round}:${Date.now()}`;
      await suite.redis.set(key, value);
      progress(`hotkeys detection: round ${round + 1}/${suite.rounds}`);
      detections.push(await detectOnce(suite, pod.port, pod.url('/'), key));
    }
  } finally {
    await pod.stop();
  }
  progress('hotkeys refresh-ahead');
  const ahead = await refreshAheadEffect(suite, base);
  const cost = await overhead(suite, base);
  progress('hotkeys overhead, in-process');
  const inProcess = await inProcessHitCost(suite, suite.quick ? 20 : 60);

  const worst = (pick: (c: AccuracyCell) => number, lowest: boolean) =>
    accuracy.map(pick).reduce((a, b) => (lowest ? Math.min(a, b) : Math.max(a, b)));
  const p10 = worst((c) => c.precisionAt10, true);
  const p100 = worst((c) => c.precisionAt100, true);
  const err = worst((c) => c.rateErrorMax, false);
  const slowest = Math.max(...detections.map((d) => d.rateMs ?? Number.POSITIVE_INFINITY));
  const ratio = cost.on / cost.off;
  const aheadOn = ahead.filter((a) => a.on);
  const aheadOff = ahead.filter((a) => !a.on);
  const sum = (xs: AheadRun[], f: (a: AheadRun) => number) => xs.reduce((n, a) => n + f(a), 0);
  const goals = [
    `hotkeys accuracy: worst top-10 precision ${p10.toFixed(2)}, top-100 ${p100.toFixed(2)} (goal ≥ 0.9: ${met(p10 >= 0.9 && p100 >= 0.9)}); worst rate error of a top-10 key ${pct(err)} (goal ≤ 10 %: ${met(err <= 0.1)})`,
    `hotkeys detection: a key jumping to ${JUMP_RATE}/s is listed after ${detections.map((d) => msOf(d.listedMs)).join(', ')} and at ≥ ${THRESHOLD}/s after ${detections.map((d) => msOf(d.rateMs)).join(', ')} (goal ≤ 2 s: ${met(slowest <= 2000)})`,
    `hotkeys refresh-ahead: the prober's STALE/MISS answers on the hot key ${sum(aheadOn, (a) => a.stale)}/${sum(aheadOn, (a) => a.miss)} of ${sum(aheadOn, (a) => a.probes)} with it, ${sum(aheadOff, (a) => a.stale)}/${sum(aheadOff, (a) => a.miss)} of ${sum(aheadOff, (a) => a.probes)} without; Redis GETs per soft TTL ${aheadOn.map((a) => a.getsPerSoftTtl.toFixed(2)).join(', ')} with, ${aheadOff.map((a) => a.getsPerSoftTtl.toFixed(2)).join(', ')} without (goal: no stale or miss while hot: ${met(sum(aheadOn, (a) => a.stale + a.miss) === 0)})`,
    `hotkeys overhead: hot key through the gateway with hot keys on ${formatRate(cost.on)} req/s, off ${formatRate(cost.off)} req/s = ${formatRatio(ratio)}, CPU per request ${cost.cpuOn.toFixed(1)} against ${cost.cpuOff.toFixed(1)} µs (this VM's noise: ±10 %); in-process hit ${inProcess.nsOn.toFixed(1)} ns on, ${inProcess.nsOff.toFixed(1)} ns off = ${formatRatio(inProcess.ratio)} (goal ≥ 0.97×, in-process, where it resolves: ${met(inProcess.ratio >= 0.97)})`,
  ];
  return {
    name: 'hotkeys',
    record: {
      settings: { rounds: suite.rounds, seconds: suite.seconds, accuracySeconds: seconds },
      accuracy,
      detections,
      overhead: cost,
      inProcess,
      refreshAhead: ahead,
    },
    report:
      `### hotkeys: accuracy against exact counts (Zipf traces at 100,000 events/s, ${seconds} s each), detection latency, hit-path cost\n\n` +
      markdownTable(
        [
          'Zipf s',
          'keys',
          'precision top 10',
          'precision top 100',
          'rate error top 10 (max / mean)',
          'records',
          'feed ns/event',
        ],
        accuracy.map((c) => [
          String(c.s),
          String(c.keys),
          c.precisionAt10.toFixed(2),
          c.precisionAt100.toFixed(2),
          `${pct(c.rateErrorMax)} / ${pct(c.rateErrorMean)}`,
          String(c.records),
          c.feedNsPerEvent.toFixed(0),
        ]),
      ) +
      `\n\nDetection (a new key at ${JUMP_RATE}/s under a Zipf load over ${ZIPF_KEYS} keys; sent ${detections.map((d) => d.sentPerSecond.toFixed(0)).join(', ')}/s): listed after ${detections.map((d) => msOf(d.listedMs)).join(', ')}; at ≥ ${THRESHOLD}/s after ${detections.map((d) => msOf(d.rateMs)).join(', ')}.\n\n` +
      `Refresh-ahead (hot key under load, soft TTL ${base.softTtlMs / 1000} s, a prober reading it one request after another): ${ahead.map((a) => `${a.on ? 'on' : 'off'} ${a.stale} stale + ${a.miss} miss of ${a.probes}, ${a.getsPerSoftTtl.toFixed(2)} GETs per soft TTL`).join('; ')}.\n\n` +
      `Hit path, hot key, ${2 * suite.rounds} runs each, in turn: hot keys on ${cost.runs.on.map((m) => formatRate(m.requestsPerSecond)).join(', ')} req/s; off ${cost.runs.off.map((m) => formatRate(m.requestsPerSecond)).join(', ')} req/s (medians ${formatRatio(ratio)}); server CPU per request ${cost.cpuOn.toFixed(1)} µs on, ${cost.cpuOff.toFixed(1)} µs off. In-process, \`tier.peek\` of the hot key (median of ${inProcess.runs} alternating runs of 200,000): ${inProcess.nsOn.toFixed(1)} ns with hot keys on, ${inProcess.nsOff.toFixed(1)} ns off (${formatRatio(inProcess.ratio)}).`,
    goals,
  };
}
