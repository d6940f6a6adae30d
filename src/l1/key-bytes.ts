/**
 * Keys and counter names are UTF-8 byte strings. A thread encodes each key once into its
 * own scratch buffer and hashes and compares those bytes; nothing is allocated per call.
 */

import { L1Error } from './errors.ts';

const encoder = new TextEncoder();

/**
 * A key's bytes with a 32-bit word view of the same memory (offset 0, length a multiple
 * of 4): hashing and comparing a word at a time is about twice as fast as per byte.
 */
export interface KeyBytes {
  readonly bytes: Uint8Array;
  readonly words: Uint32Array;
}

/** Scratch space for keys of up to `maxBytes` (+4 so an over-long key is still detected). */
export function keyScratch(maxBytes: number): KeyBytes {
  const buffer = new ArrayBuffer(Math.ceil((maxBytes + 4) / 4) * 4);
  return { bytes: new Uint8Array(buffer), words: new Uint32Array(buffer) };
}

/** KeyBytes holding a copy of `bytes` (tests, tools). */
export function keyBytesOf(bytes: Uint8Array): KeyBytes {
  const k = keyScratch(bytes.length);
  k.bytes.set(bytes);
  return k;
}

/**
 * Encode `key` into `scratch` and return its byte length. `scratch` has one byte more
 * than the limit so that an over-long key is detected without a second pass.
 */
export function encodeKey(
  key: string | Uint8Array,
  scratch: KeyBytes,
  maxBytes: number,
  what: string,
): number {
  const bytes = scratch.bytes;
  let len: number;
  if (typeof key === 'string') {
    // encodeInto beat a charCodeAt loop on sliced strings (what handlers pass) in bench.
    const r = encoder.encodeInto(key, bytes);
    len = r.read === key.length ? r.written : maxBytes + 1;
  } else if (key instanceof Uint8Array) {
    len = key.length;
    if (len <= maxBytes) bytes.set(key);
  } else {
    throw new L1Error(
      'HS_ERR_KEY_INVALID',
      `${what} must be a string or Uint8Array (got ${typeof key})`,
    );
  }
  if (len === 0) throw new L1Error('HS_ERR_KEY_EMPTY', `${what} must not be empty`);
  if (len > maxBytes) {
    throw new L1Error(
      'HS_ERR_KEY_TOO_LONG',
      `${what} is longer than maxKeyBytes (${maxBytes} bytes in UTF-8)`,
    );
  }
  return len;
}
