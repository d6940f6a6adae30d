/**
 * Keys and counter names are UTF-8 byte strings. A thread encodes each key once into its
 * own scratch buffer and hashes and compares those bytes; nothing is allocated per call.
 */

import { L1Error } from './errors.ts';

const encoder = new TextEncoder();

/**
 * Encode `key` into `scratch` and return its byte length. `scratch` has one byte more
 * than the limit so that an over-long key is detected without a second pass.
 */
export function encodeKey(
  key: string | Uint8Array,
  scratch: Uint8Array,
  maxBytes: number,
  what: string,
): number {
  let len: number;
  if (typeof key === 'string') {
    len = key.length <= maxBytes ? asciiInto(key, scratch) : -1;
    if (len < 0) {
      // Not ASCII (or too long to tell cheaply): the general encoder, which allocates a result.
      const r = encoder.encodeInto(key, scratch);
      len = r.read === key.length ? r.written : maxBytes + 1;
    }
  } else if (key instanceof Uint8Array) {
    len = key.length;
    if (len <= maxBytes) scratch.set(key);
  } else {
    throw new L1Error(
      'HS_ERR_KEY_EMPTY',
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

/**
 * Copy an ASCII string's code units into `scratch` (they are its UTF-8 bytes); -1 at the
 * first non-ASCII one. Most cache keys are ASCII, and this skips the encoder's result
 * object: about a third of a lookup's cost on short keys.
 */
function asciiInto(key: string, scratch: Uint8Array): number {
  const n = key.length;
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c > 0x7f) return -1;
    scratch[i] = c;
  }
  return n;
}
