/**
 * What only the refresher thread can see, as Prometheus metrics: Redis latency and
 * errors per node and operation, the size of read batches, the keys in flight. The
 * owning thread collects them as JSON (a piscina task) and merges them with the rest of
 * the process's metrics. A respawned refresher starts from zero, which Prometheus reads
 * as a counter reset.
 */

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { L2Call } from './l2-batch.ts';

export class RefresherMetrics {
  readonly registry = new Registry();
  readonly #latency = new Histogram({
    name: 'hotshield_l2_request_duration_seconds',
    help: 'Time of one call to one Redis node (a pipeline of GETs, a SET, a DEL), by node and operation',
    labelNames: ['node', 'op'] as const,
    buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly #errors = new Counter({
    name: 'hotshield_l2_errors_total',
    help: 'Keys whose Redis call failed, by node, operation and error code',
    labelNames: ['node', 'op', 'code'] as const,
    registers: [this.registry],
  });
  readonly #batchKeys = new Histogram({
    name: 'hotshield_refresher_batch_keys',
    help: 'Keys per read batch (sent as one pipeline per master)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  });

  constructor(inFlight: () => number) {
    new Gauge({
      name: 'hotshield_refresher_in_flight',
      help: 'Keys being fetched or loaded right now',
      registers: [this.registry],
      collect() {
        this.set(inFlight());
      },
    });
  }

  call(c: L2Call): void {
    this.#latency.observe({ node: c.node, op: c.op }, c.seconds);
    if (c.failed > 0)
      this.#errors.inc({ node: c.node, op: c.op, code: c.code ?? 'unknown' }, c.failed);
  }

  batch(keys: number): void {
    this.#batchKeys.observe(keys);
  }
}
