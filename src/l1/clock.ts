/**
 * One monotonic millisecond clock for every thread of the process.
 *
 * `performance.now()` is monotonic but counts from each thread's own start, and
 * `Date.now()` jumps when NTP steps the wall clock (a jump would expire every entry at
 * once or keep them forever). `process.hrtime()` reads the same CLOCK_MONOTONIC in every
 * thread but allocates, so each thread measures once how far its `performance.now()`
 * is from it and then reads the cheap clock plus that offset.
 */

function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

export class SharedClock {
  readonly #offset: number;

  /** `epochMs` is the table's creation time on the process-wide monotonic clock. */
  constructor(epochMs: number) {
    this.#offset = monotonicMs() - performance.now() - epochMs;
  }

  /** Milliseconds since the table's epoch; agrees across threads to well under 1 ms. */
  now(): number {
    return performance.now() + this.#offset;
  }
}

export function processMonotonicMs(): number {
  return monotonicMs();
}
