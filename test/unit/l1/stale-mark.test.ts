/**
 * The stale mark (markAllStale): every entry written before it reads as stale, through
 * get and through a thread's memo, until rewritten; entries written after it are fresh.
 * The mark is lifted once the entries it judges have expired, and a table that would
 * outrun it by 2^30 versions is cleared instead.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { L1Writer, newRef, ReadMemo } from '../../../src/l1/index.ts';
import { H } from '../../../src/l1/layout.ts';
import { bytes, FOREVER, makeL1 } from '../../fixtures/l1/l1.ts';

const header = (handle: { sab: SharedArrayBuffer }) => new Int32Array(handle.sab, 0, 128);

describe('the stale mark', () => {
  it('makes every older entry stale at once, in get and in a memo, and leaves newer ones fresh', () => {
    const { handle, writer, table } = makeL1();
    writer.set('a', bytes('1'), FOREVER);
    writer.set('b', bytes('2'), FOREVER);
    const memo = new ReadMemo<string>(table, 1 << 20);
    const ref = newRef();
    const a = table.get('a', ref);
    expect(a?.state).toBe('fresh');
    memo.keep('a', ref, 'a1', 1);
    expect(memo.fresh('a')).toBe('a1');

    writer.markAllStale();
    expect(table.get('a')?.state).toBe('stale');
    expect(table.get('b')?.state).toBe('stale');
    expect(table.get('a')?.value.toString()).toBe('1');
    expect(table.freshAge(ref)).toBe(-1);
    expect(memo.fresh('a')).toBeUndefined();
    expect(header(handle)[H.STALE_BELOW]).not.toBe(0);

    writer.set('c', bytes('3'), FOREVER);
    writer.set('a', bytes('1b'), FOREVER);
    expect(table.get('c')?.state).toBe('fresh');
    expect(table.get('a')?.state).toBe('fresh');
    expect(table.get('a')?.value.toString()).toBe('1b');
    expect(table.get('b')?.state).toBe('stale');
  });

  it('is lifted once the entries it judged are past their hard expiry, and a clear lifts it', async () => {
    const { handle, writer, table } = makeL1();
    writer.set('short', bytes('x'), { softTtlMs: 20, hardTtlMs: 40 });
    writer.markAllStale();
    writer.sweepExpired();
    expect(header(handle)[H.STALE_BELOW]).not.toBe(0);
    await sleep(60);
    writer.set('new', bytes('y'), FOREVER);
    writer.sweepExpired();
    expect(header(handle)[H.STALE_BELOW]).toBe(0);
    expect(table.get('new')?.state).toBe('fresh');

    writer.markAllStale();
    expect(table.get('new')?.state).toBe('stale');
    writer.clear();
    expect(header(handle)[H.STALE_BELOW]).toBe(0);
  });

  it('a writer that takes over keeps the mark until the old entries it judges expire', async () => {
    const { handle, writer, table } = makeL1();
    writer.set('old', bytes('x'), { softTtlMs: 20, hardTtlMs: 50 });
    writer.markAllStale();
    // The first writer dies without closing; a new one takes over.
    const successor = L1Writer.open(handle, { takeover: true });
    successor.sweepExpired();
    expect(table.get('old')?.state).toBe('stale');
    expect(header(handle)[H.STALE_BELOW]).not.toBe(0);
    await sleep(70);
    successor.sweepExpired();
    expect(header(handle)[H.STALE_BELOW]).toBe(0);
    successor.close();
  });

  it('clears the table rather than let 2^30 versions pass a mark that still judges entries', () => {
    const { handle, writer, table } = makeL1();
    writer.set('k', bytes('x'), FOREVER);
    writer.markAllStale();
    const h = header(handle);
    const mark = h[H.STALE_BELOW] >>> 0;
    // Stand in for a billion writes: move the version counter on by 2^30.
    Atomics.store(h, H.VERSION_COUNTER, (mark + 2 ** 30) | 0);
    writer.sweepExpired();
    expect(table.get('k')).toBeUndefined();
    expect(h[H.STALE_BELOW]).toBe(0);
    writer.set('k', bytes('y'), FOREVER);
    expect(table.get('k')?.state).toBe('fresh');
  });

  it('judges versions modulo 2^32: entries written after a mark near the wrap are fresh', () => {
    const { handle, writer, table } = makeL1();
    const h = header(handle);
    Atomics.store(h, H.VERSION_COUNTER, (2 ** 32 - 3) | 0);
    writer.set('before', bytes('x'), FOREVER);
    writer.markAllStale();
    writer.set('after1', bytes('y'), FOREVER);
    writer.set('after2', bytes('z'), FOREVER);
    writer.set('after3', bytes('w'), FOREVER);
    expect(table.get('before')?.state).toBe('stale');
    for (const k of ['after1', 'after2', 'after3']) expect(table.get(k)?.state, k).toBe('fresh');
  });
});
