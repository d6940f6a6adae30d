/**
 * Reader registry and grace periods (userspace RCU).
 *
 * Every attached thread owns one 64-byte line: `owner` (threadId + 1, 0 = free), `seq`
 * (odd while the thread is inside a read section) and its statistics. A reader makes
 * `seq` odd with an RMW before it follows any pointer into the arena and makes it even
 * again, with a compare-exchange, after its last read of arena bytes.
 *
 * The writer never overwrites arena bytes or an entry that a reader could still be
 * reading: after unlinking entries it waits for a grace period — every `seq` that was
 * odd when it looked has changed — before the bytes are reused. Both sides use
 * sequentially consistent atomics, so this is data-race-free by the JS memory model,
 * on ARM as on x86, unlike a seqlock (see docs/ARCHITECTURE.md).
 *
 * A reader that never leaves (its thread was terminated mid-read) would stall the writer
 * forever. Two ways out: the supervisor calls `releaseThread` from the worker's 'exit'
 * event, and the writer revokes a read section that stayed open longer than
 * `revokeAfterMs` by moving its `seq` to even itself. A revoked reader that was merely
 * slow notices at exit (its compare-exchange fails) and discards what it read.
 */

import { bump } from './counts.ts';
import type { L1Handle } from './create.ts';
import { L1Error } from './errors.ts';
import { H, R, REGISTRY_LINE_WORDS, readLayout, WS } from './layout.ts';
import { makeViews, type Views } from './views.ts';

const pause: () => void =
  typeof (Atomics as unknown as { pause?: () => void }).pause === 'function'
    ? (Atomics as unknown as { pause: () => void }).pause
    : () => {};

/** Claim a free registry line for the calling thread; returns the line's word base. */
export function claimReaderLine(v: Views, threadId: number): number {
  const reg = v.registry;
  for (let i = 0; i < v.layout.maxThreads; i++) {
    const base = i * REGISTRY_LINE_WORDS;
    // claim: pairs with the Atomics.store(…, 0) in releaseLine.
    if (Atomics.compareExchange(reg, base + R.OWNER, 0, threadId + 1) === 0) {
      // Raise the scan bound before this line's first read section: a writer that loads
      // the old bound loaded it before that section began, so the section cannot hold
      // anything that writer unlinked.
      for (let high = Atomics.load(v.header, H.REGISTRY_HIGH); high < i + 1; ) {
        const seen = Atomics.compareExchange(v.header, H.REGISTRY_HIGH, high, i + 1);
        if (seen === high) break;
        high = seen;
      }
      return base;
    }
  }
  throw new L1Error(
    'HS_ERR_TOO_MANY_THREADS',
    `all ${v.layout.maxThreads} L1 reader slots are taken; raise the maxThreads option or close unused attachments`,
  );
}

/** Free a line. Safe to call for a thread that died inside a read section. */
export function releaseLine(v: Views, base: number): void {
  const reg = v.registry;
  const seq = Atomics.load(reg, base + R.SEQ);
  if (seq & 1) Atomics.compareExchange(reg, base + R.SEQ, seq, seq + 1);
  Atomics.store(reg, base + R.OWNER, 0);
}

/**
 * Release everything `threadId` held (reader lines, writer role): call on the worker's
 * 'exit' event. Returns how many reader lines were freed.
 */
export function releaseThread(handle: L1Handle, threadId: number): number {
  // worker.threadId reads -1 once the worker has exited: read it before, at spawn time.
  if (!Number.isSafeInteger(threadId) || threadId < 0) {
    throw new L1Error(
      'HS_ERR_L1_OPTION',
      `releaseThread needs the worker's threadId as read while it ran (got ${threadId})`,
    );
  }
  const v = makeViews(handle.sab, readLayout(handle?.sab));
  Atomics.compareExchange(v.header, H.WRITER_OWNER, threadId + 1, 0);
  return releaseThreadLines(v, threadId);
}

