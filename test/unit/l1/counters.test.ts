import { describe, expect, it } from 'vitest';
import { type L1Error, MAX_COUNTER_NAME_BYTES } from '../../../src/l1/index.ts';
import { l1ErrorCode, makeL1 } from '../../fixtures/l1.ts';

describe('L1 counters', () => {
  it('adds, reports pending, and drains to zero per name', () => {
    const { writer, table } = makeL1();
    table.addCounter('likes:video:1', 3);
    table.addCounter('likes:video:1', -1);
    table.addCounter('likes:видео:2', 10);
    expect(table.pendingCounter('likes:video:1')).toBe(2);
    expect(table.pendingCounter('absent')).toBe(0);
    expect(Object.fromEntries(writer.drainCounters())).toEqual({
      'likes:video:1': 2,
      'likes:видео:2': 10,
    });
    expect(writer.drainCounters().size).toBe(0);
    expect(table.pendingCounter('likes:video:1')).toBe(0);
    table.addCounter('likes:video:1', 5);
    expect(Object.fromEntries(writer.drainCounters())).toEqual({ 'likes:video:1': 5 });
    expect(table.stats()).toMatchObject({ counters: 2, counterAdds: 4 });
  });

  it('sums beyond 32 bits exactly', () => {
    const { writer, table } = makeL1();
    for (let i = 0; i < 1000; i++) table.addCounter('big', 2 ** 40);
    expect(writer.drainCounters().get('big')).toBe(1000 * 2 ** 40);
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
    expect(writer.drainCounters().get('x'.repeat(MAX_COUNTER_NAME_BYTES))).toBe(1);
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
    expect(writer.drainCounters().get('c0')).toBe(42);
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
    expect(table.pendingCounter(name)).toBe(11);
    expect(writer.drainCounters().get(name)).toBe(11);
    expect(Atomics.load(cells, home * (COUNTER_CELL_BYTES / 4) + C.STATE_WORD)).toBe(
      COUNTER_STATE.CLAIMING,
    );
  });
});
