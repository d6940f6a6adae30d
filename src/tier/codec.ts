/**
 * Value codecs. `msgpack` (the default) stores structured values — objects, arrays,
 * Dates, Maps, Sets, typed arrays, BigInts — with msgpackr's structured-clone mode;
 * `raw` stores bytes as given and returns Buffers; `utf8` stores strings.
 *
 * The codec that produced an entry's bytes is recorded in the entry's flags
 * (protocol.ts), and a reader decodes only entries of its own codec (or entries read
 * from Redis, whose codec nobody recorded): a msgpack reader never unpacks a utf8
 * string into a number. `raw` reads anything, since bytes are bytes.
 */

import { Packr } from 'msgpackr';
import { HotshieldError } from '../errors.ts';
import { CODEC_ID, type CodecId, FLAG_CODEC_MASK } from '../refresher/protocol.ts';

export const CODECS = ['msgpack', 'raw', 'utf8'] as const;
export type CodecName = (typeof CODECS)[number];

const packr = new Packr({ structuredClone: true });

export function codecId(codec: CodecName): CodecId {
  return CODEC_ID[codec];
}

function codecError(message: string, cause?: unknown): HotshieldError {
  return new HotshieldError('HS_ERR_CODEC', message, { cause });
}

export function encode(codec: CodecName, value: unknown): Uint8Array {
  if (value === undefined) throw codecError('undefined cannot be stored (delete the key instead)');
  switch (codec) {
    case 'msgpack':
      try {
        return packr.pack(value);
      } catch (error) {
        throw codecError(`msgpack cannot encode this value: ${(error as Error).message}`, error);
      }
    case 'raw':
      if (value instanceof Uint8Array) return value;
      if (typeof value === 'string') return Buffer.from(value, 'utf8');
      throw codecError('the raw codec stores a Buffer, Uint8Array or string');
    case 'utf8':
      if (typeof value === 'string') return Buffer.from(value, 'utf8');
      throw codecError('the utf8 codec stores strings');
  }
}

/** Decode `bytes` stored with `flags`, for a reader using `codec`. */
export function decode(codec: CodecName, bytes: Buffer | Uint8Array, flags: number): unknown {
  const stored = flags & FLAG_CODEC_MASK;
  // A view, not a copy: the bytes are this thread's own (an L1 copy-out or a reply's clone).
  if (codec === 'raw')
    return Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (stored !== CODEC_ID.unknown && stored !== CODEC_ID[codec]) {
    const name = CODECS.find((c) => CODEC_ID[c] === stored) ?? `#${stored}`;
    throw new HotshieldError(
      'HS_ERR_CODEC_MISMATCH',
      `this value was stored with the ${name} codec; this tier reads ${codec} (codec)`,
    );
  }
  if (codec === 'utf8')
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw codecError(`the stored bytes are not msgpack: ${(error as Error).message}`, error);
  }
}
