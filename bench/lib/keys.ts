/**
 * Benchmark keys and request URLs. Keys look like session keys: `user:session:` plus a
 * base-36 id zero-padded to a random total length of 16–64 ASCII bytes (ids that need
 * more digits make the key longer than drawn, never shorter). All keys are distinct.
 *
 * Every string is built through a latin1 Buffer round trip so that it is a flat,
 * sequential one-byte string, like the `req.url` Node's HTTP parser hands a handler
 * (string concatenation would leave cons strings, which V8 flattens lazily on first
 * use and would make the first rounds measure that).
 */

import { type Prng, prng } from './prng.ts';

export const KEY_PREFIX = 'user:session:';
export const URL_PREFIX = '/v1/kv/';
export const MIN_KEY_BYTES = 16;
export const MAX_KEY_BYTES = 64;

export function flat(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

/** `count` distinct keys, key i built from id `first + i`. */
export function makeKeys(count: number, seed: number, first = 0): string[] {
  const rng = prng(seed);
  const keys = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    const id = (first + i).toString(36);
    const len = Math.max(
      MIN_KEY_BYTES + rng.below(MAX_KEY_BYTES - MIN_KEY_BYTES + 1),
      KEY_PREFIX.length + id.length,
    );
    keys[i] = flat(KEY_PREFIX + id.padStart(len - KEY_PREFIX.length, '0'));
  }
  return keys;
}

/** `/v1/kv/<key>` for each key: what a handler slices the key out of. */
export function makeUrls(keys: readonly string[]): string[] {
  return keys.map((k) => flat(URL_PREFIX + k));
}

/**
 * A pseudo-random access order: `length` (a power of two, so loops can wrap with a mask)
 * uniformly drawn indexes in [0, count).
 */
export function makeOrder(length: number, count: number, seed: number): Uint32Array {
  if ((length & (length - 1)) !== 0) throw new Error('order length must be a power of two');
  const rng: Prng = prng(seed);
  const order = new Uint32Array(length);
  for (let i = 0; i < length; i++) order[i] = rng.below(count);
  return order;
}

/** `count` values of `bytes` bytes each, every one different (its index in the first bytes). */
export function makeValues(count: number, bytes: number): Buffer[] {
  const values = new Array<Buffer>(count);
  for (let i = 0; i < count; i++) {
    const b = Buffer.alloc(bytes, i & 0xff);
    if (bytes >= 4) b.writeUInt32LE(i, 0);
    values[i] = b;
  }
  return values;
}
