/**
 * coherence: how soon after a write each node serves the new value, while a hot key is
 * read under load, and what coherence costs the hit path.
 *
 * Staleness: two hotshield gateway processes ("pods", coherence on, the suite's soft
 * TTL), the hot key under load on both (load generator, `connections` each), and a
 * writer changing the key 10 times a second for the run: the even writes by a plain
 * Redis client, the odd ones through pod A's PUT. A prober per pod reads the key over
 * one keep-alive connection, one request after another, and notes when each write is
 * first seen (the values are the write's sequence number, so a pod that skips a value
 * has seen the later ones). Staleness = the reply's arrival − the write's
 * acknowledgement (0 when the new value arrived first). The classic two-tier (an
 * lru-cache per process, as many processes as threads, TTL = soft TTL) is measured the
 * same way with Redis writes only (it has no PUT): its staleness is bounded by its TTL.
 * Redis GETs of the run, per write and per process, say whether invalidations cause a
 * stampede.
 *
 * Hit path: one hotshield with coherence on, one with it off (both up, measured in turn:
 * lib/switch-cost.ts), the hot key under load with no writes: the ratio of their throughput.
 */

import { Agent, request } from 'node:http';
import { snapshot } from '../lib/cluster-stats.ts';
import { type Running, startContender } from '../lib/contenders.ts';
import { runLoad } from '../lib/http-measure.ts';
import { formatRate, formatRatio, markdownTable, progress } from '../lib/report.ts';
import { percentile } from '../lib/soak-load.ts';
import { median, met, type ScenarioOutcome, type Suite } from '../lib/suite.ts';
import { switchCost } from '../lib/switch-cost.ts';

const KEY = 'bench:coh:hot';
const PATH = `/v1/kv/${KEY}`;
const WRITES_PER_SECOND = 10;
/** Keeps a value's length the same as it changes (the value is its sequence number). */
const valueNumbered = (seq: number) => `v${String(seq).padStart(10, '0')}`;

type Via = 'redis' | 'pod';
interface Write {
  seq: number;
  via: Via;
  ackAt: number;
}
interface Seen {
  /** When the prober first saw a value ≥ seq, by seq. */
  firstAt: Map<number, number>;
  probes: number;
  errors: number;
}
interface StalenessRow {
  contender: string;
  pod: string;
  via: Via;
  writes: number;
  unseen: number;
  p50: number;
  p99: number;
  max: number;
}

/** GET over `agent`; the body as text (or undefined on an error status). */
function get(agent: Agent, port: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: PATH, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => {
        body += c;
      });
      res.once('end', () => resolve(res.statusCode === 200 ? body : undefined));
    });
    req.once('timeout', () => req.destroy(new Error('probe timed out')));
    req.once('error', reject);
    req.end();
  });
}

function put(agent: Agent, port: number, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: PATH, method: 'PUT', agent, timeout: 5000 },
      (res) => {
        res.resume();
        res.once('end', () =>
          res.statusCode === 204 ? resolve() : reject(new Error(`PUT: ${res.statusCode}`)),
        );
      },
    );
    req.once('timeout', () => req.destroy(new Error('PUT timed out')));
    req.once('error', reject);
    req.end(body);
  });
}

/** Read the key through `port` until `until()`, noting when each sequence number is first seen. */
async function probe(port: number, until: () => boolean): Promise<Seen> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const seen: Seen = { firstAt: new Map(), probes: 0, errors: 0 };
  let highest = -1;
  try {
    while (!until()) {
      const body = await get(agent, port).catch(() => undefined);
      const at = performance.now();
      seen.probes++;
      const seq = body === undefined ? Number.NaN : Number(body.slice(1));
      if (!Number.isSafeInteger(seq)) {
        seen.errors++;
        continue;
      }
      for (let s = highest + 1; s <= seq; s++) seen.firstAt.set(s, at);
      highest = Math.max(highest, seq);
    }
  } finally {
    agent.destroy();
  }
  return seen;
}

