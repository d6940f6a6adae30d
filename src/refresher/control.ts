/**
 * The tier's control block: a small SharedArrayBuffer, next to the L1's, holding the
 * tier's lifecycle words and its process-wide statistics. Every thread reads it without
 * a message; it survives a refresher respawn (the counters keep counting).
 *
 *   Int32 words (bytes 0..15)               u64 (16..31)         BigUint64 counters (from 64)
 *   ┌───────┬────────┬────────────┬───────┐ ┌────────┬──────────┐ ┌─────────┬────────┬────┐
 *   │ MAGIC │ CLOSED │ GENERATION │ STATE │ │ WRITER │ FLUSH_SEQ│ │ fetches │ joined │ …  │
 *   └───────┴────────┴────────────┴───────┘ └────────┴──────────┘ └─────────┴────────┴────┘
 *
 * CLOSED is set once by tier.close(); GENERATION counts refresher starts (bumped and
 * notified by each new refresher when it listens); STATE is the refresher's view of L2.
 * Counters are added with Atomics.add from any thread and read with Atomics.load.
 * ADDING (bytes 32..35) counts counter adds in progress (see enterAdd). TRACKED and MASTERS
 * (36..43): how many masters Redis tracks our reads on, of how many (coherence.ts).
 * WRITER is this process's random identity in counter flushes and FLUSH_SEQ their last
 * sequence number: here, not in the refresher, so that a respawned refresher re-sends a
 * pending flush under the same (writer, seq) and numbers new ones after it.
 */

import { HotshieldError } from '../errors.ts';

const W = {
  MAGIC: 0,
  CLOSED: 1,
  GENERATION: 2,
  STATE: 3,
  ADDING: 8,
  TRACKED: 9,
  MASTERS: 10,
} as const;
/** BigUint64 indexes in the same first 64 bytes. */
const Q = { WRITER: 2, FLUSH_SEQ: 3 } as const;
const MAGIC = 0x48534331; // "HSC1"
const COUNTERS_AT = 64;

/** Refresher's view of L2 in STATE. */
const REFRESHER_STATE = { down: 0, starting: 1, l2Ready: 2, l2Down: 3 } as const;
export type RefresherState = keyof typeof REFRESHER_STATE;

/**
 * The process-wide statistics, in their order in the block, with what each counts: the
 * one text for docs and for the gateway's metrics (hotshield_refresher_*_total and
 * hotshield_counter_*_total).
 */
export const STATS = {
  fetches: 'Redis reads started by the refresher (one per key per flight)',
  joined: 'Asks that joined a fetch already in flight (coalesced)',
  alreadyFresh: 'Asks answered from L1 because another ask had just refreshed the key',
  l2Batches: 'Read batches sent to Redis (one pipeline per master each)',
  l2Errors: 'Keys whose Redis read failed',
  negativeStores: 'Absent keys cached as negative entries',
  leases: 'Loader leases granted (a full miss with a loader)',
  loaderFailures: 'Loaders that threw or rejected',
  loaderTimeouts: 'Loaders that ran past loaderTimeout',
  writes: 'Writes through to Redis (set, delete, loader stores)',
  writeErrors: 'Writes to Redis that failed',
  l1Refused: 'Values L1 could not take (served uncached)',
  queueFull: 'Asks refused because maxInFlight keys were being fetched',
  breakerRejected: 'Redis calls refused by an open circuit',
  breakerOpened: 'Times a Redis node circuit opened',
  l2Resets: 'Redis connections reset: a node that stopped answering, a reply out of step',
  respawns: 'Refresher thread restarts',
  waits: 'Callers that had to wait for the refresher (one per key per thread)',
  localJoins: 'Callers that joined a wait already in their thread',
  timeouts: 'Callers that gave up waiting (requestTimeout)',
  refreshes: 'Background refreshes asked for by stale reads',
  refreshesAhead: 'Hot keys refreshed before their soft TTL ran out (refresh-ahead)',
  heatErrors: 'Rounds of the hot-key upkeep that failed and were skipped',
  counterFlushes: 'Counter flushes sent to Redis, re-sends included',
  counterDuplicates: 'Counter flushes Redis had already applied (re-sends)',
  counterFlushErrors: 'Counter flushes that failed (kept and re-sent)',
  counterReads: 'Counter totals read from Redis (all shards of one counter)',
  invalidations: 'Keys Redis said had changed (client tracking invalidations)',
  invalidatedEntries: 'L1 entries dropped because Redis said their key had changed',
  invalidationFlushes: 'Flushes Redis announced (FLUSHALL, FLUSHDB): L1 cleared',
  trackingLost: 'Times tracking was lost on a connection: L1 marked stale',
  trackingRefused: 'Times Redis refused coherence (CLIENT TRACKING, SUBSCRIBE): it stays off',
} as const;
export type StatName = keyof typeof STATS;
const STAT_NAMES = Object.keys(STATS) as StatName[];
export type ControlStats = Record<StatName, number>;

const STAT_INDEX = Object.fromEntries(STAT_NAMES.map((name, i) => [name, i])) as Record<
  StatName,
  number
