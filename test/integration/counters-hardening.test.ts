/**
 * Regression tests from a review of the write-hot counter protocol, on a real cluster:
 * each reproduced a bug (an incr racing close, an add torn by a thread termination, a
 * cell the flusher cannot shard, a bad counter-total ask, a KV write to a shard key).
 * Faults are injected the way the protocol says it copes with them: a thread killed at
 * an arbitrary instruction (worker terminate(), or a claimer that died mid-claim, left
 * in the L1 as it would leave it) and the public L1 / channel APIs. (The lost-reply
 * mark renewal is tested at the script level in counter-flush.test.ts.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BroadcastChannel, type Worker } from 'node:worker_threads';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createTier, type Tier, type TierOptions } from '../../src/index.ts';
import { shardKeysFor } from '../../src/keys/shard-keys.ts';
import { halfSipHash } from '../../src/l1/hash.ts';
import { createL1, L1Table, L1Writer, releaseThread } from '../../src/l1/index.ts';
import { keyBytesOf } from '../../src/l1/key-bytes.ts';
import { C, COUNTER_CELL_BYTES, COUNTER_STATE, H, readLayout } from '../../src/l1/layout.ts';
import { clientChannel, controlChannel } from '../../src/refresher/protocol.ts';
import { itemsOf } from '../../src/refresher/turn-batch.ts';
import { useOwnCluster } from '../fixtures/redis/own-cluster.ts';
import { clusterClient } from '../fixtures/redis/redis-clients.ts';
import { timed } from '../fixtures/timing.ts';
import { nextMessage, startWorker } from '../fixtures/workers/threads.ts';

const cluster = useOwnCluster();
const SHARDS = 16;

/** A tier on the file's cluster, closed (errors ignored) when the test finishes. */
async function tierFor(options: Partial<TierOptions> = {}): Promise<Tier> {
  const tier = await createTier({ redis: cluster.seeds, l1Bytes: '8mb', ...options });
  onTestFinished(() => tier.close().catch(() => {}));
  return tier;
}

/** Every shard of `name`, summed straight from Redis: what any other process reads. */
async function inRedis(name: string): Promise<bigint> {
  const redis = clusterClient(cluster.seeds);
  const values = await Promise.all(shardKeysFor(name, SHARDS).map((k) => redis.get(k)));
  return values.reduce((sum, v) => sum + BigInt(v ?? 0), 0n);
}

