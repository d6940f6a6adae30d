/**
 * The tier's checks of the keys it is given, before anything is read or written: what
 * L1's own check (empty, over maxKeyBytes) cannot see, the keys hotshield reserves for
 * itself, and the shard keys of counters, which a plain write would corrupt.
 */

import { isInternalKey } from '../keys/reserved-keys.ts';
import { isCounterShardKey } from '../keys/shard-keys.ts';
import { L1Error } from '../l1/index.ts';

/**
 * A key about to be read: a non-string, or a lone surrogate, which UTF-8 encoding would
 * silently turn into U+FFFD and so into another key. Reads skip checkKey's length pass:
 * L1 measures while encoding.
 */
export function checkReadKey(key: string): string {
  if (typeof key !== 'string') throw new L1Error('HS_ERR_KEY_INVALID', 'key must be a string');
  if (!key.isWellFormed())
    throw new L1Error('HS_ERR_KEY_INVALID', 'key is not well-formed UTF-16 (lone surrogate)');
  if (isInternalKey(key)) throw reservedKey();
  return key;
}

/** A key about to be written (it never passes through L1's check): the full check. */
export function checkKey(key: string, maxKeyBytes: number): string {
  if (typeof key !== 'string') throw new L1Error('HS_ERR_KEY_INVALID', 'key must be a string');
  if (key.length === 0) throw new L1Error('HS_ERR_KEY_EMPTY', 'key must not be empty');
  if (!key.isWellFormed())
    throw new L1Error('HS_ERR_KEY_INVALID', 'key is not well-formed UTF-16 (lone surrogate)');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > maxKeyBytes)
    throw new L1Error(
      'HS_ERR_KEY_TOO_LONG',
      `key is ${bytes} UTF-8 bytes; the limit is ${maxKeyBytes} (maxKeyBytes)`,
    );
  if (isInternalKey(key)) throw reservedKey();
  return key;
}

/** Refuse a write to a counter's shard key (shard-keys.ts, isCounterShardKey). */
export function checkWritable(key: string, counterShards: number): void {
  if (typeof key === 'string' && isCounterShardKey(key, counterShards)) {
    throw new L1Error(
      'HS_ERR_KEY_INVALID',
      `${key} is a shard of counter ${key.slice(0, key.lastIndexOf('#'))} (counterShards ${counterShards}): writing it would corrupt the counter`,
    );
  }
}

function reservedKey(): L1Error {
  return new L1Error(
    'HS_ERR_KEY_INVALID',
    'keys containing :__hotshield are reserved for hotshield (counter totals and flush marks)',
  );
}
