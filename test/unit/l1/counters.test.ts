import { describe, expect, it } from 'vitest';
import { type L1Error, MAX_COUNTER_NAME_BYTES } from '../../../src/l1/index.ts';
import { l1ErrorCode, makeL1 } from '../../fixtures/l1/l1.ts';
import { flushCounters } from '../../fixtures/l1/l1-flush.ts';

describe('L1 counters', () => {
  it('adds, reports pending, and flushes to zero per name', () => {
    const { writer, table } = makeL1();
    table.addCounter('likes:video:1', 3);
    table.addCounter('likes:video:1', -1);
    table.addCounter('likes:видео:2', 10);
    expect(table.pendingCounter('likes:video:1')).toBe(2n);
    expect(table.pendingCounter('absent')).toBe(0n);
    expect(Object.fromEntries(flushCounters(writer))).toEqual({
      'likes:video:1': 2n,
      'likes:видео:2': 10n,
    });
    expect(flushCounters(writer).size).toBe(0);
    expect(table.pendingCounter('likes:video:1')).toBe(0n);
    table.addCounter('likes:video:1', 5);
    expect(Object.fromEntries(flushCounters(writer))).toEqual({ 'likes:video:1': 5n });
    // `added` keeps everything ever added; only the acknowledged mark moves.
    expect(table.counterAdded('likes:video:1')).toBe(7n);
    expect(table.counterAdded('absent')).toBe(0n);
    expect(table.stats()).toMatchObject({ counters: 2, counterAdds: 4 });
  });

  it('a flush recorded but never acknowledged is re-sent whole, once, before new adds', () => {
    const { writer, table } = makeL1();
    table.addCounter('c', 4);
    expect(flushCounters(writer, true).size).toBe(0); // recorded, then the flusher "died"
    table.addCounter('c', 3);
    expect(table.pendingCounter('c')).toBe(7n);
    expect(flushCounters(writer).get('c')).toBe(4n); // the same flush again
    expect(flushCounters(writer).get('c')).toBe(3n); // then the newer add
    expect(table.pendingCounter('c')).toBe(0n);
  });

  it('adds that sum to zero are settled without a flush, and wake their waiters', async () => {
    const { writer, table } = makeL1();
    table.addCounter('z', 5);
    const ticket = table.addCounterTicket('z', -5);
    expect(ticket.op).toBe(2);
    const waited = table.waitCounterAck(ticket, 5_000);
    expect(flushCounters(writer).size).toBe(0);
    expect(await waited).toBe(true);
    expect(await table.waitCounterAck(table.addCounterTicket('z', 1), 20)).toBe(false);
  });

  it('sums beyond 32 bits exactly', () => {
    const { writer, table } = makeL1();
    for (let i = 0; i < 1000; i++) table.addCounter('big', 2 ** 40);
    expect(flushCounters(writer).get('big')).toBe(1000n * 2n ** 40n);
  });

  it('rejects bad deltas and names with typed errors, changing nothing', () => {
    const { writer, table } = makeL1();
    for (const bad of [
      0,
      1.5,
      Number.NaN,
      Infinity,
      2 ** 40 + 1,
      -(2 ** 41),
      '3' as unknown as number,
    ]) {
      expect(l1ErrorCode(() => table.addCounter('c', bad))).toBe('HS_ERR_COUNTER_DELTA');
    }
    expect(l1ErrorCode(() => table.addCounter('', 1))).toBe('HS_ERR_KEY_EMPTY');
    expect(l1ErrorCode(() => table.addCounter('x'.repeat(MAX_COUNTER_NAME_BYTES + 1), 1))).toBe(
      'HS_ERR_KEY_TOO_LONG',
    );
    table.addCounter('x'.repeat(MAX_COUNTER_NAME_BYTES), 1);
    expect(flushCounters(writer).get('x'.repeat(MAX_COUNTER_NAME_BYTES))).toBe(1n);
    expect(table.stats().counters).toBe(1);
  });

  it('a full counter table is a typed error; existing counters keep working', () => {
    const { writer, table } = makeL1({ maxCounters: 64 });
    let created = 0;
    let error: unknown;
    for (let i = 0; i < 200 && error === undefined; i++) {
      try {
        table.addCounter(`c${i}`, 1);
        created++;
      } catch (e) {
        error = e;
      }
    }
    expect((error as L1Error).code).toBe('HS_ERR_COUNTER_TABLE_FULL');
    expect(created).toBe(64);
    table.addCounter('c0', 41);
    expect(flushCounters(writer).get('c0')).toBe(42n);
  });
});

describe('L1 counters when a creator dies mid-claim', () => {
  it('a cell left CLAIMING by a dead thread is skipped after a short wait; counts stay exact', async () => {
    const { writer, table, handle } = makeL1({ maxCounters: 64 });
    const { C, COUNTER_CELL_BYTES, COUNTER_STATE, H } = await import('../../../src/l1/layout.ts');
    const { halfSipHash } = await import('../../../src/l1/hash.ts');
    const { keyScratch } = await import('../../../src/l1/key-bytes.ts');
    const layout = writer.layout;
    const cells = new Int32Array(
      handle.sab,
      layout.countersOffset,
      (layout.maxCounters * COUNTER_CELL_BYTES) / 4,
    );
    // Freeze the name's home cell the way a claimer terminated between its
    // compare-exchange and its READY store would leave it.
    const name = 'likes:orphaned';
    const scratch = keyScratch(64);
    const n = new TextEncoder().encodeInto(name, scratch.bytes).written;
    const header = new Int32Array(handle.sab, 0, 128);
    const home =
      halfSipHash(scratch, n, header[H.SEED0], header[H.SEED1]) & (layout.maxCounters - 1);
    Atomics.store(cells, home * (COUNTER_CELL_BYTES / 4) + C.STATE_WORD, COUNTER_STATE.CLAIMING);
    table.addCounter(name, 5);
    table.addCounter(name, 6);
    expect(table.pendingCounter(name)).toBe(11n);
    expect(flushCounters(writer).get(name)).toBe(11n);
    expect(Atomics.load(cells, home * (COUNTER_CELL_BYTES / 4) + C.STATE_WORD)).toBe(
      COUNTER_STATE.CLAIMING,
    );
  });
});
