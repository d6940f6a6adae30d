/**
 * scale-out: K gateway nodes (separate processes, as if K pods behind a load balancer)
 * in front of one cluster, all hammering one hot key. The hot key's master should see
 * about K GETs per soft TTL for hotshield (one refresher per node), whatever the request
 * rate; the article's 50 pods with a 3 s TTL → ~16 GETs/s. Each pod is one process with
 * one HTTP thread; the load is spread evenly over the pods.
 */

import { type ContenderName, type Running, startContender } from '../lib/contenders.ts';
import { measure } from '../lib/http-measure.ts';
import { formatRate, markdownTable, progress } from '../lib/report.ts';
import { median, met, ownerPort, type ScenarioOutcome, type Suite } from '../lib/suite.ts';

const HOT_KEY = 'bench:scale:hot';
const PODS_IN_ARTICLE = 50;

export async function scaleOut(suite: Suite): Promise<ScenarioOutcome> {
  await suite.redis.set(HOT_KEY, Buffer.alloc(64, 's'));
  const hotNodePort = await ownerPort(suite, HOT_KEY);
  const podCounts = suite.quick ? [1, 2] : [1, 2, 4];
  const contenders = suite.contenders.filter(
    (c): c is ContenderName => c === 'hotshield' || c === 'classic',
  );
  const rows: Array<{
    contender: ContenderName;
    pods: number;
    requestsPerSecond: number;
    hotGetsPerSecond: number;
    runs: number[];
  }> = [];
  for (const contender of contenders) {
    for (const pods of podCounts) {
      const gets: number[] = [];
      const rates: number[] = [];
      for (let round = 0; round < suite.rounds; round++) {
        const running: Running[] = [];
        try {
          for (let i = 0; i < pods; i++) {
            running.push(
              await startContender(contender, {
                seeds: suite.cluster.seeds,
                threads: 1,
                softTtlMs: suite.softTtlMs,
                bodyBytes: 64,
                l1Bytes: 64 * 1024 * 1024,
              }),
            );
          }
          const m = await measure({
            label: `scale-out ${contender} ${pods} pod(s) (round ${round + 1}/${suite.rounds})`,
            serverPids: running.map((r) => r.pid),
            redisPorts: suite.redisPorts,
            hotNodePort,
            progress,
            spec: {
              urls: running.map((r) => r.url('/')),
              connections: Math.max(1, Math.floor(suite.connections / pods)),
              pipelining: 1,
              seconds: suite.seconds,
              path: `/v1/kv/${HOT_KEY}`,
            },
          });
          gets.push(m.hotNodeGetsPerSecond ?? 0);
          rates.push(m.requestsPerSecond);
        } finally {
          await Promise.all(running.map((r) => r.stop()));
        }
      }
      rows.push({
        contender,
        pods,
        requestsPerSecond: median(rates),
        hotGetsPerSecond: median(gets),
        runs: gets,
      });
    }
  }
  const softS = suite.softTtlMs / 1000;
  const goals: string[] = [];
  const extrapolated = (c: ContenderName) => {
    const last = rows.filter((r) => r.contender === c).at(-1);
    return last === undefined ? undefined : (last.hotGetsPerSecond / last.pods) * PODS_IN_ARTICLE;
  };
  const hs = extrapolated('hotshield');
  if (hs !== undefined) {
    goals.push(
      `scale-out: hotshield's hot-key GETs/s grow with pods, not with requests; extrapolated to ${PODS_IN_ARTICLE} pods: ${hs.toFixed(1)} GETs/s (article: ${PODS_IN_ARTICLE} ÷ ${softS} s ≈ ${(PODS_IN_ARTICLE / softS).toFixed(1)}; within 2×: ${met(hs <= (2 * PODS_IN_ARTICLE) / softS)})`,
    );
  }
  return {
    name: 'scale-out',
    record: {
      settings: {
        podCounts,
        rounds: suite.rounds,
        seconds: suite.seconds,
        softTtlMs: suite.softTtlMs,
        hotNodePort,
      },
      rows,
    },
    report:
      `### scale-out: K pods (one process, one HTTP thread each) behind one load generator, one hot key, ${suite.seconds} s per run, soft TTL ${softS} s\n\n` +
      markdownTable(
        [
          'contender',
          'pods',
          'req/s (median, all pods)',
          'hot-node GETs/s',
          `ideal K ÷ soft TTL`,
          `extrapolated to ${PODS_IN_ARTICLE} pods`,
        ],
        rows.map((r) => [
          r.contender,
          String(r.pods),
          formatRate(r.requestsPerSecond),
          r.hotGetsPerSecond.toFixed(2),
          (r.pods / softS).toFixed(2),
          ((r.hotGetsPerSecond / r.pods) * PODS_IN_ARTICLE).toFixed(1),
        ]),
      ),
    goals,
    chart: [
      {
        categories: podCounts.map((k) => `${k} pod${k > 1 ? 's' : ''}`),
        series: contenders.map((c) => ({
          name: c,
          values: podCounts.map(
            (k) => rows.find((r) => r.contender === c && r.pods === k)?.hotGetsPerSecond ?? 0,
          ),
        })),
        yLabel: 'GETs/s on the hot key master',
      },
    ],
  };
}
