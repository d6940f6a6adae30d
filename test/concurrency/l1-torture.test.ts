/**
 * Torture tests: real worker threads racing on one L1 table. They would fail if the
 * read protocol could return a torn or mixed value, if an increment could be lost or
 * doubled, or if a thread dying mid-operation could wedge the table. Each test also
 * asserts that the race it is about actually happened.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createL1, L1Table, L1Writer, releaseThread } from '../../src/l1/index.ts';
import { H, HEADER_BYTES, R, REGISTRY_LINE_WORDS } from '../../src/l1/layout.ts';
import { flushCounters } from '../fixtures/l1/l1-flush.ts';
import { checkValue, makeValue } from '../fixtures/l1/self-verifying.ts';
import {
  CTL,
  newControl,
  nextMessage,
  startWorker,
  waitStarted,
} from '../fixtures/workers/threads.ts';

const WORKER = new URL('../fixtures/workers/l1-worker.ts', import.meta.url);
const TORTURE_MS = Number(process.env.HS_TORTURE_MS ?? 3000);

interface ReaderReport {
  reads: number;
  hits: number;
  corrupt: number;
  backwards: number;
  overlapped: number;
  samples: string[];
}

async function churn(opts: {
  bytes: number;
  keyCount: number;
  maxPayload: number;
  readers: number;
}) {
  const handle = createL1({
    bytes: opts.bytes,
    maxValueBytes: opts.maxPayload + 1024,
    maxCounters: 64,
  });
  const { control, ctl } = newControl();
  const keys = Array.from({ length: opts.keyCount }, (_, i) => `key:${i}:${'x'.repeat(i % 40)}`);
  const writer = startWorker(WORKER, {
    role: 'writer',
    handle,
    control,
    keys,
    seed: 7,
    maxPayload: opts.maxPayload,
  });
  const readers = Array.from({ length: opts.readers }, (_, i) =>
    startWorker(WORKER, { role: 'reader', handle, control, keys, seed: 100 + i }),
  );
  const replies = [
    nextMessage<{ sets: number; stored: number }>(writer),
    ...readers.map((r) => nextMessage<ReaderReport>(r)),
  ];
  await waitStarted(ctl, 1 + opts.readers);
  await sleep(TORTURE_MS);
  Atomics.store(ctl, CTL.STOP, 1);
  const [w, ...rs] = (await Promise.all(replies)) as [
    { sets: number; stored: number },
    ...ReaderReport[],
  ];
  const table = L1Table.attach(handle);
  const stats = table.stats();
  table.close();
  return { w, rs, stats, handle, keys };
}

/** Every value read was intact and never went backwards, and the reads did race the writer. */
function expectCleanRacingReads(reports: ReaderReport[]) {
  for (const r of reports) {
    expect(r.corrupt, r.samples.join('\n')).toBe(0);
    expect(r.backwards).toBe(0);
    expect(r.hits).toBeGreaterThan(200);
    expect(r.overlapped).toBeGreaterThan(10);
  }
}

describe('L1 torture: readers never see a torn or mixed value', () => {
  it('2 readers, 1 writer churning small values with heavy eviction', async () => {
    const { w, rs, stats } = await churn({
      bytes: 256 * 1024,
      keyCount: 5000,
      maxPayload: 300,
      readers: 2,
    });
    expectCleanRacingReads(rs);
    expect(w.sets).toBeGreaterThan(2000);
    expect(stats.evictions).toBeGreaterThan(200);
    // …and the writer had to wait for readers inside their read sections before reusing memory.
    expect(stats.graceWaits).toBeGreaterThan(0);
  });

  it('2 readers, 1 writer with values crossing many cache lines, few hot keys', async () => {
    const { rs, stats } = await churn({
      bytes: 1 << 20,
      keyCount: 64,
      maxPayload: 40_000,
      readers: 2,
    });
    expectCleanRacingReads(rs);
    expect(stats.evictions + stats.reinsertions + stats.promotions).toBeGreaterThan(100);
    expect(stats.graceWaits).toBeGreaterThan(0);
  });
});

interface MemoReaderReport {
  reads: number;
  fromMemo: number;
  dropped: number;
  corrupt: number;
  older: number;
  samples: string[];
}