>;

const CONTROL_BYTES = COUNTERS_AT + STAT_NAMES.length * 8;

export function createControl(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(CONTROL_BYTES);
  new Int32Array(sab)[W.MAGIC] = MAGIC;
  // Random: two processes (or two tiers of one process) never share a flush identity.
  new BigUint64Array(sab, 0, 8)[Q.WRITER] = crypto.getRandomValues(new BigUint64Array(1))[0] | 1n;
  return sab;
}

export class Control {
  readonly #words: Int32Array;
  readonly #counters: BigUint64Array;
  readonly #u64: BigUint64Array;

  constructor(sab: unknown) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength !== CONTROL_BYTES)
      throw new HotshieldError('HS_ERR_HANDLE', 'not a hotshield tier handle (control block)');
    this.#words = new Int32Array(sab, 0, COUNTERS_AT / 4);
    if (Atomics.load(this.#words, W.MAGIC) !== MAGIC)
      throw new HotshieldError('HS_ERR_HANDLE', 'not a hotshield tier handle (bad magic)');
    this.#counters = new BigUint64Array(sab, COUNTERS_AT, STAT_NAMES.length);
    this.#u64 = new BigUint64Array(sab, 0, COUNTERS_AT / 8);
  }

  /** This tier's identity in counter flushes (16 hex digits). */
  get writerId(): string {
    return Atomics.load(this.#u64, Q.WRITER).toString(16).padStart(16, '0');
  }

  /** The next counter flush sequence number (1, 2, …), unique within this tier. */
  nextFlushSeq(): bigint {
    return Atomics.add(this.#u64, Q.FLUSH_SEQ, 1n) + 1n;
  }

  get closed(): boolean {
    return Atomics.load(this.#words, W.CLOSED) !== 0;
  }

  /** Mark the tier closed; true for the caller that closed it. */
  close(): boolean {
    return Atomics.compareExchange(this.#words, W.CLOSED, 0, 1) === 0;
  }

  /**
   * A thread is about to add to a counter: false (and nothing to undo) if the tier is
   * closed. Paired with close: the adder raises ADDING then reads CLOSED, the closer
   * sets CLOSED then waits for ADDING to fall (addsSettled), so either the adder sees
   * CLOSED or the final flush sees its add. Call leaveAdd once the add is done.
   */
  enterAdd(): boolean {
    Atomics.add(this.#words, W.ADDING, 1);
    if (Atomics.load(this.#words, W.CLOSED) === 0) return true;
    this.leaveAdd();
    return false;
  }

  leaveAdd(): void {
    if (Atomics.sub(this.#words, W.ADDING, 1) === 1) Atomics.notify(this.#words, W.ADDING);
  }

  /** Resolves once no add is in progress, or after `timeoutMs` (a thread killed mid-add). */
  async addsSettled(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const adding = Atomics.load(this.#words, W.ADDING);
      const left = deadline - performance.now();
      if (adding === 0 || left <= 0) return;
      const w = Atomics.waitAsync(this.#words, W.ADDING, adding, Math.min(left, 10));
      if (w.async) await w.value;
    }
  }

  get generation(): number {
    return Atomics.load(this.#words, W.GENERATION);
  }

  /** A new refresher is listening: bump the generation and wake whoever waits for it. */
  announceRefresher(): number {
    const generation = Atomics.add(this.#words, W.GENERATION, 1) + 1;
    Atomics.notify(this.#words, W.GENERATION);
    return generation;
  }

  /** Resolves true once GENERATION exceeds `after`, false after `timeoutMs`. */
  async waitForRefresher(after: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (Atomics.load(this.#words, W.GENERATION) > after) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const w = Atomics.waitAsync(this.#words, W.GENERATION, after, left);
      if (w.async) await w.value;
    }
  }

  get state(): RefresherState {
    const s = Atomics.load(this.#words, W.STATE);
    return (
      (Object.keys(REFRESHER_STATE) as RefresherState[]).find((k) => REFRESHER_STATE[k] === s) ??
      'down'
    );
  }

  setState(state: RefresherState): void {
    Atomics.store(this.#words, W.STATE, REFRESHER_STATE[state]);
  }

  /** Masters whose data connection Redis tracks, of how many (both 0: coherence off). */
  get coherence(): { tracked: number; masters: number } {
    return {
      tracked: Atomics.load(this.#words, W.TRACKED),
      masters: Atomics.load(this.#words, W.MASTERS),
    };
  }

  setCoherence(tracked: number, masters: number): void {
    Atomics.store(this.#words, W.TRACKED, tracked);
    Atomics.store(this.#words, W.MASTERS, masters);
  }

  add(name: StatName, n = 1): void {
    if (n !== 0) Atomics.add(this.#counters, STAT_INDEX[name], BigInt(n));
  }

  stats(): ControlStats {
    const out = {} as ControlStats;
    STAT_NAMES.forEach((name, i) => {
      out[name] = Number(Atomics.load(this.#counters, i));
    });
    return out;
  }
}
