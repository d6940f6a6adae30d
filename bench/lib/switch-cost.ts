/**
 * What a gateway switch costs a hot key's hit path: two hotshield gateways, one with the
 * switch on and one with it off, both up for the whole measurement (a fresh start per
 * run added its own noise), each warmed, then measured in turn, `2 × rounds` runs each,
 * the order swapped every pair. Used by the coherence and hotkeys scenarios.
 */

import { startContender } from './contenders.ts';
import { type Measurement, measure } from './http-measure.ts';
import { progress } from './report.ts';
import type { Suite } from './suite.ts';

export interface SwitchRuns {
  on: Measurement[];
  off: Measurement[];
}

export async function switchCost(
  suite: Suite,
  base: { seeds: string; softTtlMs: number; bodyBytes: number; l1Bytes: number },
  o: { flag: string; path: string; label: string },
): Promise<SwitchRuns> {
  const runs: SwitchRuns = { on: [], off: [] };
  const pods = {
    on: await startContender('hotshield', {
      ...base,
      threads: suite.threads,
      extraArgs: [o.flag, 'on'],
    }),
    off: await startContender('hotshield', {
      ...base,
      threads: suite.threads,
      extraArgs: [o.flag, 'off'],
    }),
  };
  const run = (side: 'on' | 'off', seconds: number) =>
    measure({
      label: `${o.label} (${side})`,
      serverPids: [pods[side].pid],
      redisPorts: suite.redisPorts,
      spec: {
        urls: [pods[side].url('/')],
        tool: suite.loadgens.includes('wrk') ? 'wrk' : 'autocannon',
        connections: suite.connections,
        pipelining: 1,
        seconds,
        path: o.path,
      },
      progress,
    });
  try {
    await run('on', 2);
    await run('off', 2);
    for (let i = 0; i < 2 * suite.rounds; i++) {
      for (const side of i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const))
        runs[side].push(await run(side, suite.seconds));
    }
  } finally {
    await pods.on.stop();
    await pods.off.stop();
  }
  return runs;
}
