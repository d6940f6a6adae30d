/**
 * Messages of one event-loop turn sent as one: what a thread asks its refresher while
 * it serves the sockets one poll returned, and what the refresher answers each client
 * when one Redis pipeline lands, go out as one array per channel, posted in the check
 * phase of the same turn (setImmediate). A postMessage costs a structured clone and a
 * wake-up of the receiving thread whatever it carries, so the per-message cost is paid
 * once per turn instead of once per ask (docs/ARCHITECTURE.md, "The miss path").
 *
 * Order is kept: a batch holds items in the order they were added and batches go out
 * in order. `flush()` sends at once (before a channel closes); `discard()` forgets.
 */

/** Most items in one posted array; more go out as several arrays, in order. */
export const MAX_BATCH = 1024;

export class TurnBatch<T> {
  readonly #post: (items: T[]) => void;
  #items: T[] = [];
  #scheduled: NodeJS.Immediate | undefined;

  constructor(post: (items: T[]) => void) {
    this.#post = post;
  }

  add(item: T): void {
    this.#items.push(item);
    this.#scheduled ??= setImmediate(() => this.flush());
  }

  /** Send what is held now. */
  flush(): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    const items = this.#items;
    if (items.length === 0) return;
    this.#items = [];
    for (let i = 0; i < items.length; i += MAX_BATCH)
      this.#postSafely(
        i === 0 && items.length <= MAX_BATCH ? items : items.slice(i, i + MAX_BATCH),
      );
  }

  /**
   * Post, never throw: this runs in setImmediate, where a throw would kill the thread.
   * A batch that cannot be cloned is sent item by item and what still fails is dropped
   * (its caller's timer answers it).
   */
  #postSafely(items: T[]): void {
    try {
      this.#post(items);
    } catch {
      if (items.length === 1) return;
      for (const item of items) {
        try {
          this.#post([item]);
        } catch {
          // Dropped, as above.
        }
      }
    }
  }

  /** Forget what is held (its channel is gone). */
  discard(): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    this.#items = [];
  }
}

/**
 * `bytes` as a view that spans its whole buffer, copied if it does not (or if `copy`):
 * a structured clone copies a view's entire ArrayBuffer, and ioredis hands out views
 * of its socket chunks (up to 64 KiB), L1 copy-outs views of Node's 8 KiB pool.
 */
export function exactBytes(bytes: Uint8Array, copy = false): Uint8Array {
  if (!copy && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes;
  return new Uint8Array(bytes);
}

/** The items of a message from another thread: an array (a batch) or a single item. */
export function itemsOf(data: unknown): unknown[] {
  return Array.isArray(data) ? data.slice(0, MAX_BATCH) : [data];
}
