/**
 * HalfSipHash-1-3 with a 64-bit key: the keyed hash Linux uses for hash tables on 32-bit
 * machines (`hsiphash`). Keys reaching the table come from HTTP requests, so the hash is
 * keyed with random bytes chosen when the table is created: an attacker who cannot read
 * the key cannot compute colliding keys (HashDoS). It is pure 32-bit add/rotate/xor,
 * which V8 compiles to integer code without allocation.
 *
 * The SipRound is written out in each of its three loops on purpose: a helper would have
 * to return four words (an allocation) or keep them outside the function (slower).
 *
 * The round count is a parameter only so the test can check the implementation against
 * the reference HalfSipHash-2-4 vectors as well as the kernel's HalfSipHash-1-3 ones.
 */

import type { KeyBytes } from './key-bytes.ts';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

/** Hash `len` bytes of `bytes` with key (k0, k1); `rounds` = [compression, finalization]. */
export function halfSipHash(
  key: KeyBytes,
  len: number,
  k0: number,
  k1: number,
  cRounds = 1,
  dRounds = 3,
): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = (0x6c796765 ^ k0) | 0;
  let v3 = (0x74656462 ^ k1) | 0;
  const { bytes, words } = key;
  const nWords = len >>> 2;
  for (let w = 0; w < nWords; w++) {
    // Message words are little-endian; on a big-endian machine assemble them from bytes.
    const m = LITTLE_ENDIAN
      ? words[w] | 0
      : bytes[4 * w] |
        (bytes[4 * w + 1] << 8) |
        (bytes[4 * w + 2] << 16) |
        (bytes[4 * w + 3] << 24);
    v3 ^= m;
    for (let r = 0; r < cRounds; r++) {
      v0 = (v0 + v1) | 0;
      v1 = rotl(v1, 5) ^ v0;
      v0 = rotl(v0, 16);
      v2 = (v2 + v3) | 0;
      v3 = rotl(v3, 8) ^ v2;
      v0 = (v0 + v3) | 0;
      v3 = rotl(v3, 7) ^ v0;
      v2 = (v2 + v1) | 0;
      v1 = rotl(v1, 13) ^ v2;
      v2 = rotl(v2, 16);
    }
    v0 ^= m;
  }
  const i = nWords << 2;
  let b = len << 24;
  const rest = len & 3;
  if (rest === 3) b |= bytes[i + 2] << 16;
  if (rest >= 2) b |= bytes[i + 1] << 8;
  if (rest >= 1) b |= bytes[i];
  v3 ^= b;
  for (let r = 0; r < cRounds; r++) {
    v0 = (v0 + v1) | 0;
    v1 = rotl(v1, 5) ^ v0;
    v0 = rotl(v0, 16);
    v2 = (v2 + v3) | 0;
    v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = rotl(v3, 7) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = rotl(v1, 13) ^ v2;
    v2 = rotl(v2, 16);
  }
  v0 ^= b;
  v2 ^= 0xff;
  for (let r = 0; r < dRounds; r++) {
    v0 = (v0 + v1) | 0;
    v1 = rotl(v1, 5) ^ v0;
    v0 = rotl(v0, 16);
    v2 = (v2 + v3) | 0;
    v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = rotl(v3, 7) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = rotl(v1, 13) ^ v2;
    v2 = rotl(v2, 16);
  }
  return (v1 ^ v3) >>> 0;
}
