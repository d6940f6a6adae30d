/**
 * ReadMemo: a thread's own memory of the entries it read lately, each re-validated
 * against the shared table on every use (L1Table.freshAge: two loads, no copy). A hot
 * key then costs a Map lookup instead of hashing the key, probing the index, comparing
 * key bytes and copying the value out, and whatever the caller derived from the bytes
 * (a decoded value, an ETag) is derived once per entry version, not once per read.
 *
 * It never answers what the table would not: an entry rewritten, deleted, evicted,
 * moved or past its soft expiry fails the check and the caller reads the table again.
 * So it cannot raise the hit ratio or serve a stale value as fresh; it only makes a
 * hit cheaper. What it keeps is the caller's, shared by every read of the thread until
 * the entry changes.
 *
 * Bounded by bytes (the caller says what an item weighs); forgets in insertion order
 * (a Map's), which keeps the keys that come back often enough to be re-remembered.
 */

import type { L1Ref, L1Table } from './table.ts';

/** What a memo keeps per key beyond its item: the ref and the weight. */
const ENTRY_OVERHEAD_BYTES = 120;

interface Memo<T> {
  readonly ref: L1Ref;
  readonly item: T;
  readonly bytes: number;
}

export class ReadMemo<T> {
  readonly #table: L1Table;
  readonly #maxBytes: number;
  readonly #memos = new Map<string, Memo<T>>();
  #bytes = 0;
  /** Age of the last `fresh` answer, in ms (valid right after a non-undefined return). */
  ageMs = 0;

  constructor(table: L1Table, maxBytes: number) {
    this.#table = table;
    this.#maxBytes = maxBytes;
  }

  /** Items kept, and their weight in bytes. */
  get size(): { entries: number; bytes: number } {
    return { entries: this.#memos.size, bytes: this.#bytes };
  }

  /**
   * The item kept for `key` if its entry is still current and fresh (its age is then in
   * `ageMs`); undefined otherwise: read the table with a new ref (newRef) and `keep` what you derive.
   */
  fresh(key: string): T | undefined {
    const memo = this.#memos.get(key);
    if (memo === undefined) return undefined;
    const age = this.#table.freshAge(memo.ref);
    if (age < 0) {
      this.#forget(key, memo);
      return undefined;
    }
    this.ageMs = age;
    return memo.item;
  }

  /** Remember `item` for `key`, read from the entry `ref` was filled from; `bytes`: its weight. */
  keep(key: string, ref: L1Ref, item: T, bytes: number): void {
    const weight = bytes + key.length * 2 + ENTRY_OVERHEAD_BYTES;
    if (weight > this.#maxBytes) return;
    const old = this.#memos.get(key);
    if (old !== undefined) this.#forget(key, old);
    while (this.#bytes + weight > this.#maxBytes) {
      const first = this.#memos.entries().next();
      if (first.done === true) break;
      this.#forget(first.value[0], first.value[1]);
    }
    this.#memos.set(key, { ref, item, bytes: weight });
    this.#bytes += weight;
  }

  /** Forget everything (say, when the thread closes its table). */
  clear(): void {
    this.#memos.clear();
    this.#bytes = 0;
  }

  #forget(key: string, memo: Memo<T>): void {
    this.#memos.delete(key);
    this.#bytes -= memo.bytes;
  }
}
