/**
 * One monotonic millisecond clock for every thread of the process.
 *
 * `performance.now()` is monotonic but counts from each thread's own start, and
 * `Date.now()` jumps when NTP steps the wall clock (a jump would expire every entry at
 * once or keep them forever). `process.hrtime()` reads the same CLOCK_MONOTONIC in every
 * thread but allocates, so each thread measures once how far its `performance.now()`
 * is from it and then reads the cheap clock plus that offset.
 */

/** CLOCK_MONOTONIC in milliseconds, the same in every thread of the process. */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

/** How long a clock reading is reused, at most (lru-cache's `ttlResolution` idea). */
const CLOCK_RESOLUTION_MS = 1;
/** …and for how many reads at most, in case a long synchronous run starves the timer. */
const MAX_READS_PER_TICK = 1024;
/** Escape hatch: HOTSHIELD_L1_PRECISE_CLOCK=1 reads the clock on every call. */
const PRECISE_ALWAYS = process.env.HOTSHIELD_L1_PRECISE_CLOCK === '1';

export class SharedClock {
  readonly #offset: number;
  #cached = -1;
  #reads = 0;
  readonly #expire = () => {
    this.#cached = -1;
  };

  /** `epochMs` is the table's creation time on the process-wide monotonic clock. */
  constructor(epochMs: number) {
    this.#offset = monotonicMs() - performance.now() - epochMs;
  }

  /** Milliseconds since the table's epoch; agrees across threads to well under 1 ms. */
  precise(): number {
    return performance.now() + this.#offset;
  }

  /**
   * The same clock read at most every CLOCK_RESOLUTION_MS: `performance.now()` costs
   * 70–110 ns on this project's VMs, a good share of an L1 hit, and TTLs of seconds do
   * not need sub-millisecond reads. An unref'd timer retires the cached reading.
   */
  now(): number {
    if (PRECISE_ALWAYS) return this.precise();
    if (this.#cached >= 0 && ++this.#reads < MAX_READS_PER_TICK) return this.#cached;
    this.#cached = this.precise();
    this.#reads = 0;
    setTimeout(this.#expire, CLOCK_RESOLUTION_MS).unref();
    return this.#cached;
  }
}