async function until(what: string, done: () => boolean | Promise<boolean>, ms = 5000) {
  const deadline = performance.now() + ms;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function reviewWorker(data: Record<string, unknown>): Worker {
  return startWorker(new URL('../fixtures/workers/counter-race-worker.ts', import.meta.url), data);
}

/**
 * Leave `count` counter cells on `name`'s probe path in CLAIMING, as claimers killed
 * between their compare-exchange and their READY store leave them (counters.ts header:
 * "if its claimer died there, the cell is skipped for good"). Each costs a thread that
 * creates `name` CLAIM_WAIT_MS (5 ms) of waiting.
 */
function strandClaims(tier: Tier, name: string, count: number): void {
  const sab = tier.handle.l1.sab;
  const layout = readLayout(sab);
  const header = new Int32Array(sab, 0, 128);
  const bytes = Buffer.from(name);
  const hash = halfSipHash(keyBytesOf(bytes), bytes.length, header[H.SEED0], header[H.SEED1]) | 0;
  const c32 = new Int32Array(
    sab,
    layout.countersOffset,
    (layout.maxCounters * COUNTER_CELL_BYTES) / 4,
  );
  const mask = layout.maxCounters - 1;
  for (let p = 0; p < count; p++) {
    const cell = (hash + p) & mask;
    const at = (cell * COUNTER_CELL_BYTES) / 4 + C.STATE_WORD;
    expect(Atomics.compareExchange(c32, at, COUNTER_STATE.EMPTY, COUNTER_STATE.CLAIMING)).toBe(
      COUNTER_STATE.EMPTY,
    );
  }
}

describe('close() racing an increment in another thread', () => {
  it('an incr() that returns normally is flushed, or close() reports it unflushed', async () => {
    const tier = await createTier({ redis: cluster.seeds, l1Bytes: '8mb', flushInterval: 20 });
    onTestFinished(() => tier.close().catch(() => {}));
    const name = 'review:close-race';
    // 63 stranded claims on the name's probe path: the first incr of `name` in a thread
    // spends ~315 ms between its assertOpen() and its Atomics.add (any preemption of the
    // thread there does the same, for less time).
    strandClaims(tier, name, 63);
    const worker = reviewWorker({ handle: tier.handle, mode: 'incr-on-go', name, by: 7 });
    expect(await nextMessage<string>(worker)).toBe('ready');
    const result = nextMessage<{ returned: boolean; tookMs?: number; at?: number; code?: string }>(
      worker,
    );
    worker.postMessage('go');
    await sleep(30);
    const closed = await timed(tier.close());
    const incr = await result;
    const total = await inRedis(name);
    if (!incr.returned) {
      // Refusing the increment is fine (HS_ERR_CLOSED): the caller knows.
      expect(incr.code).toBe('HS_ERR_CLOSED');
      return;
    }
    // The increment was accepted: it must be in Redis, or close() must say it is not.
    const reported = closed.code === 'HS_ERR_UNFLUSHED' && (closed.message ?? '').includes(name);
    expect({ redis: total, closeReportedIt: reported }).toSatisfy(
      (o: { redis: bigint; closeReportedIt: boolean }) => o.redis === 7n || o.closeReportedIt,
    );
  });
});

describe('a thread terminated in the middle of an incr()', () => {
  it('leaves no increment that is read by this process but never flushed', async () => {
    // 1. It happens: terminate() lands between addToCounter's two Atomics.adds (`added`,
    //    then `ops`) often enough. Measured on a bare L1 of the test's own.
    const l1 = createL1({ bytes: 1 << 20, maxValueBytes: 1024, maxThreads: 8 });
    const writer = L1Writer.open(l1);
    let tears = 0;
    let gap = 0n;
    for (let trial = 0; trial < 60 && tears === 0; trial++) {
      const worker = reviewWorker({ l1, mode: 'l1-loop', name: 'loop', by: 1 });
      const threadId = worker.threadId;
      expect(await nextMessage<string>(worker)).toBe('ready');
      await sleep(2 + Math.random() * 8);
      await worker.terminate();
      releaseThread(l1, threadId);
      const st = writer.counterState(writer.cellsNamed('loop')[0]);
      if (st.added - st.ops !== gap) tears++;
      gap = st.added - st.ops;
    }
    writer.close();
    expect(tears).toBeGreaterThan(0);

    // 2. On a tier, a lone torn add (nothing else added to the counter after it) is left
    //    in the cell exactly as such a termination leaves it: `added` +5, `ops` unchanged.
    const tier = await tierFor({ flushInterval: 20 });
    const name = 'review:torn';
    const counter = tier.counter(name);
    await counter.incr(1, { sync: true });
    const table = L1Table.attach(tier.handle.l1);
    const { cell } = table.addCounterTicket(name, 1);
    await counter.incr(1, { sync: true });
    const layout = readLayout(tier.handle.l1.sab);
    const c64 = new BigInt64Array(
      tier.handle.l1.sab,
      layout.countersOffset,
      (layout.maxCounters * COUNTER_CELL_BYTES) / 8,
    );
    Atomics.add(c64, (cell * COUNTER_CELL_BYTES) / 8 + C.ADDED_I64, 5n);
    table.close();
    // Redis is healthy and rounds run every 20 ms.
    await sleep(500);
    const unflushed = tier.stats().l1.counterUnflushed;
    const read = await counter.readExact();
    const redis = await inRedis(name);
    const closed = await timed(tier.close());
    expect({
      unflushed,
      readMinusRedis: read - redis,
      close: closed.code ?? 'resolved',
    }).toEqual({ unflushed: 0, readMinusRedis: 0n, close: 'resolved' });
  });
});

describe('a counter cell whose name the flusher cannot shard', () => {
  it('does not stop every other counter from being flushed', async () => {
    const tier = await tierFor({ flushInterval: 20 });
    // L1Table.addCounter (public, hotshield/l1) takes names up to 128 UTF-8 bytes; the
    // flusher's shardKeysFor refuses more than 120 (checkCounterName).
    const table = L1Table.attach(tier.handle.l1);
    table.addCounter('x'.repeat(125), 1);
    table.close();
    const good = tier.counter('review:innocent');
    const sync = await timed(good.incr(1, { sync: true, timeout: 2000 }));
    expect(sync.code).toBeUndefined();
    expect(await inRedis('review:innocent')).toBe(1n);
  });
});

describe('an ask for the total of a counter name the flusher refuses', () => {
  it('is answered, and does not hold a flight (maxInFlight) for ever', async () => {
    const tier = await tierFor({ maxInFlight: 4 });
    const tierId = tier.handle.config.tierId;
    const id = 'review-client';
    const bus = new BroadcastChannel(controlChannel(tierId));
    const mine = new BroadcastChannel(clientChannel(tierId, id));
    onTestFinished(() => {
      bus.close();
      mine.close();
    });
    const replies: Array<{ t: string; key?: string; status?: string }> = [];
    mine.onmessage = (event) => replies.push(...(itemsOf((event as MessageEvent).data) as never[]));
    bus.postMessage({ t: 'join', from: id });
    await until('welcome', () => replies.some((r) => r.t === 'welcome'));
    // Well-formed asks (parseAsk accepts them): counter totals of names with a hash tag.
    for (let i = 0; i < 4; i++)
      mine.postMessage({ t: 'fetch', key: `bad{${i}}:__hotshield:total`, from: id, load: false });
    await sleep(1000);
    const done = replies.filter((r) => r.t === 'done');
    const plain = await timed(tier.get('review:plain-key', { timeout: 1000 }));
    expect({ answered: done.length, get: plain.code ?? 'ok' }).toEqual({ answered: 4, get: 'ok' });
  });
});

describe('a KV write to a counter shard key', () => {
  it('is refused (it would corrupt the counter), like :__hotshield keys', async () => {
    const tier = await tierFor({ flushInterval: 20, softTtl: '50ms' });
    const name = 'review:kv-shard';
    const counter = tier.counter(name);
    await counter.incr(3, { sync: true });
    const shard = shardKeysFor(name, SHARDS)[0];
    const set = await timed(tier.set(shard, 'not a number'));
    // A loader's value would be written there too.
    const loaded = await timed(tier.get(shard, { loader: () => 'not a number' }));
    expect(loaded.code).toBe('HS_ERR_KEY_INVALID');
    await sleep(100);
    const read = await timed(counter.readExact());
    expect({ set: set.code ?? 'accepted', read: read.code ?? read.value }).toEqual({
      set: 'HS_ERR_KEY_INVALID',
      read: 3n,
    });
  });
});
