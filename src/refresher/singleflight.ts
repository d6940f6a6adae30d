/**
 * Singleflight: at most one fetch in flight per key. The first caller for a key starts
 * the fetch; every caller that asks while it runs joins it and gets the same outcome.
 * The number of keys in flight is bounded: past `maxInFlight` a new key is refused with
 * HS_ERR_QUEUE_FULL at once instead of growing a queue (joining an existing flight is
 * always allowed, it costs nothing).
 */

import { HotshieldError } from '../errors.ts';

export class Singleflight<T> {
  readonly #inFlight = new Map<string, Promise<T>>();
  readonly #maxInFlight: number;
  #started = 0;
  #joined = 0;

  constructor(maxInFlight: number) {
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) {
      throw new HotshieldError(
        'HS_ERR_REDIS_OPTION',
        `maxInFlight must be a positive integer (got ${maxInFlight})`,
      );
    }
    this.#maxInFlight = maxInFlight;
  }

  /** The outcome of the flight for `key`, starting `fetch` if none is in flight. */
  run(key: string, fetch: () => Promise<T>): Promise<T> {
    const current = this.#inFlight.get(key);
    if (current !== undefined) {
      this.#joined++;
      return current;
    }
    if (this.#inFlight.size >= this.#maxInFlight) {
      return Promise.reject(
        new HotshieldError(
          'HS_ERR_QUEUE_FULL',
          `${this.#maxInFlight} keys are already being fetched (maxInFlight)`,
        ),
      );
    }
    this.#started++;
    const flight = Promise.resolve()
      .then(fetch)
      .finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, flight);
    return flight;
  }

  /** Keys in flight now. */
  get size(): number {
    return this.#inFlight.size;
  }

  /** Flights started and callers that joined one, since creation. */
  get counts(): { started: number; joined: number } {
    return { started: this.#started, joined: this.#joined };
  }
}
