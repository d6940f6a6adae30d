/**
 * `npm run bench`: the hot-key benchmark suite. One Redis Cluster (3 masters), the
 * contenders of bench/lib/contenders.ts with the same thread budget, autocannon as a
 * separate process on the same cores. Contenders run in rotated order over several
 * rounds and each cell is the median (bench/lib/suite.ts).
 *
 *   npm run bench [-- --quick] [--scenario tsunami,zipf,single-miss,scale-out,counters,coherence,hotkeys,slow-l2] [--contenders ceiling,hotshield]
 *                 [--rounds N] [--seconds N] [--threads N] [--loadgen autocannon,wrk] [--jit-warm S]
 *
 * Writes bench/results/<date>-<scenario>.json and bench/results/<scenario>.svg, and
 * prints a markdown report with ratios against `ceiling` and `l2-only` (counters:
 * `direct-incr`) from this run.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Cluster } from 'ioredis';
import { startRedisCluster } from '../src/dev/redis-cluster.ts';
import { ALL_CONTENDERS, type ContenderName } from './lib/contenders.ts';
import { machine } from './lib/machine.ts';
import { writeJson } from './lib/report.ts';
import { JIT_WARM_KEY, type ScenarioOutcome, type Suite } from './lib/suite.ts';
import { groupedBarChart } from './lib/svg.ts';
import { wrkAvailable } from './lib/wrk.ts';
import { coherence } from './scenarios/coherence.ts';
import { counters } from './scenarios/counters.ts';
import { hotkeys } from './scenarios/hotkeys.ts';
import { scaleOut } from './scenarios/scale-out.ts';
import { singleMiss } from './scenarios/single-miss.ts';
import { slowL2 } from './scenarios/slow-l2.ts';
import { tsunami } from './scenarios/tsunami.ts';
import { zipf } from './scenarios/zipf.ts';

const SCENARIOS: Record<string, (suite: Suite) => Promise<ScenarioOutcome>> = {
  tsunami,
  zipf,
  'single-miss': singleMiss,
  'scale-out': scaleOut,
  counters,
  coherence,
  hotkeys,
  // Last: it re-routes the cluster through proxies for its duration.
  'slow-l2': slowL2,
};

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string', default: Object.keys(SCENARIOS).join(',') },
    contenders: { type: 'string', default: ALL_CONTENDERS.join(',') },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    threads: { type: 'string', default: '2' },
    loadgen: { type: 'string' },
    'jit-warm': { type: 'string' },
  },
});
const quick = values.quick === true;
const wanted = String(values.contenders).split(',');
const unknown = wanted.filter((c) => !(ALL_CONTENDERS as readonly string[]).includes(c));
if (unknown.length > 0)
  throw new Error(
    `unknown contender(s) ${unknown.join(', ')}; known: ${ALL_CONTENDERS.join(', ')}`,
  );
const scenarios = String(values.scenario).split(',');
const unknownScenarios = scenarios.filter((s) => SCENARIOS[s] === undefined);
if (unknownScenarios.length > 0)
  throw new Error(
    `unknown scenario(s) ${unknownScenarios.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`,
  );

// wrk joins autocannon wherever it is installed, unless --loadgen says otherwise.
const loadgens = String(values.loadgen ?? (wrkAvailable() ? 'autocannon,wrk' : 'autocannon'))
  .split(',')
  .map((t) => {
    if (t !== 'autocannon' && t !== 'wrk') throw new Error(`unknown load generator ${t}`);
    if (t === 'wrk' && !wrkAvailable()) throw new Error('--loadgen wrk: wrk is not on PATH');
    return t;
  });

const m = machine();
const date = m.date.slice(0, 10);
const results = new URL('./results/', import.meta.url);
const cluster = await startRedisCluster({ masters: 3 });
const redis = new Cluster(cluster.seeds.split(','));
await redis.set(JIT_WARM_KEY, Buffer.alloc(64, 'w'));
const suite: Suite = {
  quick,
  rounds: Number(values.rounds ?? (quick ? 1 : 2)),
  seconds: Number(values.seconds ?? (quick ? 3 : 8)),
  threads: Number(values.threads),
  connections: 100,
  softTtlMs: 3000,
  contenders: ALL_CONTENDERS.filter((c) => wanted.includes(c)) as ContenderName[],
  cluster,
  redis,
  redisPorts: cluster.nodes.map((n) => n.port),
  machine: m,
  loadgens,
  jitWarmSeconds: Number(values['jit-warm'] ?? (quick ? 1 : 2)),
};

/** Charts stacked vertically in one SVG document. */
function stacked(charts: string[], width = 720, height = 400): string {
  const inner = charts.map((svg, i) => svg.replace(/^<svg /, `<svg y="${i * height}" `)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height * charts.length}" viewBox="0 0 ${width} ${height * charts.length}">\n${inner}\n</svg>\n`;
}

const outcomes: ScenarioOutcome[] = [];
try {
  for (const name of scenarios) {
    const outcome = await SCENARIOS[name](suite);
    outcomes.push(outcome);
    // A --quick run is a smoke test: its files never replace a full run's.
    const suffix = quick ? '-quick' : '';
    writeJson(new URL(`${date}-${name}${suffix}.json`, results).pathname, {
      machine: m,
      ...(outcome.record as object),
    });
    if (outcome.chart) {
      const svgs = outcome.chart.map((c) =>
        groupedBarChart({ title: `${name}: ${c.yLabel}`, width: 720, height: 400, ...c }).replace(
          /^<\?xml[^>]*>\s*/,
          '',
        ),
      );
      writeFileSync(new URL(`${name}${suffix}.svg`, results), stacked(svgs));
    }
  }
} finally {
  redis.disconnect();
  await cluster.stop();
}

console.log(
  `\n## hotshield benchmark (${quick ? 'quick' : 'full'}): Node ${m.node}, ${m.cpuModel}, ${m.cores} cores, commit ${m.gitCommit.slice(0, 7)}, ${date}\n`,
);
console.log(
  `${suite.threads} HTTP threads (classic: ${suite.threads} processes); ${suite.rounds} round(s) in rotated order, median shown. ` +
    `Load generators: ${loadgens.join(' and ')} (a variant marked "wrk" ran under wrk), each a separate process on the same cores: its CPU is the "loadgen CPU s" column.\n`,
);
for (const o of outcomes) {
  const chart = o.chart ? `\n\nChart: bench/results/${o.name}${quick ? '-quick' : ''}.svg` : '';
  console.log(`${o.report}${chart}\n`);
}
const goals = outcomes.flatMap((o) => o.goals);
if (goals.length > 0) console.log(`### goals\n\n${goals.map((g) => `- ${g}`).join('\n')}\n`);
