/**
 * One thread's side of hot-key detection: every read and write the tier answers is
 * counted in the L1's heat table (l1/heat.ts), with the key's Redis Cluster slot, so
 * the hot set knows where its heat lands.
 *
 * A hit answered from the thread's memo (the hot key's path, tens of nanoseconds) is not
 * sent to shared memory one by one: it bumps a tally of the remembered entry, and the
 * thread's tallies go out every FLUSH_MS (and when asked for a report, and on close).
 * One atomic add per key per flush instead of one per hit, so two threads hammering one
 * key do not fight over its cache line, and a flush costs one table update per key read
 * since the last (a count-triggered flush would cost that per few thousand hits: with a
 * thousand keys in turn, 70 ns a hit, measured). The tallies waiting are bounded by the
 * memo's entries. What a thread that dies had not flushed (at most FLUSH_MS of its memo
 * hits) is not counted.
 */

import calculateSlot from 'cluster-key-slot';
import { HEAT_KIND, type HeatKind, type L1Table } from '../l1/index.ts';

/** A remembered key's memo hits not yet counted in shared memory. */
export interface Tally {
  readonly key: string;
  readonly slot: number;
  pending: number;
}

const FLUSH_MS = 100;

export class HeatCounts {
  readonly #l1: L1Table;
  readonly #dirty: Tally[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(l1: L1Table) {
    this.#l1 = l1;
    this.#timer = setInterval(() => this.flush(), FLUSH_MS);
    // An idle tier must not keep its thread alive.
    this.#timer.unref();
  }

  /** A tally for a key about to be remembered. */
  tally(key: string): Tally {
    return { key, slot: calculateSlot(key), pending: 0 };
  }

  /** A hit answered from the memo. */
  memoHit(tally: Tally): void {
    if (tally.pending++ === 0) this.#dirty.push(tally);
  }

  /** An event for the key of the L1 read just made (its bytes and hash are reused). */
  afterRead(key: string, kind: HeatKind): void {
    this.#l1.heatLast(calculateSlot(key), kind);
  }

  /** A write (set or delete) of `key`. */
  write(key: string): void {
    this.#l1.heat(key, calculateSlot(key), HEAT_KIND.WRITE);
  }

  /** Count every pending memo hit in shared memory. */
  flush(): void {
    const dirty = this.#dirty;
    for (let i = 0; i < dirty.length; i++) {
      const t = dirty[i];
      this.#l1.heat(t.key, t.slot, HEAT_KIND.HIT, t.pending);
      t.pending = 0;
    }
    dirty.length = 0;
  }

  /** Flush what is pending and stop the timer (the tier is detaching). */
  close(): void {
    clearInterval(this.#timer);
    this.flush();
  }
}
