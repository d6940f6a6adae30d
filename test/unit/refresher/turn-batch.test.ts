import { describe, expect, it } from 'vitest';
import { exactBytes, itemsOf, MAX_BATCH, TurnBatch } from '../../../src/refresher/turn-batch.ts';

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('TurnBatch (one message per event-loop turn)', () => {
  it('posts what one turn added as one array, in order, in that turn', async () => {
    const posted: number[][] = [];
    const batch = new TurnBatch<number>((items) => posted.push(items));
    batch.add(1);
    batch.add(2);
    await Promise.resolve();
    batch.add(3);
    expect(posted).toEqual([]);
    await nextTurn();
    expect(posted).toEqual([[1, 2, 3]]);
    batch.add(4);
    await nextTurn();
    expect(posted).toEqual([[1, 2, 3], [4]]);
  });

  it('splits more than MAX_BATCH items into arrays of at most MAX_BATCH, in order', async () => {
    const posted: number[][] = [];
    const batch = new TurnBatch<number>((items) => posted.push(items));
    const n = MAX_BATCH * 2 + 5;
    for (let i = 0; i < n; i++) batch.add(i);
    await nextTurn();
    expect(posted.map((p) => p.length)).toEqual([MAX_BATCH, MAX_BATCH, 5]);
    expect(posted.flat()).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('flush sends at once and nothing twice; discard forgets', async () => {
    const posted: string[][] = [];
    const batch = new TurnBatch<string>((items) => posted.push(items));
    batch.add('a');
    batch.flush();
    expect(posted).toEqual([['a']]);
    batch.add('b');
    batch.discard();
    await nextTurn();
    expect(posted).toEqual([['a']]);
    batch.flush();
    expect(posted).toEqual([['a']]);
  });

  it('itemsOf reads a single message or a batch, never more than MAX_BATCH items', () => {
    expect(itemsOf({ t: 'x' })).toEqual([{ t: 'x' }]);
    expect(itemsOf('garbage')).toEqual(['garbage']);
    expect(itemsOf([1, 2])).toEqual([1, 2]);
    expect(itemsOf(new Array(MAX_BATCH + 10).fill(0))).toHaveLength(MAX_BATCH);
  });

  it('a batch that cannot be cloned is posted item by item; only what fails is dropped, nothing throws', async () => {
    const posted: unknown[][] = [];
    const batch = new TurnBatch<unknown>((items) => {
      structuredClone(items);
      posted.push(items);
    });
    batch.add('a');
    batch.add(() => 'a function cannot be cloned');
    batch.add('b');
    await nextTurn();
    expect(posted).toEqual([['a'], ['b']]);
  });

  it('exactBytes: a view of part of a buffer becomes its own exact copy (a clone would copy the whole buffer)', () => {
    const big = new Uint8Array(64 * 1024).fill(7);
    const part = big.subarray(100, 110);
    const exact = exactBytes(part);
    expect(exact.buffer.byteLength).toBe(10);
    expect([...exact]).toEqual([...part]);
    const whole = new Uint8Array(10);
    expect(exactBytes(whole)).toBe(whole);
    expect(exactBytes(whole, true)).not.toBe(whole);
    expect(structuredClone({ v: exact }).v.buffer.byteLength).toBe(10);
  });
});