describe("L1 torture: a thread's ReadMemo never answers what the table no longer holds", () => {
  it('3 memo readers, 1 writer rewriting and deleting few keys in a small table (eviction reuses memory)', async () => {
    const handle = createL1({ bytes: 192 * 1024, maxValueBytes: 4096, maxCounters: 64 });
    const { control, ctl } = newControl();
    const keys = Array.from({ length: 300 }, (_, i) => `memo:${i}`);
    const done = new SharedArrayBuffer(4 * keys.length);
    const writer = startWorker(WORKER, {
      role: 'stampWriter',
      handle,
      control,
      keys,
      done,
      seed: 11,
      maxPayload: 1500,
    });
    const readers = Array.from({ length: 3 }, (_, i) =>
      startWorker(WORKER, { role: 'memoReader', handle, control, keys, done, seed: 200 + i }),
    );
    const replies = [
      nextMessage<{ sets: number; deletes: number }>(writer),
      ...readers.map((r) => nextMessage<MemoReaderReport>(r)),
    ];
    await waitStarted(ctl, 4);
    await sleep(TORTURE_MS);
    Atomics.store(ctl, CTL.STOP, 1);
    const [w, ...rs] = await Promise.all(replies);
    const table = L1Table.attach(handle);
    const stats = table.stats();
    table.close();
    expect((w as { sets: number }).sets).toBeGreaterThan(10_000);
    // The races happened: entries were evicted and moved under remembered refs.
    expect(stats.evictions + stats.promotions + stats.reinsertions).toBeGreaterThan(1000);
    for (const r of rs as MemoReaderReport[]) {
      expect(r.corrupt).toBe(0);
      expect(r.older, r.samples.join('\n')).toBe(0);
      expect(r.fromMemo).toBeGreaterThan(1000);
      expect(r.dropped).toBeGreaterThan(1000);
    }
  });
});

describe('L1 torture: counters', () => {
  it('3 threads add (one waiting for each ack) while the main thread flushes, sometimes dying mid-flush: flushed total equals added, per name, exactly', async () => {
    const handle = createL1({ bytes: 1 << 20, maxValueBytes: 1024, maxCounters: 1024 });
    const writer = L1Writer.open(handle);
    const { control, ctl } = newControl();
    // Shared names are created concurrently by all threads (a creation race on each).
    const names = [...Array.from({ length: 20 }, (_, i) => `likes:${i}`), 'hot'];
    const workers = [1, 2, 3].map((seed) =>
      startWorker(WORKER, {
        role: seed === 3 ? 'syncCounter' : 'counter',
        handle,
        control,
        names,
        seed,
      }),
    );
    const replies = workers.map((w) =>
      nextMessage<{ added: Record<string, number>; adds: number; unacked?: number }>(w),
    );
    await waitStarted(ctl, 3);
    const flushed = new Map<string, bigint>();
    const take = (sent: Map<string, bigint>) => {
      for (const [k, v] of sent) flushed.set(k, (flushed.get(k) ?? 0n) + v);
      return sent.size;
    };
    let flushes = 0;
    let nonEmpty = 0;
    let interrupted = 0;
    const end = Date.now() + TORTURE_MS;
    while (Date.now() < end) {
      // One flush in five stops after recording (a flusher killed mid-flush).
      const interrupt = flushes % 5 === 4;
      if (interrupt) interrupted++;
      if (take(flushCounters(writer, interrupt)) > 0) nonEmpty++;
      flushes++;
      await sleep(1);
    }
    Atomics.store(ctl, CTL.STOP, 1);
    // Keep acknowledging until the waiting thread has seen its last ack and reported.
    let settled = false;
    const all = Promise.all(replies).finally(() => {
      settled = true;
    });
    while (!settled) {
      take(flushCounters(writer));
      await sleep(1);
    }
    const reports = await all;
    take(flushCounters(writer));
    const added = new Map<string, bigint>();
    for (const r of reports)
      for (const [k, v] of Object.entries(r.added)) added.set(k, (added.get(k) ?? 0n) + BigInt(v));
    expect(reports.every((r) => r.adds > 100)).toBe(true);
    expect(reports[2].unacked).toBe(0); // every wait for an ack was woken
    expect(nonEmpty).toBeGreaterThan(10); // flushes raced with adds
    expect(interrupted).toBeGreaterThan(2);
    expect(Object.fromEntries(flushed)).toEqual(Object.fromEntries(added));
    const table = L1Table.attach(handle);
    expect(table.stats().counters).toBeGreaterThanOrEqual(names.length);
    for (const n of names) {
      expect(table.pendingCounter(n)).toBe(0n);
      expect(table.counterAdded(n)).toBe(added.get(n) ?? 0n);
    }
    table.close();
    writer.close();
  });
});

