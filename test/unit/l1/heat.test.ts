/**
 * The heat table (src/l1/heat.ts, heat-keeper.ts): exact counts once a key has a record,
 * the kinds, where the heat lands, windows, the keeper's upkeep (idle and cold records,
 * duplicates, stuck claims, overwritten keys), counters' rates, the bar.
 */
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { prng } from '../../../bench/lib/prng.ts';
import { zipfTrace } from '../../../bench/lib/zipf.ts';
import { halfSipHash } from '../../../src/l1/hash.ts';
import { ADMIT_FLOOR, findRecord, msSince, RECORD_WORDS } from '../../../src/l1/heat.ts';
import { HeatKeeper } from '../../../src/l1/heat-keeper.ts';
import {
  createL1,
  HEAT,
  HEAT_KIND,
  type HeatKind,
  L1Table,
  L1Writer,
} from '../../../src/l1/index.ts';
import { encodeKey, keyScratch } from '../../../src/l1/key-bytes.ts';
import { HR, HR_KEY_BYTE, HW, RECORD_STATE, readLayout } from '../../../src/l1/layout.ts';
import { makeViews } from '../../../src/l1/views.ts';

const MB = 1024 * 1024;
const THREE_MASTERS: string[] = Array.from({ length: 16384 }, (_, s) =>
  s < 5461 ? '127.0.0.1:7000' : s < 10923 ? '127.0.0.1:7001' : '127.0.0.1:7002',
);

function table() {
  const handle = createL1({ bytes: 8 * MB });
  const l1 = L1Table.attach(handle);
  const v = makeViews(handle.sab, readLayout(handle.sab));
  if (v.heat === undefined) throw new Error('hot keys should be on at 8 MiB');
  const keeper = new HeatKeeper(v, v.heat);
  const hashOf = (key: string) => {
    const scratch = keyScratch(1024);
    const len = encodeKey(key, scratch, 1024, 'key');
    return halfSipHash(scratch, len, v.seed0, v.seed1);
  };
  const read = (key: string, kind: HeatKind = HEAT_KIND.HIT, n = 1) =>
    l1.heat(key, calculateSlot(key), kind, n);
  return { handle, l1, v, h: v.heat, keeper, hashOf, read };
}

const byKey = (l1: L1Table) => new Map(l1.hotKeys().keys.map((k) => [k.key, k]));

