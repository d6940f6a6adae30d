/**
 * Refresh-ahead of hot keys: a key read at `hotThreshold` a second or more (the L1's
 * hot set, l1/heat.ts) is refreshed before its soft TTL runs out, so that while it is
 * hot it is never served stale and never missed. Every housekeeping round (500 ms), each
 * hot key whose refresh falls within HORIZON_MS gets a timer at a random moment of the
 * last `lead` before its soft expiry, no later than a quarter of lead before it (lead:
 * 500 ms, or a quarter of the soft TTL if shorter), so that a fleet of processes does
 * not refresh in lockstep. The price is refreshing up to `lead` early: at most
 * 1 / (1 − lead / softTtl) reads per soft TTL instead of one (a 3 s soft TTL: 1.2, 1.13
 * on average). Rounds half a second apart and a horizon of two rounds mean a timer is
 * always set before its moment; below MIN_SOFT_TTL_MS the rounds are too far apart and
 * refresh-ahead is off. Reading an entry's expiry counts as an L1 hit of the
 * refresher's (one per hot key per round).
 */

import { type L1Table, newRef } from '../l1/index.ts';

/** The latest a refresh may start before the entry's soft expiry, as a share of lead. */
const LATEST_SHARE = 0.25;
/** Rounds are 500 ms apart: a refresh due within two of them is scheduled now. */
const HORIZON_MS = 1000;
/** A rate is over at least this long (a key hot for 100 ms is not at 10× its rate). */
const MIN_WINDOW_MS = 1000;

/** Soft TTLs shorter than this get no refresh-ahead (see the header). */
export const MIN_SOFT_TTL_MS = 1000;

/** How long before the soft expiry refreshes start, at most. */
export function leadMs(softTtlMs: number): number {
  return Math.min(500, softTtlMs / 4);
}

/** When to refresh an entry that turns stale at `softExpiresAt`: random in [expiry − lead, expiry − lead/4]. */
export function refreshAt(softExpiresAt: number, softTtlMs: number, random: number): number {
  const lead = leadMs(softTtlMs);
  return softExpiresAt - lead + random * lead * (1 - LATEST_SHARE);
}

export interface RefreshAheadOptions {
  hotThreshold: number;
  /** Start a refresh of `key` (no asker); false if it could not (in flight already, full). */
  refresh(key: string): boolean;
  random?: () => number;
}

export class RefreshAhead {
  readonly #table: L1Table;
  readonly #o: RefreshAheadOptions;
  readonly #random: () => number;
  /** Keys with a refresh scheduled (at most the hot set: the table's records). */
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(table: L1Table, options: RefreshAheadOptions) {
    this.#table = table;
    this.#o = options;
    this.#random = options.random ?? Math.random;
  }

  /** Schedule the refreshes due within HORIZON_MS (call every housekeeping round). */
  tick(): void {
    const table = this.#table;
    const now = table.now();
    for (const k of table.hotKeys().keys) {
      if (k.truncated || this.#timers.has(k.key)) continue;
      const reads = k.hits + k.stale + k.misses;
      if ((reads * 1000) / Math.max(k.windowMs, MIN_WINDOW_MS) < this.#o.hotThreshold) continue;
      const ref = newRef();
      const entry = table.get(k.key, ref);
      // Stale or absent: a reader's ask is refreshing it already.
      if (entry === undefined || entry.state !== 'fresh') continue;
      // The entry's own soft life (an untracked value, a negative entry or a short Redis
      // TTL is fresh for less than softTtl); too short a life is left to its readers.
      const life = ref.softExpiresAt - ref.storedAt;
      if (life < MIN_SOFT_TTL_MS) continue;
      const at = refreshAt(ref.softExpiresAt, life, this.#random());
      if (at - now > HORIZON_MS) continue;
      const key = k.key;
      const timer = setTimeout(
        () => {
          this.#timers.delete(key);
          this.#o.refresh(key);
        },
        Math.max(0, at - now),
      );
      timer.unref();
      this.#timers.set(key, timer);
    }
  }

  close(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }
}
