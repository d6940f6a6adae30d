import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CODEC_ID } from '../../../src/refresher/protocol.ts';
import { decode, encode } from '../../../src/tier/codec.ts';

describe('codecs', () => {
  it('msgpack round-trips any JSON-like value, and Dates, Maps, Sets and typed arrays', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        // A "__proto__" key is renamed on decode (next test), so it cannot round-trip.
        fc.pre(!JSON.stringify(v).includes('"__proto__"'));
        // msgpack has one integer zero: -0 comes back as 0, as it would through JSON.
        const expected = JSON.parse(JSON.stringify(v));
        expect(decode('msgpack', encode('msgpack', v), CODEC_ID.msgpack)).toEqual(expected);
      }),
    );
    const rich = {
      d: new Date(0),
      m: new Map([[{ k: 1 }, 'obj key']]),
      s: new Set(['a']),
      u: new Uint16Array([7]),
    };
    expect(decode('msgpack', encode('msgpack', rich), CODEC_ID.msgpack)).toEqual(rich);
  });

  it('a "__proto__" key cannot pollute prototypes: msgpackr renames it on decode', () => {
    const hostile = JSON.parse('{"__proto__":{"polluted":true},"a":1}');
    const back = decode('msgpack', encode('msgpack', hostile), CODEC_ID.msgpack) as Record<
      string,
      unknown
    >;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(back.a).toBe(1);
  });

  it('raw and utf8 keep bytes and strings exactly', () => {
    fc.assert(
      fc.property(fc.uint8Array(), fc.string(), (bytes, text) => {
        expect(decode('raw', encode('raw', bytes), CODEC_ID.raw)).toEqual(Buffer.from(bytes));
        expect(decode('utf8', encode('utf8', text), CODEC_ID.utf8)).toBe(
          Buffer.from(text).toString(),
        );
      }),
    );
  });

  it('decodes entries read from Redis (codec unknown) with the reader codec', () => {
    expect(decode('utf8', Buffer.from('from redis'), CODEC_ID.unknown)).toBe('from redis');
    expect(() => decode('msgpack', Buffer.from([0x92, 0x01]), CODEC_ID.unknown)).toThrow(
      expect.objectContaining({ code: 'HS_ERR_CODEC' }),
    );
  });

  it('refuses to decode an entry another codec wrote, except as raw bytes', () => {
    const text = encode('utf8', 'h');
    expect(() => decode('msgpack', text, CODEC_ID.utf8)).toThrow(
      expect.objectContaining({ code: 'HS_ERR_CODEC_MISMATCH' }),
    );
    expect(() => decode('utf8', encode('msgpack', 1), CODEC_ID.msgpack)).toThrow(
      expect.objectContaining({ code: 'HS_ERR_CODEC_MISMATCH' }),
    );
    expect(decode('raw', text, CODEC_ID.utf8)).toEqual(Buffer.from('h'));
  });

  it('refuses values a codec cannot store', () => {
    for (const [codec, value] of [
      ['msgpack', undefined],
      ['utf8', 42],
      ['raw', { a: 1 }],
      ['msgpack', Symbol('not storable')],
    ] as const) {
      expect(() => encode(codec, value)).toThrow(expect.objectContaining({ code: 'HS_ERR_CODEC' }));
    }
  });
});
