/**
 * Read-through loaders. When Redis has no value for a key (or cannot be reached) and a
 * caller with a loader waits for it, the refresher leases the key to one thread of the
 * process; that thread runs one waiting caller's loader and answers the lease with what
 * it produced (`store`), `gone` (the origin has nothing either) or `loadFailed`. The
 * refresher writes a stored value to Redis and L1 and wakes every waiter in every thread.
 *
 * A refresher that dies while the loader runs knows nothing of the lease when it comes
 * back: the loader's outcome then answers this thread's callers directly (the other
 * threads asked the successor).
 */

import { HotshieldError } from '../errors.ts';
import { raceTimeout } from '../refresher/deadline.ts';
import { type CodecName, codecId, decode, encode } from './codec.ts';
import { type Outgoing, type RefresherLink, replyError } from './refresher-link.ts';
import type { Loader } from './types.ts';
import type { Pending, Waiters } from './waiters.ts';

export interface LeaseContext {
  readonly waiters: Waiters;
  readonly link: RefresherLink;
  readonly codec: CodecName;
  readonly loaderTimeoutMs: number;
  readonly maxValueBytes: number;
  isClosed(): boolean;
}

export class LoaderLeases {
  readonly #ctx: LeaseContext;
  readonly #codecId: number;

  constructor(ctx: LeaseContext) {
    this.#ctx = ctx;
    this.#codecId = codecId(ctx.codec);
  }

  /** Run a waiting caller's loader for the lease on `p`; false if nobody here has one. */
  start(p: Pending): boolean {
    if (p.loading) return true;
    const w = p.waiters.find((x) => x.loader !== undefined);
    if (w?.loader === undefined) return false;
    p.loading = true;
    this.#run(p, w.loader, w.ttlMs).catch(() => {});
    return true;
  }

  async #run(p: Pending, loader: Loader, ttlMs: number): Promise<void> {
    const { link, waiters } = this.#ctx;
    const key = p.key;
    const generation = link.generation;
    let ask: Outgoing;
    try {
      const value = await withLoaderTimeout(loader, key, this.#ctx.loaderTimeoutMs);
      ask =
        value === undefined
          ? { t: 'gone', key }
          : { t: 'store', key, value: this.#encodeLoaded(value), flags: this.#codecId, ttlMs };
    } catch (error) {
      const timedOut = error instanceof HotshieldError && error.code === 'HS_ERR_LOADER_TIMEOUT';
      p.loaderError = error;
      ask = {
        t: 'loadFailed',
        key,
        code: timedOut ? 'HS_ERR_LOADER_TIMEOUT' : 'HS_ERR_LOADER_FAILED',
        message: `the loader for "${key}" failed: ${(error as Error)?.message ?? String(error)}`,
      };
    }
    p.loading = false;
    if (this.#ctx.isClosed()) return;
    // The refresher that leased this key died meanwhile; its successor knows nothing of
    // the lease. Answer this thread's callers here; other threads asked the successor.
    if (generation !== link.generation) this.#settleLocally(p, ask);
    else link.post(ask);
    waiters.forgetIfIdle(p);
  }

  #settleLocally(p: Pending, ask: Outgoing): void {
    const waiters = this.#ctx.waiters;
    if (ask.t === 'store') {
      const bytes = ask.value;
      waiters.settleAll(p, () => {
        try {
          return { value: decode(this.#ctx.codec, bytes, ask.flags) };
        } catch (error) {
          return { error: error as Error };
        }
      });
    } else if (ask.t === 'gone') {
      waiters.settleAll(p, () => ({ value: undefined }));
    } else if (ask.t === 'loadFailed') {
      const error = replyError(ask.code, ask.message, p.loaderError);
      waiters.settleAll(p, () => ({ error }));
    }
  }

  #encodeLoaded(value: unknown): Uint8Array {
    const bytes = encode(this.#ctx.codec, value);
    if (bytes.byteLength > this.#ctx.maxValueBytes) {
      throw new HotshieldError(
        'HS_ERR_CODEC',
        `the loaded value is ${bytes.byteLength} bytes encoded; the limit is ${this.#ctx.maxValueBytes} (maxValueBytes)`,
      );
    }
    return bytes;
  }
}

function withLoaderTimeout(loader: Loader, key: string, ms: number): Promise<unknown> {
  return raceTimeout(
    Promise.resolve().then(() => loader(key)),
    ms,
    () =>
      new HotshieldError(
        'HS_ERR_LOADER_TIMEOUT',
        `the loader for "${key}" took longer than ${ms} ms (loaderTimeout)`,
      ),
  );
}
