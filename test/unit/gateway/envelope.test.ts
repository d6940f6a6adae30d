import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { unwrap, wrap } from '../../../src/gateway/envelope.ts';

describe('content-type envelope', () => {
  it('round-trips any body with any content type', () => {
    fc.assert(
      fc.property(
        fc.uint8Array(),
        fc.option(fc.stringMatching(/^[\x20-\x7e]{1,255}$/), { nil: undefined }),
        (bytes, type) => {
          const body = Buffer.from(bytes);
          const back = unwrap(wrap(type, body));
          expect(back.body).toEqual(body);
          expect(back.contentType).toBe(type ?? 'application/octet-stream');
        },
      ),
    );
  });

  it('stores octet-stream bodies as they are, so other clients see the same bytes', () => {
    const body = Buffer.from('plain');
    expect(wrap(undefined, body)).toBe(body);
    expect(wrap('application/octet-stream', body)).toBe(body);
    expect(unwrap(body)).toEqual({ contentType: 'application/octet-stream', body });
  });

  it('wraps a body that starts like an envelope, so it is never misread', () => {
    const tricky = Buffer.concat([
      Buffer.from([0x00, 0x68, 0x73, 0x63, 0x74, 0x01, 4]),
      Buffer.from('text/html'),
    ]);
    expect(unwrap(wrap(undefined, tricky))).toEqual({
      contentType: 'application/octet-stream',
      body: tricky,
    });
  });
});