/** Staleness of `writes` as `seen` saw them, one row per write path. */
function staleness(contender: string, pod: string, writes: Write[], seen: Seen): StalenessRow[] {
  const rows: StalenessRow[] = [];
  for (const via of ['redis', 'pod'] as const) {
    const mine = writes.filter((w) => w.via === via);
    if (mine.length === 0) continue;
    const ms = mine
      .map((w) => seen.firstAt.get(w.seq))
      .map((at, i) => (at === undefined ? undefined : Math.max(0, at - mine[i].ackAt)))
      .filter((x): x is number => x !== undefined)
      .sort((a, b) => a - b);
    rows.push({
      contender,
      pod,
      via,
      writes: mine.length,
      unseen: mine.length - ms.length,
      p50: ms.length ? percentile(ms, 0.5) : Number.NaN,
      p99: ms.length ? percentile(ms, 0.99) : Number.NaN,
      max: ms.length ? ms[ms.length - 1] : Number.NaN,
    });
  }
  return rows;
}

interface RunOptions {
  /** Half the writes through pod A's PUT (hotshield only), the rest by a Redis client. */
  viaPod: boolean;
  /** Write at all: without, the run measures what an unchanging hot key costs Redis. */
  writing: boolean;
  /** The pods' soft TTL. */
  softTtlMs: number;
  /** How long after the last write the probers keep looking. */
  tailMs: number;
}

/** One staleness run over `pods`: load on each, the writer, a prober per pod. */
async function stalenessRun(
  suite: Suite,
  contender: string,
  pods: Running[],
  options: RunOptions,
): Promise<{
  rows: StalenessRow[];
  getsPerWritePerProcess: number;
  /** Redis GETs of the key in the run, per process; and the run's length. */
  getsPerProcess: number;
  runSeconds: number;
  /** GETs beyond one per write per process, and what the first reads and soft TTL allow. */
  extraGets: number;
  allowedExtra: number;
  requestsPerSecond: number;
}> {
  const seconds = suite.seconds;
  await suite.redis.set(KEY, valueNumbered(0));
  const writes: Write[] = [];
  let done = false;
  const before = await getCalls(suite);
  const load = runLoad({
    urls: pods.map((p) => p.url('/')),
    tool: suite.loadgens.includes('wrk') ? 'wrk' : 'autocannon',
    connections: Math.max(1, Math.floor(suite.connections / pods.length)),
    pipelining: 1,
    seconds,
    path: PATH,
  });
  const probes = pods.map((p) => probe(p.port, () => done));
  const writer = (async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // Let the load and the probers settle first; stop a little before the load does.
      await sleep(500);
      const endAt = performance.now() + (seconds - 1.5) * 1000;
      for (let seq = 1; options.writing && performance.now() < endAt; seq++) {
        const next = performance.now() + 1000 / WRITES_PER_SECOND;
        const via: Via = options.viaPod && seq % 2 === 1 ? 'pod' : 'redis';
        if (via === 'pod') await put(agent, pods[0].port, valueNumbered(seq));
        else await suite.redis.set(KEY, valueNumbered(seq));
        writes.push({ seq, via, ackAt: performance.now() });
        await sleep(Math.max(0, next - performance.now()));
      }
      if (!options.writing) await sleep(Math.max(0, endAt - performance.now()));
      await sleep(options.tailMs);
    } finally {
      agent.destroy();
      done = true;
    }
  })();
  const [loaded, seen] = await Promise.all([load, Promise.all(probes), writer]);
  const gets = (await getCalls(suite)) - before;
  const processes = contender === 'hotshield' ? pods.length : suite.threads;
  const runSeconds = seconds + options.tailMs / 1000;
  return {
    rows: seen.flatMap((s, i) => staleness(contender, `pod ${'AB'[i]}`, writes, s)),
    getsPerWritePerProcess: gets / Math.max(1, writes.length) / processes,
    getsPerProcess: gets / processes,
    runSeconds,
    extraGets: gets - writes.length * processes,
    // Each process's first read, and one refresh per soft TTL when no write came in time.
    allowedExtra: processes * (1 + Math.ceil((runSeconds * 1000) / options.softTtlMs)),
    requestsPerSecond: loaded.results.reduce((s, r) => s + r.requestsPerSecond, 0),
  };
}

