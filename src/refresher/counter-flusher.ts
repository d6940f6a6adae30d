/**
 * The counter flusher, run by the refresher: moves what threads added to counter cells
 * in L1 (l1/counters.ts) into the counters' shard keys in Redis, and reads totals back.
 *
 * - Every flushInterval one round sends, for each cell with something new, one
 *   idempotent flush (L2Client.flushMany: one pipeline per master) to the cell's home
 *   shard. The flush is recorded in the cell (seq, shard, amount) before it is sent and
 *   acknowledged in the cell when Redis answers, applied or duplicate. A failed flush
 *   stays recorded and is re-sent, unchanged, with backoff, until Redis answers; adds
 *   keep accumulating in the cell meanwhile (one number: memory stays bounded). A
 *   respawned refresher finds the record and re-sends it under the same (writer, seq).
 * - The home shard of a cell is fixed by this process's writer id and the cell, so many
 *   processes spread over the shards (and so over the masters) while each writer keeps
 *   one mark key per counter in Redis.
 * - A total is the sum of every shard, each read atomically with this process's marks
 *   (L2Client.readShards). What this process contributed is subtracted, giving a base
 *   that callers add their live `added` to: their own increments show at once, flushed
 *   or not, and never twice. A flush recorded but unacknowledged is in a shard exactly
 *   when that shard's mark says so; rounds and reads run one at a time (the lane), so
 *   nothing else of this process's moves in between.
 * - close() flushes until nothing is left or its budget runs out, and reports what it
 *   could not flush.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import calculateSlot from 'cluster-key-slot';
import { closedError, HotshieldError } from '../errors.ts';
import { flushMarkKeyOf, shardKeysFor } from '../keys/shard-keys.ts';
import type { CounterState, L1Writer } from '../l1/index.ts';
import type { Control } from '../refresher/control.ts';
import type { ShardFlush, ShardRead } from './counter-scripts.ts';
import type { L2Client } from './l2-client.ts';

export interface FlusherConfig {
  /** Shards per counter (counterShards): every process of a deployment uses the same. */
  shards: number;
  flushIntervalMs: number;
  /** How long a writer's mark outlives its last flush (the longest safe retry horizon). */
  markTtlMs: number;
  /** Longest wait between re-sends of a failed flush. */
  retryMaxMs: number;
}

/**
 * What close() could not get acknowledged: `unsent` never left this process and is lost
 * with it; `unknown` was sent and not answered (Redis may yet apply it, once).
 */
export interface Unflushed {
  name: string;
  unsent: bigint;
  unknown: bigint;
}

/** A counter total as read from Redis, minus this process's part of it (see the header). */
export type CounterBase = bigint;

/** How long close() waits for adds already past their closed-check (a dead thread's never ends). */
const ADDS_SETTLE_MS = 1000;

interface Job {
  cell: number;
  flush: ShardFlush;
}

interface ReadPlan {
  name: string;
  states: CounterState[];
  reads: ShardRead[];
  markAt: Map<number, number>;
}

interface ReadWaiter {
  resolve: (base: CounterBase) => void;
  reject: (error: Error) => void;
}

/** The shard a cell's flushes go to: fixed per (writer, cell), spread over the shards. */
export function homeShard(writerField: string, shards: number): number {
  return calculateSlot(writerField) % shards;
}

export class CounterFlusher {
  readonly #writer: L1Writer;
  readonly #l2: L2Client;
  readonly #control: Control;
  readonly #config: FlusherConfig;
  readonly #writerId: string;
  /** Rounds and reads, one at a time (see the header). */
  #lane: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  /** Counters whose total was asked for, with everybody waiting for it. */
  #reads = new Map<string, ReadWaiter[]>();
  #readQueued = false;
  /** Per cell: failed sends in a row, and when the next re-send may go. */
  readonly #retry = new Map<number, { failures: number; at: number }>();
  /** Shard keys per counter name: computing them hashes a few dozen candidates. */
  readonly #shardKeys = new Map<string, string[]>();
  #closed = false;

  constructor(writer: L1Writer, l2: L2Client, control: Control, config: FlusherConfig) {
    this.#writer = writer;
    this.#l2 = l2;
    this.#control = control;
    this.#config = config;
    this.#writerId = control.writerId;
    this.#schedule();
  }

