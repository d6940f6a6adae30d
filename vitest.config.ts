import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One 3-master Redis Cluster for the whole run; tests read its seeds with inject('redisSeeds').
    globalSetup: ['test/global-setup.ts'],
    // Real clusters take seconds to form and fault tests wait out node timeouts.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // Child processes rather than worker threads: tests spawn redis-server and their own
    // worker_threads, and a crashed fork takes only itself down.
    pool: 'forks',
    // The JSON report is what .ci/run reads to print its "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