describe('the heat table', () => {
  it('counts a key exactly from its record on: at most the bar is missed, never more counted', () => {
    const { l1, keeper, read } = table();
    keeper.tick(l1.now(), THREE_MASTERS);
    const exact = new Map<string, number>();
    for (const i of zipfTrace(10_000, 1.1, 200_000, prng(3)).requests) {
      const key = `key:${i}`;
      read(key);
      exact.set(key, (exact.get(key) ?? 0) + 1);
    }
    const got = byKey(l1);
    const top = [...exact].sort((a, b) => b[1] - a[1]).slice(0, 50);
    for (const [key, count] of top) {
      const row = got.get(key);
      expect(row, key).toBeDefined();
      expect(count - (row?.hits ?? 0)).toBeGreaterThanOrEqual(0);
      expect(count - (row?.hits ?? 0)).toBeLessThanOrEqual(ADMIT_FLOOR);
    }
  });

  it('keeps hits, stale hits, misses and writes apart, and names the slot and its master', () => {
    const { l1, keeper, read } = table();
    keeper.tick(l1.now(), THREE_MASTERS);
    const key = 'video:7';
    read(key, HEAT_KIND.MISS, ADMIT_FLOOR);
    read(key, HEAT_KIND.HIT, 50);
    read(key, HEAT_KIND.STALE, 5);
    read(key, HEAT_KIND.MISS, 3);
    read(key, HEAT_KIND.WRITE, 2);
    const row = byKey(l1).get(key);
    const slot = calculateSlot(key);
    // The batch that reached the bar is the record's first: counted.
    expect(row).toMatchObject({
      hits: 50,
      stale: 5,
      misses: ADMIT_FLOOR + 3,
      writes: 2,
      slot,
      truncated: false,
    });
    expect(row?.node).toBe(THREE_MASTERS[slot]);
    const nodes = new Map(l1.hotKeys().nodes.map((n) => [n.node, n]));
    // Node rows count every read (not writes), record or not.
    expect(nodes.get(THREE_MASTERS[slot])).toMatchObject({
      reads: ADMIT_FLOOR + 58,
      misses: ADMIT_FLOOR + 3,
    });
    expect(nodes.size).toBe(3);
  });

  it('a key longer than a record keeps is reported by its first bytes, truncated', () => {
    const { l1, read } = table();
    const long = `k:${'x'.repeat(300)}`;
    read(long, HEAT_KIND.HIT, ADMIT_FLOOR);
    read(long, HEAT_KIND.HIT, 10);
    const row = l1.hotKeys().keys.find((k) => long.startsWith(k.key));
    expect(row?.truncated).toBe(true);
    expect(row?.key.length).toBe(HEAT.RECORD_BYTES - HR_KEY_BYTE);
    expect(row?.hits).toBe(ADMIT_FLOOR + 10);
  });

  it('a key under the bar gets no record; the keeper raises the bar above the sketch noise', () => {
    const { l1, keeper, read, h } = table();
    read('cold', HEAT_KIND.HIT, ADMIT_FLOOR - 1);
    expect(byKey(l1).has('cold')).toBe(false);
    // 300,000 events over 50,000 keys: 6 each (under the bar), in 8192 cells a row.
    for (let i = 0; i < 300_000; i++) read(`k${i % 50_000}`);
    keeper.tick(l1.now());
    expect(Atomics.load(h.header, HW.ADMIT)).toBeGreaterThan(ADMIT_FLOOR);
  });

  it('windows: rates over the last 10 s, from bases the keeper publishes', () => {
    const { l1, keeper, read } = table();
    const t0 = l1.now();
    keeper.tick(t0);
    read('w', HEAT_KIND.HIT, ADMIT_FLOOR);
    for (let s = 1; s <= 12; s++) {
      read('w', HEAT_KIND.HIT, 100);
      keeper.tick(t0 + s * 1000);
    }
    const row = byKey(l1).get('w');
    // The base is the newest snapshot at least 10 s old: ticks 2..12 in the window, or
    // 10 hundreds (the clock of this reader is the table's, now, about t0).
    expect(row?.hits).toBeGreaterThanOrEqual(900);
    expect(row?.hits).toBeLessThanOrEqual(1100);
  });

  it('frees records idle for a whole window, and the coldest past the high water', () => {
    const { l1, keeper, read } = table();
    const t0 = l1.now();
    keeper.tick(t0);
    const keys = Array.from({ length: Math.floor(HEAT.RECORDS * 0.9) }, (_, i) => `r${i}`);
    const claimed: string[] = [];
    for (const [i, key] of keys.entries()) {
      read(key, HEAT_KIND.HIT, ADMIT_FLOOR + i);
      // A key whose probe window is full gets no record.
      if (byKey(l1).has(key)) claimed.push(key);
    }
    expect(claimed.length).toBeGreaterThan(HEAT.RECORDS * 0.75);
    keeper.tick(t0 + 2000);
    const kept = byKey(l1);
    expect(kept.size).toBeLessThanOrEqual(Math.floor(HEAT.RECORDS * 0.6));
    // The hottest stay (the later a key, the more events it got), the coldest go.
    expect(claimed.slice(-50).every((k) => kept.has(k))).toBe(true);
    expect(claimed.slice(0, 50).some((k) => kept.has(k))).toBe(false);
    keeper.tick(t0 + 13_000);
    expect(l1.hotKeys().keys).toEqual([]);
  });

  it('a key claimed twice keeps one record, the busier', () => {
    const { l1, keeper, read, h, hashOf } = table();
    keeper.tick(l1.now());
    read('twice', HEAT_KIND.HIT, ADMIT_FLOOR + 100);
    const first = findRecord(h, hashOf('twice'));
    // Hide the first record from readers (as if its tag were not published yet).
    Atomics.store(h.tags, first, 0);
    read('twice', HEAT_KIND.HIT, ADMIT_FLOOR);
    expect(l1.hotKeys().keys.filter((k) => k.key === 'twice')).toHaveLength(2);
    Atomics.store(h.tags, first, hashOf('twice') | 1);
    keeper.tick(l1.now() + 1500);
    const rows = l1.hotKeys().keys.filter((k) => k.key === 'twice');
    expect(rows).toHaveLength(1);
    expect(rows[0].hits).toBe(ADMIT_FLOOR + 100);
  });

  it('frees a record stuck CLAIMING after two ticks, and one whose key bytes were overwritten', () => {
    const { l1, keeper, read, h, hashOf } = table();
    keeper.tick(l1.now());
    read('stuck', HEAT_KIND.HIT, ADMIT_FLOOR);
    read('torn', HEAT_KIND.HIT, ADMIT_FLOOR);
    const stuck = findRecord(h, hashOf('stuck'));
    const torn = findRecord(h, hashOf('torn'));
    const w = stuck * RECORD_WORDS;
    const word = Atomics.load(h.records, w + HR.STATE);
    // A claimer that died between its two exchanges.
    Atomics.store(h.tags, stuck, 0);
    Atomics.store(h.records, w + HR.STATE, (word & ~3) | RECORD_STATE.CLAIMING);
    // A stalled claimer's late bytes over another key.
    h.recordsU8[torn * HEAT.RECORD_BYTES + HR_KEY_BYTE] ^= 0x20;
    keeper.tick(l1.now() + 1000);
    expect(Atomics.load(h.records, w + HR.STATE) & 3).toBe(RECORD_STATE.CLAIMING);
    expect(byKey(l1).has('torn')).toBe(false);
    expect(Atomics.load(h.records, torn * RECORD_WORDS + HR.STATE) & 3).toBe(RECORD_STATE.EMPTY);
    keeper.tick(l1.now() + 2000);
    const after = Atomics.load(h.records, w + HR.STATE);
    expect(after & 3).toBe(RECORD_STATE.EMPTY);
    expect(after >>> 2).toBe((word >>> 2) + 1);
    // Both keys can have records again.
    read('stuck', HEAT_KIND.HIT, ADMIT_FLOOR);
    read('torn', HEAT_KIND.HIT, ADMIT_FLOOR);
    const again = byKey(l1);
    expect(again.get('stuck')?.hits).toBe(ADMIT_FLOOR);
    expect(again.get('torn')?.hits).toBe(ADMIT_FLOOR);
  });

  it('a slot that moves takes its heat to the new master', () => {
    const { l1, keeper, read } = table();
    keeper.tick(l1.now(), THREE_MASTERS);
    const key = 'moving';
    const slot = calculateSlot(key);
    read(key, HEAT_KIND.HIT, ADMIT_FLOOR);
    const moved = [...THREE_MASTERS];
    moved[slot] = '127.0.0.1:7009';
    keeper.tick(l1.now() + 1000, moved);
    read(key, HEAT_KIND.MISS, 4);
    expect(byKey(l1).get(key)?.node).toBe('127.0.0.1:7009');
    const nodes = new Map(l1.hotKeys().nodes.map((n) => [n.node, n]));
    expect(nodes.get('127.0.0.1:7009')).toMatchObject({ reads: 4, misses: 4 });
    // A standalone Redis: one name for every slot.
    keeper.tick(l1.now() + 2000, '10.0.0.1:6379');
    expect(byKey(l1).get(key)?.node).toBe('10.0.0.1:6379');
  });

  it("counts counters' increments over their window", () => {
    const { l1, keeper } = table();
    l1.addCounter('likes', 1);
    keeper.tick(l1.now());
    for (let i = 0; i < 40; i++) l1.addCounter('likes', 5);
    // The window starts at the counter's creation: its first add is in it.
    const likes = l1.hotKeys().counters.find((c) => c.name === 'likes');
    expect(likes?.increments).toBe(41);
    expect(likes?.windowMs).toBeGreaterThanOrEqual(0);
    // A window 0 ms long (made, ticked and read in one millisecond, which CI saw; here a
    // base stamped after the reader's clock) still lists the counter, with its adds.
    keeper.tick(l1.now() + 20_000);
    keeper.tick(l1.now() + 40_000);
    for (let i = 0; i < 3; i++) l1.addCounter('likes', 1);
    const now = l1.hotKeys().counters.find((c) => c.name === 'likes');
    expect(now).toEqual({ name: 'likes', increments: 3, windowMs: 0 });
  });

  it('is off below 4 MiB unless asked for, and then costs nothing and reports nothing', () => {
    const small = L1Table.attach(createL1({ bytes: 2 * MB, maxValueBytes: 1024 }));
    expect(small.heatOn).toBe(false);
    small.heat('k', 0, HEAT_KIND.HIT, 100);
    expect(small.hotKeys()).toEqual({ keys: [], nodes: [], counters: [] });
    expect(
      L1Table.attach(createL1({ bytes: 2 * MB, maxValueBytes: 1024, hotKeys: true })).heatOn,
    ).toBe(true);
    expect(L1Table.attach(createL1({ bytes: 8 * MB, hotKeys: false })).heatOn).toBe(false);
    expect(() => createL1({ bytes: 8 * MB, hotKeys: 'yes' as never })).toThrow(/hotKeys/);
  });

  it("the writer's tickHeat runs the keeper on the table clock", () => {
    const { handle, l1, read, h } = table();
    const writer = L1Writer.open(handle);
    writer.tickHeat(THREE_MASTERS);
    expect(Atomics.load(h.header, HW.TICKS)).toBe(1);
    read('w', HEAT_KIND.HIT, ADMIT_FLOOR + 1);
    expect(byKey(l1).get('w')?.node).toBe(THREE_MASTERS[calculateSlot('w')]);
    writer.close();
  });

  it('a tag left on a freed record is cleared, and one on a live record of another key frees it', () => {
    const { l1, keeper, read, h, hashOf } = table();
    keeper.tick(l1.now());
    read('left', HEAT_KIND.HIT, ADMIT_FLOOR);
    const r = findRecord(h, hashOf('left'));
    const w = r * RECORD_WORDS;
    // The keeper freed it (a duplicate) between the claimer's READY and its tag.
    const word = Atomics.load(h.records, w + HR.STATE);
    Atomics.store(h.records, w + HR.STATE, ((word >>> 2) + 1) << 2);
    keeper.tick(l1.now() + 1000);
    expect(Atomics.load(h.tags, r)).toBe(0);
    // The key counts again: it gets a record of its own.
    read('left', HEAT_KIND.HIT, ADMIT_FLOOR);
    expect(byKey(l1).get('left')?.hits).toBe(ADMIT_FLOOR);
    // A READY record wearing another key's tag is freed.
    read('wearer', HEAT_KIND.HIT, ADMIT_FLOOR);
    const other = findRecord(h, hashOf('wearer'));
    Atomics.store(h.tags, other, hashOf('someone else') | 1);
    keeper.tick(l1.now() + 2000);
    expect(byKey(l1).has('wearer')).toBe(false);
  });

  it('counts zeroed under their base (a late claimer) read as 0, and the window starts again', () => {
    const { l1, keeper, read, h, hashOf } = table();
    keeper.tick(l1.now());
    read('zeroed', HEAT_KIND.HIT, ADMIT_FLOOR + 100);
    keeper.tick(l1.now() + 1000);
    const r = findRecord(h, hashOf('zeroed'));
    Atomics.store(h.records, r * RECORD_WORDS + HR.COUNTS + HEAT_KIND.HIT, 0);
    expect(byKey(l1).get('zeroed')?.hits).toBe(0);
    keeper.tick(l1.now() + 2000);
    read('zeroed', HEAT_KIND.HIT, 5);
    expect(byKey(l1).get('zeroed')?.hits).toBe(5);
  });

  it('a stamp a little ahead of now is no time at all, not 49 days', () => {
    expect(msSince(1000, 1003)).toBe(0);
    expect(msSince(1000, 400)).toBe(600);
    // Across the u32 wrap of the table clock's milliseconds.
    expect(msSince(2 ** 32 + 5, 2 ** 32 - 5)).toBe(10);
  });
});
