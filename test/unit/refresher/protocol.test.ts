import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAsk } from '../../../src/refresher/protocol.ts';

describe('parseAsk', () => {
  it('accepts each well-formed ask', () => {
    const value = new Uint8Array([1]);
    const asks = [
      { t: 'fetch', key: 'k', from: 'c', load: false },
      { t: 'store', key: 'k', from: 'c', value, flags: 1, ttlMs: 0 },
      { t: 'gone', key: 'k', from: 'c' },
      { t: 'loadFailed', key: 'k', from: 'c', code: 'HS_ERR_LOADER_FAILED', message: 'm' },
      { t: 'set', id: 1, key: 'k', from: 'c', value, flags: 1, ttlMs: 100 },
      { t: 'delete', id: 2, key: 'k', from: 'c' },
      { t: 'release', key: 'k', from: 'c' },
    ];
    for (const a of asks) expect(parseAsk(a, 64)).toBe(a);
  });

  it('drops anything else, whatever a buggy thread posts', () => {
    const bad = [
      null,
      'fetch',
      { t: 'fetch', key: 'k', from: 'c' },
      { t: 'fetch', key: 1, from: 'c', load: true },
      { t: 'set', key: 'k', from: 'c', value: 'str', flags: 0, ttlMs: 0, id: 1 },
      { t: 'set', key: 'k', from: 'c', value: new Uint8Array(), flags: 0, ttlMs: -1, id: 1 },
      { t: 'set', key: 'k', from: 'c', value: new Uint8Array(), flags: 0, ttlMs: 0 },
      { t: 'delete', key: 'k', from: 'c', id: 1.5 },
      { t: 'flushall', key: 'k', from: 'c' },
      { t: 'fetch', key: '', from: 'c', load: false },
      { t: 'fetch', key: 'k'.repeat(65), from: 'c', load: false },
      { t: 'fetch', key: 'é'.repeat(33), from: 'c', load: false },
      { t: 'delete', key: '\ud800', from: 'c', id: 1 },
    ];
    for (const b of bad) expect(parseAsk(b, 64)).toBeUndefined();
    fc.assert(
      fc.property(fc.anything(), (junk) => {
        const parsed = parseAsk(junk, 64);
        if (parsed !== undefined) expect(typeof parsed.key).toBe('string');
      }),
    );
  });
});
