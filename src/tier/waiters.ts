/**
 * The callers of one thread waiting on the refresher: for a key's value (a miss) or for
 * a write's acknowledgement. Callers waiting for the same key share one entry and one
 * ask (`Pending`); across threads the refresher's flight does the coalescing.
 *
 * Every wait has a timer and the waits of a thread are bounded (`maxWaiting`, reads and
 * writes together), so a dead refresher or a hung Redis makes callers fail with a typed
 * error, never hang, and a flood of misses cannot grow memory without bound.
 */

import { HotshieldError } from '../errors.ts';
import type { Control } from '../refresher/control.ts';
import type { Loader } from './types.ts';

export interface Waiter {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  loader?: Loader;
  ttlMs: number;
  /** Resolve with a Fetched (the value and its L1 version), not the bare value. */
  versioned: boolean;
}

/** What a versioned waiter gets: the value and the L1 entry holding it (0: none known). */
export interface Fetched {
  value: unknown;
  version: number;
}

/** Everybody in this thread waiting for one key. */
export interface Pending {
  readonly key: string;
  readonly waiters: Waiter[];
  /** An ask with `load: true` went out for the current flight. */
  askedLoad: boolean;
  /** This thread holds the lease and its loader is running. */
  loading: boolean;
  loaderError?: unknown;
  /**
   * The seq of this thread's last fetch for these callers (set as it is sent): a reply
   * under an older one answers an ask made before they came (maybe before the key
   * changed), not theirs.
   */
  askSeq: number;
}

/** How a waiter is settled: with a value (and its L1 version, if known), or with an error. */
export type Outcome = { value?: unknown; error?: Error; version?: number };

interface AckWaiter {
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class Waiters {
  readonly #pending = new Map<string, Pending>();
  readonly #acks = new Map<number, AckWaiter>();
  readonly #maxWaiting: number;
  readonly #control: Control;
  #waiting = 0;
  #nextAck = 1;

  constructor(maxWaiting: number, control: Control) {
    this.#maxWaiting = maxWaiting;
    this.#control = control;
  }

  /** Callers waiting in this thread, reads and writes. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Keys with callers waiting (or a loader running) in this thread. */
  get pendingKeys(): number {
    return this.#pending.size;
  }

  get(key: string): Pending | undefined {
    return this.#pending.get(key);
  }

  pending(): IterableIterator<Pending> {
    return this.#pending.values();
  }

  /**
   * Wait for `key`'s value for at most `timeoutMs`. `fetch(p, load)` is called when this
   * thread must ask the refresher for `p`: for the first caller of the key, and again
   * with `load` for the first caller with a loader when the ask went out without one.
   */
  wait(
    key: string,
    loader: Loader | undefined,
    ttlMs: number,
    timeoutMs: number,
    fetch: (p: Pending, load: boolean) => void,
    versioned = false,
  ): Promise<unknown> {
    if (this.#waiting >= this.#maxWaiting) return Promise.reject(this.#queueFull());
    let p = this.#pending.get(key);
    if (p === undefined) {
      p = { key, waiters: [], askedLoad: loader !== undefined, loading: false, askSeq: 0 };
      this.#pending.set(key, p);
      this.#control.add('waits');
      fetch(p, p.askedLoad);
    } else {
      this.#control.add('localJoins');
      if (loader !== undefined && !p.askedLoad) {
        p.askedLoad = true;
        fetch(p, true);
      }
    }
    const pending = p;
    this.#waiting++;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        loader,
        ttlMs,
        versioned,
        timer: setTimeout(() => {
          this.#control.add('timeouts');
          this.settle(pending, waiter, undefined, timeoutError(key, timeoutMs));
        }, timeoutMs),
      };
      pending.waiters.push(waiter);
    });
  }

  /** Settle one waiter (with `error` if given) and forget the key once nobody waits. */
  settle(p: Pending, w: Waiter, value: unknown, error?: Error, version = 0): void {
    const i = p.waiters.indexOf(w);
    if (i === -1) return;
    p.waiters.splice(i, 1);
    clearTimeout(w.timer);
    this.#waiting--;
    if (error !== undefined) w.reject(error);
    else if (w.versioned && value !== undefined) w.resolve({ value, version } satisfies Fetched);
    else w.resolve(value);
    this.forgetIfIdle(p);
  }

  /** Settle every waiter of `p` that `pick` has an outcome for (undefined: keep waiting). */
  settleAll(p: Pending, pick: (w: Waiter) => Outcome | undefined): void {
    for (const w of [...p.waiters]) {
      const outcome = pick(w);
      if (outcome !== undefined) this.settle(p, w, outcome.value, outcome.error, outcome.version);
    }
  }

  /** Forget `p` if nobody waits on it and no loader of this thread runs for it. */
  forgetIfIdle(p: Pending): void {
    if (p.waiters.length === 0 && !p.loading && this.#pending.get(p.key) === p)
      this.#pending.delete(p.key);
  }

  /**
   * Wait at most `timeoutMs` for the acknowledgement of a write of `key`; `send(id)` posts
   * the write under the id its acknowledgement will carry.
   */
  acknowledgement(key: string, timeoutMs: number, send: (id: number) => void): Promise<void> {
    if (this.#waiting >= this.#maxWaiting) return Promise.reject(this.#queueFull());
    const id = this.#nextAck++;
    this.#waiting++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.#acks.delete(id)) return;
        this.#waiting--;
        this.#control.add('timeouts');
        reject(
          new HotshieldError(
            'HS_ERR_TIMEOUT',
            `no acknowledgement for the write of "${key}" within ${timeoutMs} ms (requestTimeout); it may still be applied`,
          ),
        );
      }, timeoutMs);
      this.#acks.set(id, { resolve, reject, timer });
      send(id);
    });
  }

  /** The refresher acknowledged write `id` (with `error` if it failed). */
  acked(id: number, error?: Error): void {
    const a = this.#acks.get(id);
    if (a === undefined) return;
    this.#acks.delete(id);
    this.#waiting--;
    clearTimeout(a.timer);
    if (error === undefined) a.resolve();
    else a.reject(error);
  }

  /** Every write still waiting for its acknowledgement fails with `error`. */
  failAcks(error: Error): void {
    for (const id of [...this.#acks.keys()]) this.acked(id, error);
  }

  /** Every caller still waiting fails with `error`. */
  failAll(error: Error): void {
    for (const p of [...this.#pending.values()]) this.settleAll(p, () => ({ error }));
    this.#pending.clear();
    for (const a of this.#acks.values()) {
      clearTimeout(a.timer);
      a.reject(error);
    }
    this.#acks.clear();
    this.#waiting = 0;
  }

  #queueFull(): HotshieldError {
    return new HotshieldError(
      'HS_ERR_QUEUE_FULL',
      `${this.#waiting} callers are already waiting in this thread (maxWaiting)`,
    );
  }
}

function timeoutError(key: string, ms: number): HotshieldError {
  return new HotshieldError(
    'HS_ERR_TIMEOUT',
    `no value for "${key}" within ${ms} ms (requestTimeout); Redis or the refresher is slow or down`,
  );
}
