/**
 * Deterministic Zipf(s) traces over n keys: P(rank r) ∝ 1 / r^s, r = 1..n.
 *
 * Sampling is by inverse CDF: the cumulative weights are computed once (Float64Array,
 * n doubles), then each draw is a uniform double times the total, located by binary
 * search (first rank whose cumulative weight exceeds it). Exact up to floating-point
 * rounding of the prefix sums, O(log n) per draw, no rejection step.
 *
 * Ranks are mapped to key indexes through a seeded random permutation, so the most
 * popular keys are not the first ones generated (which would correlate popularity with
 * whatever order keys were created or hashed in).
 */

import { type Prng, prng, shuffle } from './prng.ts';

export interface ZipfTrace {
  /** Key index of each request. */
  readonly requests: Uint32Array;
  /** rankToKey[r] = key index of the r-th most popular key (r from 0). */
  readonly rankToKey: Uint32Array;
  /** Theoretical probability of the most popular key, to check the sampler against. */
  readonly topProbability: number;
  /** Theoretical probability mass of the `k` most popular keys. */
  massOfTop(k: number): number;
}

export function zipfTrace(n: number, s: number, requests: number, rng: Prng): ZipfTrace {
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let r = 0; r < n; r++) {
    total += 1 / (r + 1) ** s;
    cumulative[r] = total;
  }
  const rankToKey = shuffle(
    Uint32Array.from({ length: n }, (_, i) => i),
    rng,
  );
  const out = new Uint32Array(requests);
  for (let i = 0; i < requests; i++) {
    const u = rng.float() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    out[i] = rankToKey[lo];
  }
  return {
    requests: out,
    rankToKey,
    topProbability: 1 / total,
    massOfTop: (k) => (k <= 0 ? 0 : cumulative[Math.min(k, n) - 1] / total),
  };
}

/**
 * The key indexes a load generator cycles through for a Zipf load: one long seeded trace,
 * precomputed so the sampler's cost stays out of the measurement, and the same for
 * autocannon (fixtures/loadgen.ts) and wrk (wrk.ts).
 */
export function loadTrace(zipf: { keys: number; s: number; seed: number }): Uint32Array {
  return zipfTrace(zipf.keys, zipf.s, 2_000_000, prng(zipf.seed)).requests;
}