describe('L1 torture: threads that die mid-operation', () => {
  function readerSeqs(handle: { sab: SharedArrayBuffer }, maxThreads: number): number[] {
    const l1 = new Int32Array(handle.sab);
    const out: number[] = [];
    const base = HEADER_BYTES / 4; // the registry follows the header
    for (let i = 0; i < maxThreads; i++)
      out.push(Atomics.load(l1, base + i * REGISTRY_LINE_WORDS + R.SEQ));
    return out;
  }

  async function killSpinnerMidRead(handle: { sab: SharedArrayBuffer }) {
    // Retry until a termination lands inside a read section (seq left odd).
    for (let attempt = 0; attempt < 50; attempt++) {
      const { control } = newControl();
      const spinner = startWorker(WORKER, { role: 'spinner', handle, control, keys: ['big'] });
      await nextMessage(spinner);
      await sleep(5 + attempt);
      const threadId = spinner.threadId;
      await spinner.terminate();
      if (readerSeqs(handle, 8).some((s) => s % 2 === 1)) return threadId;
      releaseThread(handle, threadId);
    }
    throw new Error('never caught a reader inside a read section');
  }

  function fill(writer: L1Writer, n: number) {
    let stored = 0;
    for (let i = 0; i < n; i++)
      if (writer.set(`fill:${i}`, makeValue(`fill:${i}`, i + 1, 500), { softTtlMs: 1e9 })) stored++;
    return stored;
  }

  /** A table holding one 256 KiB entry, so that a reader spends long inside each read. */
  function tableWithBigEntry(revokeAfterMs: number) {
    const handle = createL1({
      bytes: 2 << 20,
      maxValueBytes: 256 * 1024,
      maxCounters: 64,
      maxThreads: 8,
    });
    const writer = L1Writer.open(handle, { revokeAfterMs });
    writer.set('big', Buffer.alloc(256 * 1024, 1), { softTtlMs: 1e9 });
    return { handle, writer };
  }

  it('a reader terminated mid-read: releaseThread frees it and the writer goes on', async () => {
    const { handle, writer } = tableWithBigEntry(60_000);
    const deadThread = await killSpinnerMidRead(handle);
    // While the dead reader is registered inside a section, reclamation cannot finish…
    expect(fill(writer, 20_000)).toBeLessThan(20_000);
    // …until the supervisor reports the thread's exit.
    expect(releaseThread(handle, deadThread)).toBe(1);
    expect(fill(writer, 20_000)).toBe(20_000);
    writer.close();
  });

  it('a reader terminated mid-read and never reported is revoked after revokeAfterMs', async () => {
    const { handle, writer } = tableWithBigEntry(200);
    await killSpinnerMidRead(handle);
    const start = Date.now();
    let stored = 0;
    while (stored < 20_000 && Date.now() - start < 10_000) {
      stored = fill(writer, 20_000);
      await sleep(20);
    }
    expect(stored).toBe(20_000);
    const t = L1Table.attach(handle);
    expect(t.stats().readersRevoked).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 20_000; i += 97) {
      const e = t.get(`fill:${i}`);
      if (e) expect(checkValue(`fill:${i}`, e.value)).toBe(i + 1);
    }
    t.close();
    writer.close();
  });

  it('a writer terminated mid-write: a new writer takes over and every reachable entry is intact', async () => {
    const handle = createL1({ bytes: 512 * 1024, maxValueBytes: 16 * 1024, maxCounters: 64 });
    const keys = Array.from({ length: 3000 }, (_, i) => `k${i}`);
    const table = L1Table.attach(handle);
    let kills = 0;
    for (let round = 0; round < 12; round++) {
      const { control, ctl } = newControl();
      const w = startWorker(WORKER, {
        role: 'writer',
        handle,
        control,
        keys,
        seed: 11 + round,
        maxPayload: 3000,
      });
      await waitStarted(ctl, 1);
      while (Atomics.load(ctl, CTL.WRITER_OPS) < 2000) await sleep(1);
      await sleep(round % 4);
      const threadId = w.threadId;
      await w.terminate();
      kills++;
      // The dead writer may hold the role; the supervisor hands it over.
      releaseThread(handle, threadId);
      for (const k of keys) {
        const e = table.get(k);
        if (e) expect(checkValue(k, e.value), k).toBeGreaterThan(0);
      }
    }
    // The table still works for a fresh writer: fill, overwrite, evict.
    const writer = L1Writer.open(handle);
    for (let i = 0; i < 5000; i++)
      writer.set(keys[i % keys.length], makeValue(keys[i % keys.length], 1e6 + i, 1000), {
        softTtlMs: 1e9,
      });
    for (const k of keys) {
      const e = table.get(k);
      if (e) expect(checkValue(k, e.value)).toBeGreaterThan(0);
    }
    expect(table.get(keys[4999 % keys.length])).toBeDefined();
    expect(kills).toBe(12);
    expect(Atomics.load(new Int32Array(handle.sab), H.WRITER_OWNER)).not.toBe(0);
    writer.close();
    table.close();
  });
});
