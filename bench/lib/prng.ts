/**
 * A small seeded PRNG (sfc32, seeded through splitmix32) so that every key set, access
 * order and Zipf trace is the same from run to run and from thread to thread. Not for
 * anything security-related; Math.random cannot be seeded, which is why this exists.
 */

function splitmix32(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export interface Prng {
  /** Uniform 32-bit unsigned integer. */
  u32(): number;
  /** Uniform double in [0, 1) with 53 random bits. */
  float(): number;
  /** Uniform integer in [0, n). */
  below(n: number): number;
}

export function prng(seed: number): Prng {
  const init = splitmix32(seed);
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  const u32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) u32();
  const float = (): number => ((u32() >>> 5) * 0x4000000 + (u32() >>> 6)) / 0x20000000000000;
  return { u32, float, below: (n) => Math.floor(float() * n) };
}

/** Fisher–Yates shuffle in place. */
export function shuffle<T extends { length: number; [i: number]: unknown }>(a: T, rng: Prng): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}