async function getCalls(suite: Suite): Promise<number> {
  const nodes = await snapshot(suite.redisPorts);
  return nodes.reduce((s, n) => s + (n.calls.get ?? 0), 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function coherence(suite: Suite): Promise<ScenarioOutcome> {
  const base = {
    seeds: suite.cluster.seeds,
    softTtlMs: suite.softTtlMs,
    bodyBytes: valueNumbered(0).length,
    l1Bytes: 64 * 1024 * 1024,
  };
  const rows: StalenessRow[] = [];
  const gets: Record<string, number[]> = { hotshield: [], classic: [] };
  const extra: Array<{ extraGets: number; allowedExtra: number }> = [];
  for (let round = 0; round < suite.rounds; round++) {
    for (const contender of round % 2 === 0 ? ['hotshield', 'classic'] : ['classic', 'hotshield']) {
      const pods =
        contender === 'hotshield'
          ? await Promise.all(
              [0, 1].map(() => startContender('hotshield', { ...base, threads: 1 })),
            )
          : [await startContender('classic', { ...base, threads: suite.threads })];
      try {
        const run = await stalenessRun(suite, contender, pods, {
          viaPod: contender === 'hotshield',
          writing: true,
          softTtlMs: suite.softTtlMs,
          // Give the last write as long as the classic's TTL to be seen.
          tailMs: suite.softTtlMs + 200,
        });
        rows.push(...run.rows);
        gets[contender].push(run.getsPerWritePerProcess);
        if (contender === 'hotshield') extra.push(run);
        progress(
          `coherence ${contender} (round ${round + 1}/${suite.rounds}): ${run.rows.map((r) => `${r.pod} via ${r.via} p99 ${r.p99.toFixed(1)} ms`).join('; ')}; ${run.getsPerWritePerProcess.toFixed(2)} GETs per write per process`,
        );
      } finally {
        await Promise.all(pods.map((p) => p.stop()));
      }
    }
  }
  const hit = await hitPathCost(suite, base);
  const sweep = await softTtlSweep(suite, base);

  const summary = (contender: string, via: Via) => {
    const mine = rows.filter((r) => r.contender === contender && r.via === via);
    return mine.length === 0
      ? undefined
      : {
          p50: median(mine.map((r) => r.p50)),
          p99: Math.max(...mine.map((r) => r.p99)),
          max: Math.max(...mine.map((r) => r.max)),
          unseen: mine.reduce((s, r) => s + r.unseen, 0),
        };
  };
  const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
  const goals: string[] = [];
  const viaPod = summary('hotshield', 'pod');
  const viaRedis = summary('hotshield', 'redis');
  const classic = summary('classic', 'redis');
  if (viaPod !== undefined)
    goals.push(
      `coherence, writes through hotshield: staleness p99 ${ms(viaPod.p99)} ms (worst pod and round), max ${ms(viaPod.max)} ms, ${viaPod.unseen} never seen (goal p99 ≤ 50 ms: ${met(viaPod.p99 <= 50 && viaPod.unseen === 0)})`,
    );
  if (viaRedis !== undefined)
    goals.push(
      `coherence, writes by another Redis client: staleness p99 ${ms(viaRedis.p99)} ms, max ${ms(viaRedis.max)} ms, ${viaRedis.unseen} never seen (goal p99 ≤ 100 ms: ${met(viaRedis.p99 <= 100 && viaRedis.unseen === 0)})${classic === undefined ? '' : `; classic two-tier p99 ${ms(classic.p99)} ms`}`,
    );
  const hsGets = median(gets.hotshield);
  const worstExtra = Math.max(...extra.map((e) => e.extraGets - e.allowedExtra));
  goals.push(
    `coherence: ${hsGets.toFixed(2)} Redis GETs of the hot key per write per process (median of rounds); beyond one per write per process: ${extra.map((e) => `${e.extraGets} (allowed ${e.allowedExtra}: first reads, soft-TTL refreshes)`).join(', ')} (goal ≤ 1 per invalidation per process: ${met(worstExtra <= 0)})`,
  );
  goals.push(
    `coherence hit path: hot key with coherence on ${formatRate(hit.on)} req/s, off ${formatRate(hit.off)} req/s = ${formatRatio(hit.on / hit.off)} (goal ≥ 0.98×: ${met(hit.on >= 0.98 * hit.off)})`,
  );
  return {
    name: 'coherence',
    record: {
      settings: { rounds: suite.rounds, seconds: suite.seconds },
      rows,
      gets,
      extra,
      hit,
      sweep,
    },
    report:
      `### coherence: a hot key read under load on two pods, written ${WRITES_PER_SECOND}×/s (by Redis directly and through pod A); staleness = first reply with the new value − the write's acknowledgement\n\n` +
      markdownTable(
        ['contender', 'pod', 'writes via', 'writes', 'never seen', 'p50 ms', 'p99 ms', 'max ms'],
        rows.map((r) => [
          r.contender,
          r.pod,
          r.via,
          String(r.writes),
          String(r.unseen),
          ms(r.p50),
          ms(r.p99),
          ms(r.max),
        ]),
      ) +
      `\n\nRedis GETs of the key per write per process (each round): hotshield ${gets.hotshield.map((g) => g.toFixed(2)).join(', ')}; classic ${gets.classic.map((g) => g.toFixed(2)).join(', ')}.\n\n` +
      `Hit path, hot key, no writes, ${2 * suite.rounds} runs each, in turn: coherence on ${hit.ons.map(formatRate).join(', ')} req/s; off ${hit.offs.map(formatRate).join(', ')} req/s.\n\n` +
      `Soft TTL with coherence on (two pods, one run each): the hot key unchanged for ${suite.seconds} s, then written ${WRITES_PER_SECOND}×/s\n\n` +
      markdownTable(
        [
          'soft TTL',
          'unchanged: Redis GETs per process',
          'written: GETs per write per process',
          'staleness p99 ms (via Redis / via pod)',
          'never seen',
        ],
        sweep.map((r) => [
          `${r.softTtlMs / 1000} s`,
          r.idleGetsPerProcess.toFixed(1),
          r.getsPerWritePerProcess.toFixed(2),
          `${ms(r.p99Redis)} / ${ms(r.p99Pod)}`,
          String(r.unseen),
        ]),
      ) +
      '\n',
    goals,
  };
}

/** The soft TTLs the default was chosen among (issue: 3 s, 30 s, 60 s). */
const SWEEP_SOFT_TTLS_MS = [3000, 30_000, 60_000];

interface SweepRow {
  softTtlMs: number;
  /** GETs of the unchanging hot key per process over the run (the first read included). */
  idleGetsPerProcess: number;
  getsPerWritePerProcess: number;
  p99Redis: number;
  p99Pod: number;
  unseen: number;
}

/**
 * What the soft TTL buys once coherence is on: Redis GETs of a hot key nobody writes (one
 * per soft TTL per process, after the first) and, with writes, staleness (which coherence,
 * not the TTL, should bound) and GETs per write.
 */
async function softTtlSweep(
  suite: Suite,
  base: { seeds: string; softTtlMs: number; bodyBytes: number; l1Bytes: number },
): Promise<SweepRow[]> {
  const out: SweepRow[] = [];
  for (const softTtlMs of SWEEP_SOFT_TTLS_MS) {
    const pods = await Promise.all(
      [0, 1].map(() => startContender('hotshield', { ...base, softTtlMs, threads: 1 })),
    );
    try {
      const run = (writing: boolean) =>
        stalenessRun(suite, 'hotshield', pods, { viaPod: true, writing, softTtlMs, tailMs: 500 });
      const idle = await run(false);
      const written = await run(true);
      const p99 = (via: Via) =>
        Math.max(...written.rows.filter((r) => r.via === via).map((r) => r.p99));
      const row: SweepRow = {
        softTtlMs,
        idleGetsPerProcess: idle.getsPerProcess,
        getsPerWritePerProcess: written.getsPerWritePerProcess,
        p99Redis: p99('redis'),
        p99Pod: p99('pod'),
        unseen: written.rows.reduce((n, r) => n + r.unseen, 0),
      };
      out.push(row);
      progress(
        `coherence soft TTL ${softTtlMs / 1000} s: unchanged key ${row.idleGetsPerProcess.toFixed(1)} GETs per process in ${idle.runSeconds.toFixed(1)} s; written ${row.getsPerWritePerProcess.toFixed(2)} GETs per write per process, staleness p99 ${row.p99Redis.toFixed(1)} / ${row.p99Pod.toFixed(1)} ms`,
      );
    } finally {
      await Promise.all(pods.map((p) => p.stop()));
    }
  }
  return out;
}

/** The hot key's throughput with coherence on and off, rotated rounds; medians. */
async function hitPathCost(
  suite: Suite,
  base: { seeds: string; softTtlMs: number; bodyBytes: number; l1Bytes: number },
): Promise<{ on: number; off: number; ons: number[]; offs: number[] }> {
  await suite.redis.set(KEY, valueNumbered(0));
  const runs = await switchCost(suite, base, {
    flag: '--coherence',
    path: PATH,
    label: 'coherence hit path',
  });
  const ons = runs.on.map((m) => m.requestsPerSecond);
  const offs = runs.off.map((m) => m.requestsPerSecond);
  return { on: median(ons), off: median(offs), ons, offs };
}
