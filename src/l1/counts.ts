/**
 * 64-bit event counts kept as u32 lo/hi word pairs in shared memory. Each pair has one
 * writing thread (its owner), so a plain increment is enough; another thread summing
 * them can see a pair mid-carry once every 2^32 events, which only skews a statistic.
 * (Float64 would tear under the memory model; BigInt64 atomics allocate.)
 */

export function bump(words: Int32Array, i: number, by = 1): void {
  const lo = (words[i] >>> 0) + by;
  words[i] = lo | 0;
  if (lo > 0xffffffff) words[i + 1] = (words[i + 1] + Math.floor(lo / 0x100000000)) | 0;
}

export function readCount(words: Int32Array, i: number): number {
  return (words[i + 1] >>> 0) * 0x100000000 + (words[i] >>> 0);
}
