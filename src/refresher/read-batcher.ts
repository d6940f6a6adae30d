/**
 * Collects the keys asked for during one turn of the event loop and reads them from L2
 * with one `getMany` (one pipeline per master node), so a burst of misses on many keys
 * costs one round trip per node rather than one per key. Combined with the singleflight
 * in front of it, a key is read at most once per batch whoever asks.
 */

import type { L2Client, L2Read } from './l2-client.ts';
import { toL2Error } from './l2-errors.ts';

interface Pending {
  key: string;
  resolve: (read: L2Read) => void;
}

export class ReadBatcher {
  readonly #l2: L2Client;
  readonly #maxBatch: number;
  readonly #onBatch: (keys: number) => void;
  #pending: Pending[] = [];
  #scheduled = false;

  constructor(l2: L2Client, maxBatch = 512, onBatch: (keys: number) => void = () => {}) {
    this.#l2 = l2;
    this.#maxBatch = maxBatch;
    this.#onBatch = onBatch;
  }

  /** The key's value, null if absent, or its typed error; never rejects. */
  read(key: string): Promise<L2Read> {
    return new Promise((resolve) => {
      this.#pending.push({ key, resolve });
      if (this.#pending.length >= this.#maxBatch) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        // After the current turn's I/O callbacks, so a burst of requests lands in one batch.
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    this.#onBatch(batch.length);
    // Each master's keys are answered as soon as that master has answered (every key is
    // in one part); getMany never rejects, this only keeps a bug from stranding callers.
    const onPart = (indexes: readonly number[], reads: readonly L2Read[]) => {
      for (const i of indexes) batch[i].resolve(reads[i]);
    };
    this.#l2
      .getMany(
        batch.map((p) => p.key),
        onPart,
      )
      .catch((error) => {
        for (const p of batch) p.resolve(toL2Error(error));
      });
  }
}
