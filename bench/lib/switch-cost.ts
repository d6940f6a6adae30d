/**
 * What a gateway switch costs a hot key's hit path: hotshield with the switch on and
 * with it off, one fresh gateway per run, in rotated rounds (on first in even rounds),
 * the hot key under the suite's load generator. Used by the coherence and hotkeys
 * scenarios.
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
  for (let round = 0; round < suite.rounds; round++) {
    for (const on of round % 2 === 0 ? [true, false] : [false, true]) {
      const pod = await startContender('hotshield', {
        ...base,
        threads: suite.threads,
        extraArgs: [o.flag, on ? 'on' : 'off'],
      });
      try {
        const m = await measure({
          label: `${o.label} (${on ? 'on' : 'off'})`,
          serverPids: [pod.pid],
          redisPorts: suite.redisPorts,
          spec: {
            urls: [pod.url('/')],
            tool: suite.loadgens.includes('wrk') ? 'wrk' : 'autocannon',
            connections: suite.connections,
            pipelining: 1,
            seconds: suite.seconds,
            path: o.path,
          },
          progress,
        });
        runs[on ? 'on' : 'off'].push(m);
      } finally {
        await pod.stop();
      }
    }
  }
  return runs;
}
