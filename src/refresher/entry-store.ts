/**
 * How the refresher writes L1 entries (it is their only writer): a value is fresh for
 * softTtl, then served stale until softTtl + staleTtl, both capped by the value's own
 * Redis TTL when it has one; an absent key is a short negative entry (negativeTtl). A
 * value L1 cannot take (too large, no room now) is counted and served uncached.
 */

import type { L1Writer } from '../l1/index.ts';
import type { Control } from './control.ts';

export interface EntryTtls {
  softTtlMs: number;
  staleTtlMs: number;
  negativeTtlMs: number;
  /**
   * The soft TTL of a value Redis will not tell us about when it changes (a write of our
   * own, a read that crossed a loss of tracking): with coherence on, short, so no value
   * goes unchecked for long whatever failed; without, softTtlMs.
   */
  untrackedSoftTtlMs: number;
}

export class EntryStore {
  readonly #writer: L1Writer;
  readonly #control: Control;
  readonly #ttls: EntryTtls;

  constructor(writer: L1Writer, control: Control, ttls: EntryTtls) {
    this.#writer = writer;
    this.#control = control;
    this.#ttls = ttls;
  }

  /**
   * Store a value (with its Redis TTL, 0: none); its L1 version, 0 if L1 refused it.
   * `tracked`: Redis will say when the key changes (see untrackedSoftTtlMs).
   */
  store(key: string, value: Uint8Array, flags: number, ttlMs: number, tracked: boolean): number {
    const { staleTtlMs } = this.#ttls;
    const softTtlMs = tracked ? this.#ttls.softTtlMs : this.#ttls.untrackedSoftTtlMs;
    const soft = ttlMs > 0 ? Math.min(softTtlMs, ttlMs) : softTtlMs;
    const hard = ttlMs > 0 ? Math.min(softTtlMs + staleTtlMs, ttlMs) : softTtlMs + staleTtlMs;
    return this.#put(key, value, { softTtlMs: soft, hardTtlMs: hard, flags });
  }

  /**
   * Remember that `key` has no value (`flags`: FLAG_ABSENT, and FLAG_GONE if a loader said
   * so); `tracked` as for store (Redis tracks a read of a missing key too), so an
   * untracked absence lives no longer than an untracked value.
   */
  storeNegative(key: string, flags: number, tracked: boolean): void {
    const { negativeTtlMs, untrackedSoftTtlMs } = this.#ttls;
    const ttl = tracked ? negativeTtlMs : Math.min(negativeTtlMs, untrackedSoftTtlMs);
    if (ttl === 0) return;
    if (this.#put(key, new Uint8Array(0), { softTtlMs: ttl, hardTtlMs: ttl, flags }) !== 0)
      this.#control.add('negativeStores');
  }

  /** Drop `key`'s entry; true if there was one. */
  delete(key: string): boolean {
    return this.#writer.delete(key);
  }

  #put(
    key: string,
    value: Uint8Array,
    options: { softTtlMs: number; hardTtlMs: number; flags: number },
  ): number {
    let version = 0;
    try {
      version = this.#writer.set(key, value, options);
    } catch {
      // Too large for L1 (or a key L1 cannot hold): served uncached, counted below.
    }
    if (version === 0) this.#control.add('l1Refused');
    return version;
  }
}