  /** The current base of counter `name` (add this process's `added` to get the total). */
  read(name: string): Promise<CounterBase> {
    if (this.#closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const waiters = this.#reads.get(name);
      if (waiters !== undefined) waiters.push({ resolve, reject });
      else this.#reads.set(name, [{ resolve, reject }]);
      if (!this.#readQueued) {
        this.#readQueued = true;
        this.#enqueue(() => this.#readRound());
      }
    });
  }

  /**
   * Stop the rounds and flush what is left, re-sending failures without backoff, for at
   * most `budgetMs`. Resolves with what could not be flushed (nothing, normally).
   */
  async close(budgetMs: number): Promise<Unflushed[]> {
    if (this.#closed) return [];
    this.#closed = true;
    clearTimeout(this.#timer);
    const deadline = performance.now() + budgetMs;
    await this.#lane;
    for (const waiters of this.#reads.values()) for (const w of waiters) w.reject(closedError());
    this.#reads.clear();
    this.#retry.clear();
    // Adds that passed their closed-check before CLOSED was set land before this returns.
    await this.#control.addsSettled(ADDS_SETTLE_MS);
    // At least one round, even with nothing unflushed: it settles zero-sum adds' waiters.
    do {
      await this.#round();
      if (this.#unflushed().length === 0) break;
      await sleep(
        Math.max(0, Math.min(this.#config.flushIntervalMs, deadline - performance.now())),
      );
    } while (performance.now() < deadline);
    return this.#unflushed();
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#enqueue(() => this.#round());
      this.#lane.then(() => this.#schedule());
    }, this.#config.flushIntervalMs);
  }

  #enqueue(task: () => Promise<void>): void {
    // A task never rejects (each handles its own failures), so the lane never breaks.
    this.#lane = this.#lane.then(task).catch(() => {});
  }

  /** One flush round (see the header). */
  async #round(): Promise<void> {
    const jobs: Job[] = [];
    const now = performance.now();
    for (const cell of this.#writer.counterCells()) {
      const st = this.#writer.counterState(cell);
      let pending = st.pending;
      if (pending !== undefined) {
        const retry = this.#retry.get(cell);
        if (retry !== undefined && now < retry.at && !this.#closed) continue;
      } else if (st.added === st.ackedUpTo) {
        // Nothing to send; adds that summed to nothing (+5, −5) still have callers waiting.
        if (st.ops !== st.ackedOps) this.#writer.settleCounter(cell, st.added, st.ops);
        continue;
      }
      // Decided on `added`, not `ops`: an add whose thread died between its two
      // Atomics.adds moved `added` only, and must be flushed all the same.
      const shardKeys = this.#shardKeysOf(this.#writer.counterName(cell));
      if (shardKeys === undefined) continue;
      if (pending === undefined) {
        pending = {
          seq: this.#control.nextFlushSeq(),
          shard: homeShard(this.#field(cell), this.#config.shards),
          upTo: st.added,
          ops: st.ops,
        };
        this.#writer.beginCounterFlush(cell, pending);
      }
      const shardKey = shardKeys[pending.shard];
      jobs.push({
        cell,
        flush: {
          shardKey,
          markKey: flushMarkKeyOf(shardKey, this.#field(cell)),
          seq: pending.seq,
          // What the record carries beyond the acknowledged part.
          delta: pending.upTo - st.ackedUpTo,
        },
      });
    }
    if (jobs.length === 0) return;
    this.#control.add('counterFlushes', jobs.length);
    const results = await this.#l2.flushMany(
      jobs.map((j) => j.flush),
      this.#config.markTtlMs,
    );
    const done = performance.now();
    results.forEach((applied, i) => {
      const { cell } = jobs[i];
      if (applied instanceof HotshieldError) {
        this.#control.add('counterFlushErrors');
        const failures = (this.#retry.get(cell)?.failures ?? 0) + 1;
        this.#retry.set(cell, { failures, at: done + this.#backoff(failures) });
        return;
      }
      if (!applied) this.#control.add('counterDuplicates');
      this.#retry.delete(cell);
      this.#writer.ackCounterFlush(cell);
    });
  }

  /** Exponential from the flush interval up to retryMaxMs, with jitter (no lockstep). */
  #backoff(failures: number): number {
    const { flushIntervalMs, retryMaxMs } = this.#config;
    const base = Math.min(retryMaxMs, flushIntervalMs * 2 ** Math.min(failures, 20));
    return base / 2 + Math.random() * (base / 2);
  }

  /** Read every asked-for total in one batch (one pipeline per master). */
  async #readRound(): Promise<void> {
    this.#readQueued = false;
    const asked = this.#reads;
    this.#reads = new Map();
    if (asked.size === 0) return;
    const plans: ReadPlan[] = [];
    for (const [name, waiters] of asked) {
      const plan = this.#readPlan(name);
      if (plan !== undefined) plans.push(plan);
      else for (const w of waiters) w.reject(badName(name));
    }
    if (plans.length === 0) return;
    const results = await this.#l2.readShards(plans.flatMap((p) => p.reads));
    let at = 0;
    for (const plan of plans) {
      const mine = results.slice(at, at + plan.reads.length);
      at += plan.reads.length;
      const waiters = asked.get(plan.name) ?? [];
      const failed = mine.find((r) => r instanceof HotshieldError);
      if (failed instanceof HotshieldError) {
        for (const w of waiters) w.reject(failed);
        continue;
      }
      this.#control.add('counterReads');
      let sum = 0n;
      for (const r of mine) if (!(r instanceof HotshieldError)) sum += r.value;
      let ours = 0n;
      for (const st of plan.states) {
        ours += st.ackedUpTo;
        const p = st.pending;
        if (p === undefined) continue;
        // The home shard was read with this cell's mark: is the pending flush in the sum?
        const read = mine[p.shard];
        const mark =
          read instanceof HotshieldError ? undefined : read.marks[plan.markAt.get(st.cell) ?? -1];
        if (mark !== undefined && mark >= p.seq) {
          ours += p.upTo - st.ackedUpTo;
          // Redis has it: as good as an acknowledgement.
          this.#writer.ackCounterFlush(st.cell);
          this.#retry.delete(st.cell);
        }
      }
      for (const w of waiters) w.resolve(sum - ours);
    }
  }

  /**
   * For counter `name`: its cells' state now, and one read per shard carrying the marks
   * of the cells with a flush pending there (`markAt`: cell → its mark's index).
   */
  #readPlan(name: string): ReadPlan | undefined {
    const shardKeys = this.#shardKeysOf(name);
    if (shardKeys === undefined) return undefined;
    const states = this.#writer.cellsNamed(name).map((cell) => this.#writer.counterState(cell));
    const reads = shardKeys.map((shardKey) => ({
      shardKey,
      markKeys: [] as string[],
    }));
    const markAt = new Map<number, number>();
    for (const st of states) {
      if (st.pending === undefined) continue;
      const read = reads[st.pending.shard];
      markAt.set(st.cell, read.markKeys.length);
      read.markKeys.push(flushMarkKeyOf(read.shardKey, this.#field(st.cell)));
    }
    return { name, states, reads, markAt };
  }

  /**
   * The shard keys of counter `name`, or undefined if it cannot be a counter (a cell
   * made through the bare L1 API, an ask from a confused thread): that one counter is
   * skipped, never the round or the read batch it is in.
   */
  #shardKeysOf(name: string): string[] | undefined {
    let keys = this.#shardKeys.get(name);
    if (keys === undefined) {
      try {
        keys = shardKeysFor(name, this.#config.shards);
      } catch {
        return undefined;
      }
      if (this.#shardKeys.size >= 65_536) this.#shardKeys.clear();
      this.#shardKeys.set(name, keys);
    }
    return keys;
  }

  /** A cell's identity in Redis marks: this process's writer id and the cell. */
  #field(cell: number): string {
    return `${this.#writerId}.${cell}`;
  }

  #unflushed(): Unflushed[] {
    const out: Unflushed[] = [];
    for (const cell of this.#writer.counterCells()) {
      const st = this.#writer.counterState(cell);
      if (st.added === st.ackedUpTo) continue;
      const sent = st.pending === undefined ? st.ackedUpTo : st.pending.upTo;
      out.push({
        name: this.#writer.counterName(cell),
        unsent: st.added - sent,
        unknown: sent - st.ackedUpTo,
      });
    }
    return out;
  }
}

function badName(name: string): HotshieldError {
  return new HotshieldError('HS_ERR_COUNTER_NAME', `${JSON.stringify(name)} cannot be a counter`);
}
