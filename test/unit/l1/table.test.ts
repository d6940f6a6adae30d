import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createL1, L1Table, L1Writer, releaseThread } from '../../../src/l1/index.ts';
import { bytes, FOREVER, l1ErrorCode, makeL1 } from '../../fixtures/l1/l1.ts';

describe('L1 get/set', () => {
  it('returns a copy of what was set, with metadata', () => {
    const { writer, table } = makeL1();
    const version = writer.set('user:1', bytes('alice'), {
      softTtlMs: 5000,
      hardTtlMs: 10_000,
      flags: 7,
    });
    expect(version).toBeGreaterThan(0);
    const e = table.get('user:1');
    expect(e?.value.toString()).toBe('alice');
    expect(e?.state).toBe('fresh');
    expect(e?.flags).toBe(7);
    expect(e?.version).toBe(version);
    expect(e!.ageMs).toBeGreaterThanOrEqual(0);
    expect(e!.ageMs).toBeLessThan(5000);
    expect(e!.value.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(table.get('user:2')).toBeUndefined();
  });

  it('updates replace the value and raise the version', () => {
    const { writer, table } = makeL1();
    const v1 = writer.set('k', bytes('one'), FOREVER);
    const v2 = writer.set('k', bytes('two'), FOREVER);
    expect(v2).toBeGreaterThan(v1);
    expect(table.get('k')?.value.toString()).toBe('two');
    expect(writer.size).toBe(1);
    expect(table.stats()).toMatchObject({ inserts: 1, updates: 1, entries: 1 });
  });

  it('keys are UTF-8 byte strings: multibyte, max length, binary', () => {
    const { writer, table } = makeL1({ maxKeyBytes: 16 });
    writer.set('ключ', bytes('cyrillic'), FOREVER);
    writer.set('🔥🔥🔥🔥', bytes('4 emoji = 16 bytes'), FOREVER);
    writer.set(Uint8Array.from([0, 255, 1]), bytes('binary'), FOREVER);
    writer.set('x'.repeat(16), bytes('max'), FOREVER);
    expect(table.get('ключ')?.value.toString()).toBe('cyrillic');
    expect(table.get('🔥🔥🔥🔥')?.value.toString()).toBe('4 emoji = 16 bytes');
    expect(table.get(Uint8Array.from([0, 255, 1]))?.value.toString()).toBe('binary');
    expect(table.get(Buffer.from('ключ'))?.value.toString()).toBe('cyrillic');
    expect(table.get('x'.repeat(16))?.value.toString()).toBe('max');
  });

  it('rejects empty and over-long keys with typed errors, changing nothing', () => {
    const { writer, table } = makeL1({ maxKeyBytes: 16 });
    expect(l1ErrorCode(() => table.get(''))).toBe('HS_ERR_KEY_EMPTY');
    expect(l1ErrorCode(() => writer.set('', bytes('v'), FOREVER))).toBe('HS_ERR_KEY_EMPTY');
    expect(l1ErrorCode(() => table.get('x'.repeat(17)))).toBe('HS_ERR_KEY_TOO_LONG');
    expect(l1ErrorCode(() => writer.set('é'.repeat(9), bytes('v'), FOREVER))).toBe(
      'HS_ERR_KEY_TOO_LONG',
    );
    expect(l1ErrorCode(() => writer.set('🔥🔥🔥🔥x', bytes('v'), FOREVER))).toBe(
      'HS_ERR_KEY_TOO_LONG',
    );
    expect(l1ErrorCode(() => table.get(42 as unknown as string))).toBe('HS_ERR_KEY_INVALID');
    expect(l1ErrorCode(() => writer.set('k', 'v' as unknown as Uint8Array, FOREVER))).toBe(
      'HS_ERR_VALUE_INVALID',
    );
    expect(table.stats()).toMatchObject({ inserts: 0, entries: 0 });
  });

  it('stores a value of exactly maxValueBytes and refuses a larger one with a typed error', () => {
    const { writer, table } = makeL1({ maxValueBytes: 4096 });
    const max = Buffer.alloc(4096, 0xab);
    expect(writer.set('max', max, FOREVER)).toBeGreaterThan(0);
    expect(table.get('max')?.value.equals(max)).toBe(true);
    expect(l1ErrorCode(() => writer.set('big', Buffer.alloc(4097), FOREVER))).toBe(
      'HS_ERR_VALUE_TOO_LARGE',
    );
    expect(table.get('big')).toBeUndefined();
    expect(table.stats().refusedTooLarge).toBe(1);
    writer.set('empty', new Uint8Array(0), FOREVER);
    expect(table.get('empty')?.value.length).toBe(0);
  });

  it('rejects invalid TTLs', () => {
    const { writer } = makeL1();
    expect(l1ErrorCode(() => writer.set('k', bytes('v'), { softTtlMs: -1 }))).toBe(
      'HS_ERR_L1_OPTION',
    );
    expect(l1ErrorCode(() => writer.set('k', bytes('v'), { softTtlMs: 10, hardTtlMs: 5 }))).toBe(
      'HS_ERR_L1_OPTION',
    );
    expect(l1ErrorCode(() => writer.set('k', bytes('v'), { softTtlMs: Number.NaN }))).toBe(
      'HS_ERR_L1_OPTION',
    );
    expect(
      l1ErrorCode(() => writer.set('k', bytes('v'), { softTtlMs: 1, hardTtlMs: Infinity })),
    ).toBe('HS_ERR_L1_OPTION');
  });
});

describe('L1 TTLs', () => {
  it('is fresh before the soft expiry, stale until the hard expiry, gone after', async () => {
    const { writer, table } = makeL1();
    const start = table.now();
    writer.set('k', bytes('v'), { softTtlMs: 300, hardTtlMs: 600 });
    const states: string[] = [];
    for (;;) {
      const e = table.get('k');
      const at = table.now() - start;
      const state = e?.state ?? 'gone';
      if (states.at(-1) !== state) states.push(state);
      // Each state only where the TTLs allow it (the clock read after get() is later).
      if (state === 'stale') expect(at).toBeGreaterThanOrEqual(300);
      if (state === 'gone') {
        expect(at).toBeGreaterThanOrEqual(600);
        break;
      }
      await sleep(10);
    }
    expect(states).toEqual(['fresh', 'stale', 'gone']);
    const s = table.stats();
    expect(s.hits).toBeGreaterThanOrEqual(1);
    expect(s.staleHits).toBeGreaterThanOrEqual(1);
    expect(s.misses).toBe(1);
  });

  it('soft TTL 0 is stale at once; hard TTL 0 is never served', () => {
    const { writer, table } = makeL1();
    writer.set('stale', bytes('v'), { softTtlMs: 0, hardTtlMs: 60_000 });
    writer.set('gone', bytes('v'), { softTtlMs: 0, hardTtlMs: 0 });
    expect(table.get('stale')?.state).toBe('stale');
    expect(table.get('gone')).toBeUndefined();
  });

  it('sweepExpired reclaims expired entries and keeps live ones', async () => {
    const { writer, table } = makeL1();
    for (let i = 0; i < 50; i++)
      writer.set(`short${i}`, bytes('v'), { softTtlMs: 0, hardTtlMs: 1 });
    for (let i = 0; i < 50; i++) writer.set(`long${i}`, bytes('v'), FOREVER);
    await sleep(5);
    expect(writer.sweepExpired(writer.layout.slotCount)).toBe(50);
    expect(writer.size).toBe(50);
    expect(table.stats().expiredReclaimed).toBe(50);
    for (let i = 0; i < 50; i++) expect(table.get(`long${i}`)?.value.toString()).toBe('v');
  });
});

describe('L1 delete and clear', () => {
  it('delete removes one key', () => {
    const { writer, table } = makeL1();
    writer.set('a', bytes('1'), FOREVER);
    writer.set('b', bytes('2'), FOREVER);
    expect(writer.delete('a')).toBe(true);
    expect(writer.delete('a')).toBe(false);
    expect(table.get('a')).toBeUndefined();
    expect(table.get('b')?.value.toString()).toBe('2');
    expect(writer.size).toBe(1);
    writer.set('a', bytes('3'), FOREVER);
    expect(table.get('a')?.value.toString()).toBe('3');
  });

  it('clear removes everything and the table keeps working', () => {
    const { writer, table } = makeL1();
    for (let i = 0; i < 500; i++) writer.set(`k${i}`, bytes(`v${i}`), FOREVER);
    writer.clear();
    expect(writer.size).toBe(0);
    expect(table.stats()).toMatchObject({ entries: 0, bytesUsed: 0 });
    for (let i = 0; i < 500; i++) expect(table.get(`k${i}`)).toBeUndefined();
    writer.set('k1', bytes('again'), FOREVER);
    expect(table.get('k1')?.value.toString()).toBe('again');
  });
});

describe('L1 memory bounds and eviction', () => {
  it('the buffer is the byte budget plus a fixed header, whatever the options', () => {
    for (const bytes of [64 * 1024, 1 << 20, 3_000_000, 64 << 20]) {
      for (const maxThreads of [1, 64, 256]) {
        const h = createL1({ bytes, maxThreads, maxValueBytes: 1024, maxCounters: 64 });
        expect(h.sab.byteLength).toBeLessThanOrEqual(bytes + 512 + maxThreads * 64);
      }
    }
  });

  it('a full table evicts: live entries and bytes stay within bounds, recent keys stay readable', () => {
    const { writer, table } = makeL1({ bytes: 256 * 1024, maxValueBytes: 1024, maxCounters: 64 });
    const n = 20_000;
    for (let i = 0; i < n; i++) writer.set(`key:${i}`, Buffer.alloc(200, i & 0xff), FOREVER);
    const s = table.stats();
    expect(s.inserts).toBe(n);
    expect(s.evictions).toBeGreaterThan(n / 2);
    expect(s.entries).toBe(writer.size);
    expect(s.entries).toBeLessThanOrEqual(s.maxLiveEntries);
    expect(s.bytesUsed).toBeLessThanOrEqual(writer.layout.arenaBytes);
    // Whatever survived is intact: never a value of another key.
    let found = 0;
    for (let i = 0; i < n; i++) {
      const e = table.get(`key:${i}`);
      if (e) {
        found++;
        expect(e.value.equals(Buffer.alloc(200, i & 0xff))).toBe(true);
      }
    }
    expect(found).toBe(s.entries);
    expect(table.get(`key:${n - 1}`)).toBeDefined();
  });

  it('rings wrap around many times with mixed sizes and every survivor is intact', () => {
    const { writer, table } = makeL1({ bytes: 128 * 1024, maxValueBytes: 2048, maxCounters: 64 });
    const arena = writer.layout.arenaBytes;
    let written = 0;
    const last = new Map<string, number>();
    for (let i = 0; written < arena * 20; i++) {
      const key = `k${i % 3000}`;
      const size = (i * 7919) % 2048;
      if (writer.set(key, Buffer.alloc(size, i & 0xff), FOREVER)) last.set(key, i);
      written += size + 64;
      if (i % 5 === 0) table.get(`k${(i * 31) % 3000}`);
    }
    for (const [key, i] of last) {
      const e = table.get(key);
      if (e) expect(e.value.equals(Buffer.alloc((i * 7919) % 2048, i & 0xff)), key).toBe(true);
    }
    expect(table.stats().bytesUsed).toBeLessThanOrEqual(arena);
  });

  it('S3-FIFO: a hot set survives a flood of one-hit keys', () => {
    const { writer, table } = makeL1({ bytes: 512 * 1024, maxValueBytes: 1024, maxCounters: 64 });
    const hot = Array.from({ length: 200 }, (_, i) => `hot:${i}`);
    for (const k of hot) writer.set(k, Buffer.alloc(100, 1), FOREVER);
    for (let round = 0; round < 3; round++) for (const k of hot) table.get(k);
    for (let i = 0; i < 50_000; i++) {
      writer.set(`flood:${i}`, Buffer.alloc(100, 2), FOREVER);
      if (i % 100 === 0) for (const k of hot) table.get(k);
    }
    const kept = hot.filter((k) => table.get(k) !== undefined).length;
    expect(kept).toBe(hot.length);
  });
});

describe('L1 handles and roles', () => {
  it('attaching to something that is not a table is a typed error', () => {
    expect(l1ErrorCode(() => L1Table.attach({ sab: new SharedArrayBuffer(4096) }))).toBe(
      'HS_ERR_L1_HANDLE',
    );
    expect(l1ErrorCode(() => L1Table.attach({} as never))).toBe('HS_ERR_L1_HANDLE');
    expect(l1ErrorCode(() => L1Writer.open(null as never))).toBe('HS_ERR_L1_HANDLE');
  });

  it('options are validated and errors name the option', () => {
    expect(() => createL1({ bytes: 1000 })).toThrow(/l1Bytes/);
    expect(() => createL1({ bytes: 1 << 20, maxValueBytes: 1 << 20 })).toThrow(/maxValueBytes/);
    expect(() => createL1({ bytes: 1 << 20, maxKeyBytes: 0 })).toThrow(/maxKeyBytes/);
    expect(() => createL1({ bytes: 1 << 20, maxCounters: 100 })).toThrow(/maxCounters/);
    expect(() => createL1({ bytes: 1 << 20, maxThreads: 0 })).toThrow(/maxThreads/);
    expect(() => createL1({ bytes: 1 << 20, colour: 'red' } as never)).toThrow(/colour/);
    expect(l1ErrorCode(() => createL1({ bytes: 1.5 }))).toBe('HS_ERR_L1_OPTION');
  });

  it('there is one writer at a time; takeover and close hand the role over', () => {
    const { handle, writer, table } = makeL1();
    expect(l1ErrorCode(() => L1Writer.open(handle))).toBe('HS_ERR_WRITER_TAKEN');
    writer.set('k', bytes('v1'), FOREVER);
    const second = L1Writer.open(handle, { takeover: true });
    second.set('k', bytes('v2'), FOREVER);
    expect(table.get('k')?.value.toString()).toBe('v2');
    expect(second.size).toBe(1);
    second.close();
    const third = L1Writer.open(handle);
    expect(third.size).toBe(1);
    third.close();
    expect(l1ErrorCode(() => third.set('k', bytes('v'), FOREVER))).toBe('HS_ERR_L1_CLOSED');
  });

  it('releaseThread refuses a threadId read after the worker exited (-1)', () => {
    const { handle } = makeL1();
    expect(l1ErrorCode(() => releaseThread(handle, -1))).toBe('HS_ERR_L1_OPTION');
    expect(releaseThread(handle, 12345)).toBe(0);
  });

  it('reader slots are bounded and released on close', () => {
    const handle = createL1({
      bytes: 1 << 20,
      maxThreads: 2,
      maxValueBytes: 1024,
      maxCounters: 64,
    });
    const a = L1Table.attach(handle);
    const b = L1Table.attach(handle);
    expect(l1ErrorCode(() => L1Table.attach(handle))).toBe('HS_ERR_TOO_MANY_THREADS');
    a.close();
    a.close();
    const c = L1Table.attach(handle);
    expect(l1ErrorCode(() => a.get('k'))).toBe('HS_ERR_L1_CLOSED');
    b.close();
    c.close();
  });
});

describe('L1 under hash flooding', () => {
  it('keys crafted to share one home slot (by someone who knows the seed) stay within the probe bound', async () => {
    const { halfSipHash } = await import('../../../src/l1/hash.ts');
    const { H, MAX_PROBE } = await import('../../../src/l1/layout.ts');
    const { writer, table, handle } = makeL1({
      bytes: 256 * 1024,
      maxValueBytes: 1024,
      maxCounters: 64,
    });
    const header = new Int32Array(handle.sab, 0, 128);
    const mask = writer.layout.slotCount - 1;
    const hot = Array.from({ length: 50 }, (_, i) => `hot:${i}`);
    for (const k of hot) writer.set(k, bytes(k), FOREVER);
    for (const k of hot) table.get(k);
    // Brute-force 300 keys whose hash lands on one home slot: the worst case an attacker
    // could reach only by stealing the table's random seed.
    const target = 7;
    const colliding: string[] = [];
    const { keyScratch } = await import('../../../src/l1/key-bytes.ts');
    const scratch = keyScratch(64);
    const enc = new TextEncoder();
    for (let i = 0; colliding.length < 300; i++) {
      const k = `flood:${i}`;
      const n = enc.encodeInto(k, scratch.bytes).written;
      if ((halfSipHash(scratch, n, header[H.SEED0], header[H.SEED1]) & mask) === target)
        colliding.push(k);
    }
    for (const k of colliding) expect(writer.set(k, bytes('x'), FOREVER)).toBeGreaterThan(0);
    // At most one probe window's worth of them can be live at once; nothing was refused.
    const live = colliding.filter((k) => table.get(k) !== undefined).length;
    expect(live).toBeLessThanOrEqual(MAX_PROBE);
    expect(live).toBeGreaterThan(0);
    expect(table.stats().refusedNoSlot).toBe(0);
    // Hot keys whose home is elsewhere are untouched.
    const hotHomes = hot.filter((k) => {
      const n = enc.encodeInto(k, scratch.bytes).written;
      const home = halfSipHash(scratch, n, header[H.SEED0], header[H.SEED1]) & mask;
      return ((home - target) & mask) >= MAX_PROBE && ((target - home) & mask) >= MAX_PROBE;
    });
    expect(hotHomes.length).toBeGreaterThan(40);
    for (const k of hotHomes) expect(table.get(k)?.value.toString()).toBe(k);
  });
});
