/**
 * The thread ↔ refresher transport under torture: 10^6 asks (every one a miss: soft TTL
 * 1 ms, no stale window) from 4 threads, while the refresher is killed three times and
 * two more asking threads are terminated mid-ask. Every ask of the 4 threads settles —
 * with its key's own value or a typed error — none hangs, and none of their callers is
 * left waiting; the tier serves again afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { refresherThreadsOf } from '../../src/tier/create.ts';
import { tierMaker, useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';
import type { AskTortureData, AskTortureTally } from '../fixtures/workers/ask-torture-worker.ts';
import { nextMessage, startWorker } from '../fixtures/workers/threads.ts';

const cluster = useOwnCluster();
const tierFor = tierMaker(cluster, { codec: 'utf8' });

const KEYS = 5000;
const PREFIX = 'tt:';
const THREADS = 4;
const ASKS = 250_000;
/** Codes a caller may get while its refresher dies and is replaced. */
const TYPED = ['HS_ERR_TIMEOUT', 'HS_ERR_L2_UNAVAILABLE', 'HS_ERR_L2_TIMEOUT', 'HS_ERR_QUEUE_FULL'];

describe('transport torture', () => {
  it(`${THREADS} threads × ${ASKS.toLocaleString('en')} misses, refresher killed 3×, 2 asking threads terminated: every ask answered, right or typed, none left waiting`, {
    timeout: 240_000,
  }, async () => {
    const redis = clusterClient(cluster.seeds);
    for (let i = 0; i < KEYS; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, KEYS - i) }, (_, j) =>
          redis.set(PREFIX + (i + j), `v${i + j}`),
        ),
      );
    }
    const tier = await tierFor({ softTtl: 1, staleTtl: 0, requestTimeout: '5s' });
    const progress = new SharedArrayBuffer(4);
    const file = new URL('../fixtures/workers/ask-torture-worker.ts', import.meta.url);
    const start = (asks: number, lanes: number) => {
      const data: AskTortureData = {
        handle: tier.handle,
        asks,
        keys: KEYS,
        lanes,
        prefix: PREFIX,
        progress,
      };
      return startWorker(file, data);
    };
    const checked = Array.from({ length: THREADS }, (_, t) => start(ASKS, 32 + t * 16));
    const victims = [start(0, 48), start(0, 48)];
    const all = [...checked, ...victims];
    await Promise.all(all.map((w) => nextMessage<string>(w)));
    const tallies = Promise.all(checked.map((w) => nextMessage<AskTortureTally>(w)));
    for (const w of all) w.postMessage('go');

    const total = THREADS * ASKS;
    const settledSoFar = () => Atomics.load(new Int32Array(progress), 0);
    const killRefresher = async () => {
      const generation = tier.stats().refresher.generation;
      await refresherThreadsOf(tier)[0]?.terminate();
      // Its successor must be up before the next kill means anything.
      for (let i = 0; i < 250 && tier.stats().refresher.generation <= generation; i++)
        await sleep(20);
    };
    const faults: Array<{ at: number; fault: () => Promise<unknown> }> = [
      { at: 0.15, fault: killRefresher },
      { at: 0.3, fault: () => victims[0].terminate() },
      { at: 0.45, fault: killRefresher },
      { at: 0.6, fault: () => victims[1].terminate() },
      { at: 0.75, fault: killRefresher },
    ];
    let killed = 0;
    for (const { at, fault } of faults) {
      while (settledSoFar() < at * total) await sleep(20);
      await fault();
      killed++;
    }
    const results = await tallies;
    expect(killed).toBe(faults.length);

    const settled = results.reduce((n, r) => n + r.settled, 0);
    const right = results.reduce((n, r) => n + r.right, 0);
    const errors: Record<string, number> = {};
    for (const r of results)
      for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
    console.log(
      `transport torture: ${settled} asks settled, ${right} with the right value, errors ${JSON.stringify(errors)}, respawns ${tier.stats().tier.respawns}`,
    );
    expect(settled).toBe(total);
    expect(results.flatMap((r) => r.wrong)).toEqual([]);
    for (const code of Object.keys(errors)) expect(TYPED).toContain(code);
    // A successor refresher is asked again for every key still awaited (its hello): an
    // ask lost with the old one would wait out its 5 s and fail HS_ERR_TIMEOUT.
    expect(errors.HS_ERR_TIMEOUT ?? 0).toBe(0);
    expect(right + Object.values(errors).reduce((a, b) => a + b, 0)).toBe(total);
    // The faults cost a few seconds of errors at most, not the run.
    expect(right).toBeGreaterThan(total * 0.8);
    for (const r of results)
      expect({ waiting: r.waiting, pendingKeys: r.pendingKeys }).toEqual({
        waiting: 0,
        pendingKeys: 0,
      });
    expect(tier.stats().tier.respawns).toBe(3);
    expect(tier.stats().refresher.generation).toBe(4);
    // And the tier serves, from Redis, afterwards.
    expect(await tier.get(`${PREFIX}7`)).toBe('v7');
  });
});
