/**
 * A piscina pool of workers answering lookups of a few hot keys, two ways:
 *
 * - `shared`: the workers attach to one hotshield tier (one L1 for the whole pool, one
 *   refresher): Redis sees one GET per key per soft TTL, however many workers.
 * - `per-worker`: each worker has its own LRU cache and Redis client: one GET per key
 *   per worker.
 *
 * Run it: `node examples/piscina/main.ts` (starts a throwaway Redis Cluster), or point
 * it at yours with HOTSHIELD_REDIS=host:port,… . It prints the Redis GETs each way.
 */
import { Redis } from 'ioredis';
import { Piscina } from 'piscina';
import { startRedisCluster } from '../../src/dev/redis-cluster.ts';
import { createTier } from '../../src/index.ts';

export interface ExampleResult {
  mode: 'shared' | 'per-worker';
  lookups: number;
  /** Redis GETs during the run, summed over every master (INFO commandstats). */
  redisGets: number;
  /** Lookups that did not return the key's value. */
  wrong: number;
  ms: number;
}

export interface ExampleOptions {
  seeds: string;
  mode: ExampleResult['mode'];
  workers: number;
  lookups: number;
  keys: string[];
  softTtlMs: number;
}

/** GET calls on every node of `seeds`, from INFO commandstats. */
export async function redisGets(seeds: string): Promise<number> {
  let total = 0;
  for (const seed of seeds.split(',')) {
    const [host, port] = seed.split(':');
    const node = new Redis({ host, port: Number(port), lazyConnect: true });
    try {
      await node.connect();
      const info = await node.info('commandstats');
      total += Number(/cmdstat_get:calls=(\d+)/.exec(info)?.[1] ?? 0);
    } finally {
      node.disconnect();
    }
  }
  return total;
}

export async function runExample(o: ExampleOptions): Promise<ExampleResult> {
  const tier =
    o.mode === 'shared'
      ? await createTier({ redis: o.seeds, codec: 'utf8', softTtl: o.softTtlMs, l1Bytes: '16mb' })
      : undefined;
  const pool = new Piscina({
    filename: new URL(
      o.mode === 'shared' ? './worker.ts' : './per-worker-cache.ts',
      import.meta.url,
    ).href,
    minThreads: o.workers,
    maxThreads: o.workers,
    workerData: tier ? { handle: tier.handle } : { seeds: o.seeds, ttlMs: o.softTtlMs },
  });
  try {
    const before = await redisGets(o.seeds);
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: o.lookups }, (_, i) => {
        const key = o.keys[i % o.keys.length];
        return pool.run({ key }).then((value) => value === `value of ${key}`);
      }),
    );
    const ms = performance.now() - started;
    return {
      mode: o.mode,
      lookups: o.lookups,
      redisGets: (await redisGets(o.seeds)) - before,
      wrong: answers.filter((ok) => !ok).length,
      ms,
    };
  } finally {
    await pool.destroy();
    await tier?.close();
  }
}

/** Store `value of <key>` under each key, as another application would. */
export async function seedKeys(seeds: string, keys: string[]): Promise<void> {
  const { Cluster } = await import('ioredis');
  const redis = new Cluster(seeds.split(','));
  try {
    for (const key of keys) await redis.set(key, `value of ${key}`);
  } finally {
    redis.disconnect();
  }
}

if (import.meta.main) {
  const own = process.env.HOTSHIELD_REDIS ? undefined : await startRedisCluster({ masters: 3 });
  const seeds = process.env.HOTSHIELD_REDIS ?? own?.seeds ?? '';
  try {
    const keys = Array.from({ length: 5 }, (_, i) => `example:product:${i}`);
    await seedKeys(seeds, keys);
    for (const mode of ['shared', 'per-worker'] as const) {
      const r = await runExample({
        seeds,
        mode,
        workers: 4,
        lookups: 20_000,
        keys,
        softTtlMs: 3000,
      });
      console.log(
        `${mode.padEnd(10)} ${r.lookups} lookups of ${keys.length} keys by 4 workers in ${r.ms.toFixed(0)} ms: ` +
          `${r.redisGets} Redis GETs, ${r.wrong} wrong answers`,
      );
    }
  } finally {
    await own?.stop();
  }
}
