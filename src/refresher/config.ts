/**
 * The refresher's configuration: the part of the tier's frozen configuration (tier/options.ts
 * validates it) that the refresher thread works from. Plain data: it crosses threads in
 * workerData.
 */

import type { RedisTarget } from './redis-target.ts';

export interface RefresherConfig {
  tierId: string;
  maxKeyBytes: number;
  /** Threads that may attach (bounds the private channels kept for clients). */
  maxThreads: number;
  redis: RedisTarget;
  softTtlMs: number;
  staleTtlMs: number;
  negativeTtlMs: number;
  loaderTimeoutMs: number;
  maxInFlight: number;
  l2TimeoutMs: number;
  connectTimeoutMs: number;
  slotsRefreshIntervalMs: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
  counterShards: number;
  flushIntervalMs: number;
  counterMarkTtlMs: number;
  /** Track the keys read and drop them from L1 when Redis says they changed (coherence.ts). */
  coherence: boolean;
  /** Reads a second from which a key is hot: it is refreshed ahead (refresh-ahead.ts). */
  hotThreshold: number;
}
