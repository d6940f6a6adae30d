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
      this.#post(i === 0 && items.length <= MAX_BATCH ? items : items.slice(i, i + MAX_BATCH));
  }

  /** Forget what is held (its channel is gone). */
  discard(): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    this.#items = [];
  }
}

/** The items of a message from another thread: an array (a batch) or a single item. */
export function itemsOf(data: unknown): unknown[] {
  return Array.isArray(data) ? data.slice(0, MAX_BATCH) : [data];
}
