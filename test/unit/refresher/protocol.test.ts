/**
 * parseAsk is what stands between a thread with a bug (or a compromised dependency in
 * one) and the refresher: whatever it lets through, the refresher acts on. The property
 * below throws near-valid asks at it, one field wrong at a time, and checks that every
 * ask it accepts is one the refresher can act on safely.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAsk } from '../../../src/refresher/protocol.ts';

const MAX_KEY_BYTES = 64;

/** The contract, written out independently of parseAsk: can the refresher act on `a`? */
function actionable(a: Record<string, unknown>): boolean {
  const str = (v: unknown) => typeof v === 'string';
  const int = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const key =
    typeof a.key === 'string' &&
    a.key.length > 0 &&
    a.key.isWellFormed() &&
    Buffer.byteLength(a.key) <= MAX_KEY_BYTES;
  if (!key || !str(a.from)) return false;
  switch (a.t) {
    case 'fetch':
      // seq: optional (a reply carries it back); when given, a count.
      return typeof a.load === 'boolean' && (a.seq === undefined || int(a.seq));
    case 'store':
      return a.value instanceof Uint8Array && int(a.flags) && int(a.ttlMs);
    case 'set':
      return a.value instanceof Uint8Array && int(a.flags) && int(a.ttlMs) && int(a.id);
    case 'delete':
      return int(a.id);
    case 'gone':
    case 'release':
      return true;
    case 'loadFailed':
      return str(a.code) && str(a.message);
    default:
      return false;
  }
}

const value = new Uint8Array([1]);
const VALID = [
  { t: 'fetch', key: 'k', from: 'c', load: false },
  { t: 'fetch', key: 'k', from: 'c', load: true, seq: 7 },
  { t: 'store', key: 'k', from: 'c', value, flags: 1, ttlMs: 0 },
  { t: 'gone', key: 'k', from: 'c' },
  { t: 'loadFailed', key: 'k', from: 'c', code: 'HS_ERR_LOADER_FAILED', message: 'm' },
  { t: 'set', id: 1, key: 'k', from: 'c', value, flags: 1, ttlMs: 100 },
  { t: 'delete', id: 2, key: 'k', from: 'c' },
  { t: 'release', key: 'k', from: 'c' },
];

/** Values a buggy thread might put in a field instead of the right one. */
const wrong = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.constantFrom(-1, 1.5, Number.NaN, 2 ** 60, '', 'k'.repeat(65), 'é'.repeat(33), '\ud800'),
  fc.constantFrom('fetch', 'flushall', true, 0, 7, new Uint8Array(0), [1], { a: 1 }),
  fc.string(),
  fc.integer(),
  fc.anything(),
);

describe('parseAsk', () => {
  it('accepts each well-formed ask as it is', () => {
    for (const a of VALID) expect(parseAsk(a, MAX_KEY_BYTES)).toBe(a);
  });

  it('drops the asks a buggy thread posts, keys over the byte limit and lone surrogates included', () => {
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
      // 33 characters, 66 bytes: the limit is in bytes.
      { t: 'fetch', key: 'é'.repeat(33), from: 'c', load: false },
      { t: 'delete', key: '\ud800', from: 'c', id: 1 },
    ];
    for (const b of bad) expect(parseAsk(b, MAX_KEY_BYTES)).toBeUndefined();
  });

  it('accepts an ask with one field changed exactly when the refresher can still act on it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...VALID),
        fc.constantFrom(
          't',
          'key',
          'from',
          'load',
          'seq',
          'value',
          'flags',
          'ttlMs',
          'id',
          'code',
          'message',
        ),
        wrong,
        (ask, field, replacement) => {
          const mutated: Record<string, unknown> = { ...ask, [field]: replacement };
          if (replacement === undefined) delete mutated[field];
          const parsed = parseAsk(mutated, MAX_KEY_BYTES);
          expect(parsed !== undefined).toBe(actionable(mutated));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('never lets through anything the refresher cannot act on, whatever the input', () => {
    fc.assert(
      fc.property(fc.anything(), (junk) => {
        const parsed = parseAsk(junk, MAX_KEY_BYTES);
        if (parsed !== undefined) expect(actionable(parsed as Record<string, unknown>)).toBe(true);
      }),
    );
  });

  it('a fleet hot-set ask (no key) is taken with an id and a limit in range, and nothing more', () => {
    const ok = { t: 'hot', id: 3, from: 'c1', limit: 10 };
    expect(parseAsk(ok, 64)).toEqual(ok);
    expect(parseAsk({ ...ok, extra: 'dropped', key: 'k' }, 64)).toEqual(ok);
    for (const bad of [
      { ...ok, limit: 0 },
      { ...ok, limit: 513 },
      { ...ok, limit: 1.5 },
      { ...ok, id: -1 },
      { ...ok, from: 7 },
      { t: 'hot', from: 'c1', limit: 10 },
    ])
      expect(parseAsk(bad, 64), JSON.stringify(bad)).toBeUndefined();
  });
});
