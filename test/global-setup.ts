/**
 * Starts one 3-master Redis Cluster for the whole test run and hands its seed list to
 * the tests: `inject('redisSeeds')`. Tests that need to break a cluster (kill nodes,
 * change topology) start their own with startRedisCluster() instead of touching this one.
 */
import type { TestProject } from 'vitest/node';
import { startRedisCluster } from '../src/dev/redis-cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Seed list of the run-wide cluster: "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3". */
    redisSeeds: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startRedisCluster({ masters: 3 });
  project.provide('redisSeeds', cluster.seeds);
  return () => cluster.stop();
}
