/**
 * ReadMemo: what a thread remembers of an entry is served only while that very entry is
 * still published and fresh. Each case changes the entry one way (rewrite, delete,
 * clear, expiry, eviction, promotion) and checks that the memo stops answering.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { type L1Table, newRef, ReadMemo } from '../../../src/l1/index.ts';
import { ptrToOffset } from '../../../src/l1/index-table.ts';
import { E, MAX_ACCESS, readLayout } from '../../../src/l1/layout.ts';
import { makeViews } from '../../../src/l1/views.ts';
import { bytes, FOREVER, makeL1 } from '../../fixtures/l1/l1.ts';

/** Read `key` as a memo user does: from the memo, else from the table (remembering it). */
function read(memo: ReadMemo<string>, table: L1Table, key: string): string | undefined {
  const kept = memo.fresh(key);
  if (kept !== undefined) return kept;
  const ref = newRef();
  const e = table.get(key, ref);
  if (e === undefined) return undefined;
  const item = e.value.toString();
  if (e.state === 'fresh') memo.keep(key, ref, item, e.value.length);
  return item;
}

describe('ReadMemo', () => {
  it('answers from memory while the entry is unchanged, and counts each answer as a hit', () => {
    const { writer, table } = makeL1();
    const memo = new ReadMemo<string>(table, 1 << 20);
    const version = writer.set('k', bytes('one'), FOREVER);
    expect(memo.fresh('k')).toBeUndefined();
    expect(read(memo, table, 'k')).toBe('one');
    const hitsBefore = table.stats().hits;
    for (let i = 0; i < 10; i++) expect(memo.fresh('k')).toBe('one');
    expect(table.stats().hits - hitsBefore).toBe(10);
    expect(memo.ageMs).toBeGreaterThanOrEqual(0);
    expect(table.get('k')?.version).toBe(version);
  });

  it('a rewrite, a delete and a clear each end what was remembered', () => {
    const { writer, table } = makeL1();
    const memo = new ReadMemo<string>(table, 1 << 20);
    writer.set('k', bytes('one'), FOREVER);
    expect(read(memo, table, 'k')).toBe('one');
    writer.set('k', bytes('two'), FOREVER);
    expect(memo.fresh('k')).toBeUndefined();
    expect(read(memo, table, 'k')).toBe('two');
    expect(memo.fresh('k')).toBe('two');
    writer.delete('k');
    expect(memo.fresh('k')).toBeUndefined();
    expect(read(memo, table, 'k')).toBeUndefined();
    writer.set('k', bytes('three'), FOREVER);
    expect(read(memo, table, 'k')).toBe('three');
    writer.clear();
    expect(memo.fresh('k')).toBeUndefined();
    expect(memo.size.entries).toBe(0);
  });

  it('a value past its soft expiry is not answered (the caller then reads it as stale)', async () => {
    const { writer, table } = makeL1();
    const memo = new ReadMemo<string>(table, 1 << 20);
    writer.set('k', bytes('v'), { softTtlMs: 40, hardTtlMs: 10_000 });
    expect(read(memo, table, 'k')).toBe('v');
    expect(memo.fresh('k')).toBe('v');
    await sleep(80);
    expect(memo.fresh('k')).toBeUndefined();
    expect(table.get('k')?.state).toBe('stale');
  });

  it('an entry evicted (and its memory reused) or moved by eviction is not answered', () => {
    const { writer, table } = makeL1({ bytes: 256 * 1024, maxValueBytes: 1024, maxCounters: 64 });
    const memo = new ReadMemo<string>(table, 64 << 20);
    const n = 3000;
    for (let i = 0; i < n; i++) writer.set(`key:${i}`, bytes(`v${i}`.padEnd(200, '.')), FOREVER);
    for (let i = 0; i < n; i++) read(memo, table, `key:${i}`);
    const remembered = memo.size.entries;
    expect(remembered).toBeGreaterThan(100);
    // Churn until every remembered entry has been evicted or moved at least once.
    for (let i = 0; i < 20_000; i++) writer.set(`other:${i}`, Buffer.alloc(200, 1), FOREVER);
    expect(table.stats().evictions).toBeGreaterThan(n);
    let answered = 0;
    for (let i = 0; i < n; i++) {
      const kept = memo.fresh(`key:${i}`);
      if (kept === undefined) continue;
      answered++;
      // Anything still answered is exactly what the table holds.
      expect(table.get(`key:${i}`)?.value.toString()).toBe(kept);
    }
    expect(answered).toBeLessThan(remembered);
  });

  it('an answer from memory counts as an access for eviction, as a table read does', () => {
    const { handle, writer, table } = makeL1();
    const memo = new ReadMemo<string>(table, 1 << 20);
    const views = makeViews(handle.sab, readLayout(handle.sab));
    const accessOf = (ptr: number) =>
      views.arenaU32[(ptrToOffset(ptr) >>> 2) + E.ACCESS / 4] & MAX_ACCESS;
    writer.set('hot', bytes('v'), FOREVER);
    const ref = newRef();
    table.get('hot', ref);
    memo.keep('hot', ref, 'v', 1);
    expect(accessOf(ref.ptr)).toBe(1);
    // A key read only from memory must still look hot to S3-FIFO, or it would be evicted.
    for (let i = 0; i < 5; i++) expect(memo.fresh('hot')).toBe('v');
    expect(accessOf(ref.ptr)).toBe(MAX_ACCESS);
  });

  it('stays within its byte bound, forgetting the oldest first', () => {
    const { writer, table } = makeL1();
    const memo = new ReadMemo<string>(table, 10_000);
    for (let i = 0; i < 200; i++) writer.set(`k${i}`, Buffer.alloc(500, 1), FOREVER);
    for (let i = 0; i < 200; i++) read(memo, table, `k${i}`);
    expect(memo.size.bytes).toBeLessThanOrEqual(10_000);
    expect(memo.size.entries).toBeGreaterThan(5);
    expect(memo.fresh('k0')).toBeUndefined();
    expect(memo.fresh('k199')).toBeDefined();
    // An item heavier than the whole bound is not kept at all.
    const tiny = new ReadMemo<string>(table, 100);
    read(tiny, table, 'k1');
    expect(tiny.size.entries).toBe(0);
  });
});