/** Free every line owned by `threadId`. */
function releaseThreadLines(v: Views, threadId: number): number {
  let released = 0;
  for (let i = 0; i < v.layout.maxThreads; i++) {
    const base = i * REGISTRY_LINE_WORDS;
    if (Atomics.load(v.registry, base + R.OWNER) === threadId + 1) {
      releaseLine(v, base);
      released++;
    }
  }
  return released;
}

/**
 * Writer-side grace periods. Keeps, per line, when it first saw the current odd value,
 * so that a section open longer than `revokeAfterMs` can be revoked.
 */
export class GracePeriod {
  readonly #v: Views;
  readonly #spinMs: number;
  readonly #revokeAfterMs: number;
  readonly #firstSeenSeq: Int32Array;
  readonly #firstSeenAt: Float64Array;
  readonly #pending: Int32Array;
  readonly #pendingSeq: Int32Array;

  constructor(v: Views, spinMs: number, revokeAfterMs: number) {
    this.#v = v;
    this.#spinMs = spinMs;
    this.#revokeAfterMs = revokeAfterMs;
    this.#firstSeenSeq = new Int32Array(v.layout.maxThreads).fill(-1);
    this.#firstSeenAt = new Float64Array(v.layout.maxThreads);
    this.#pending = new Int32Array(v.layout.maxThreads);
    this.#pendingSeq = new Int32Array(v.layout.maxThreads);
  }

  /**
   * Wait until every read section open now has closed. Returns false when some section
   * stays open past the spin budget (a reader paused by GC, say): the caller must not
   * reuse the memory yet and retries later.
   */
  wait(): boolean {
    const reg = this.#v.registry;
    let n = 0;
    const high = Atomics.load(this.#v.header, H.REGISTRY_HIGH);
    for (let i = 0; i < high; i++) {
      const base = i * REGISTRY_LINE_WORDS;
      // snapshot: pairs with the reader's opening Atomics.add on its seq.
      const seq = Atomics.load(reg, base + R.SEQ);
      if (seq & 1) {
        this.#pending[n] = i;
        this.#pendingSeq[n] = seq;
        n++;
      }
    }
    if (n === 0) return true;
    bump(this.#v.header, WS.graceWaits);
    // A section that already made an earlier wait give up is not worth spinning for
    // again: check whether it is due for revocation and otherwise fail fast, so a stuck
    // reader costs the writer one spin, not one per operation.
    for (let k = 0; k < n; k++) {
      if (this.#firstSeenSeq[this.#pending[k]] === this.#pendingSeq[k])
        return this.#revokeStuck(n, performance.now());
    }
    const start = performance.now();
    for (;;) {
      let still = 0;
      for (let k = 0; k < n; k++) {
        const i = this.#pending[k];
        // pairs with the reader's closing compareExchange: its copies happen-before.
        if (Atomics.load(reg, i * REGISTRY_LINE_WORDS + R.SEQ) === this.#pendingSeq[k]) {
          this.#pending[still] = i;
          this.#pendingSeq[still] = this.#pendingSeq[k];
          still++;
        }
      }
      n = still;
      if (n === 0) return true;
      const now = performance.now();
      if (now - start >= this.#spinMs) return this.#revokeStuck(n, now);
      pause();
    }
  }

  #revokeStuck(n: number, now: number): boolean {
    const reg = this.#v.registry;
    let open = 0;
    for (let k = 0; k < n; k++) {
      const i = this.#pending[k];
      const seq = this.#pendingSeq[k];
      if (this.#firstSeenSeq[i] !== seq) {
        this.#firstSeenSeq[i] = seq;
        this.#firstSeenAt[i] = now;
      }
      if (now - this.#firstSeenAt[i] >= this.#revokeAfterMs) {
        // revoke: the reader's closing compareExchange will fail and it discards its read.
        if (Atomics.compareExchange(reg, i * REGISTRY_LINE_WORDS + R.SEQ, seq, seq + 1) === seq) {
          bump(this.#v.header, WS.readersRevoked);
        }
        continue;
      }
      open++;
    }
    return open === 0;
  }
}
