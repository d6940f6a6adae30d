/**
 * Counter: one write-hot counter, as seen from any thread (`tier.counter(name)`).
 *
 * An increment is one Atomics.add on the counter's cell in the shared L1: no I/O, no
 * message. The refresher flushes every counter's new increments to Redis each
 * flushInterval (counters/flusher.ts). With `{ sync: true }` the call resolves only once
 * the flush carrying it is acknowledged by Redis (it waits on the cell itself, so it
 * survives a refresher respawn).
 *
 * A read is the sum of the counter's shards in Redis, cached in L1 like any value (fresh
 * for softTtl, coalesced across the process), plus everything this process has added
 * and Redis does not have yet: a process always sees its own increments.
 */

import { HotshieldError } from '../errors.ts';
import { checkCounterName } from '../keys/shard-keys.ts';
import type { L1Table } from '../l1/index.ts';

/** What a Counter needs from its tier (tier.ts builds it; not public). */
export interface CounterPort {
  readonly table: L1Table;
  readonly requestTimeoutMs: number;
  assertOpen(): void;
  /** Run `add` unless the tier is closed (then HS_ERR_CLOSED), so that close() sees it. */
  adding<T>(add: () => T): T;
  /** The counter's shard total minus this process's part of it, from L1 or Redis. */
  base(name: string, timeoutMs: number): Promise<bigint>;
  /** A per-call `timeout` option, validated like the tier's durations. */
  timeoutOf(value: unknown): number;
}

export interface IncrOptions {
  /** Resolve only once Redis has acknowledged the flush carrying this increment. */
  sync: true;
  /** How long to wait for that (default: requestTimeout); then HS_ERR_UNCONFIRMED. */
  timeout?: number | string;
}

export interface ReadOptions {
  /** How long to wait for Redis when the total is not cached (default: requestTimeout). */
  timeout?: number | string;
}

export class Counter {
  readonly name: string;
  readonly #port: CounterPort;

  /** Use tier.counter(name). */
  constructor(name: string, port: CounterPort) {
    this.name = checkCounterName(name);
    this.#port = port;
  }

  /**
   * Add `by` (a non-zero integer, |by| ≤ 2^40; default 1). Without options it returns at
   * once: the increment is in shared memory and reaches Redis within flushInterval.
   */
  incr(by?: number): void;
  /** Add `by` and resolve once Redis has it (see IncrOptions). */
  incr(by: number, options: IncrOptions): Promise<void>;
  incr(by = 1, options?: IncrOptions): void | Promise<void> {
    const table = this.#port.table;
    if (options === undefined) {
      this.#port.adding(() => table.addCounter(this.name, by));
      return;
    }
    if (options === null || typeof options !== 'object' || options.sync !== true)
      throw new HotshieldError('HS_ERR_OPTION', 'incr options must be { sync: true, timeout? }');
    const timeoutMs = this.#port.timeoutOf(options.timeout);
    const ticket = this.#port.adding(() => table.addCounterTicket(this.name, by));
    return this.#port.table.waitCounterAck(ticket, timeoutMs).then((acked) => {
      if (acked) return;
      throw new HotshieldError(
        'HS_ERR_UNCONFIRMED',
        `the increment of ${this.name} is recorded but Redis did not acknowledge its flush within ${timeoutMs} ms; it will be flushed when Redis answers (do not retry: it would count twice)`,
      );
    });
  }

  /** The counter's value (exact up to 2^53; use readExact beyond). */
  async read(options: ReadOptions = {}): Promise<number> {
    return Number(await this.readExact(options));
  }

  /** The counter's value as a bigint: every shard in Redis plus this process's unflushed part. */
  async readExact(options: ReadOptions = {}): Promise<bigint> {
    this.#port.assertOpen();
    const base = await this.#port.base(this.name, this.#port.timeoutOf(options.timeout));
    // After the base: it excludes all of this process's part, `added` holds all of it.
    return base + this.#port.table.counterAdded(this.name);
  }
}
