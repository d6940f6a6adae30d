/**
 * The refresher: the one thread of a process that talks to Redis and the only writer of
 * L1 entries. This is the thread's composition: its L1 writer, its Redis client and read
 * batcher, the channels to every attached thread (client-channels.ts), the flights that
 * serve their asks (flights.ts), the counter flusher, coherence with Redis (what Redis
 * says changed leaves L1: coherence.ts), and a housekeeping round every SWEEP_EVERY_MS
 * (refresher state, expired entries, breaker counts, the hot-key table's upkeep).
 */

import { HotshieldError } from '../errors.ts';
import { type L1Handle, L1Table, L1Writer } from '../l1/index.ts';
import { ClientChannels } from './client-channels.ts';
import { Coherence } from './coherence.ts';
import type { RefresherConfig } from './config.ts';
import type { Control } from './control.ts';
import { CounterFlusher, type Unflushed } from './counter-flusher.ts';
import { EntryStore } from './entry-store.ts';
import { Flights } from './flights.ts';
import { HotFleet } from './hot-fleet.ts';
import { L2Client } from './l2-client.ts';
import { RefresherMetrics } from './metrics.ts';
import { type Ask, parseAsk, type Reply } from './protocol.ts';
import { ReadBatcher } from './read-batcher.ts';
import { MIN_SOFT_TTL_MS, RefreshAhead } from './refresh-ahead.ts';
import { itemsOf } from './turn-batch.ts';

const noop = (): void => {};

const SWEEP_EVERY_MS = 500;
/** The hot-key table's keeper runs every this many housekeeping rounds: once a second. */
const HEAT_EVERY_ROUNDS = 2;
/** How long close() keeps flushing counters (refresher-pool.ts gives close 5 s in all). */
const FINAL_FLUSH_MS = 3000;
/**
 * Longest wait between re-sends of a failed counter flush: about a breaker cooldown, so
 * that flushes resume within a second of a failover or an outage ending.
 */
const FLUSH_RETRY_MAX_MS = 1000;
/** Keys the read batcher sends in one batch at most. */
const MAX_BATCH = 512;
/**
 * With coherence on, the longest a value Redis does not track for us stays fresh (our
 * own writes, reads that crossed a loss of tracking): whatever fails, no value goes
 * unchecked for longer than this plus one refresh.
 */
const UNTRACKED_SOFT_TTL_MS = 1000;
/** How often each invalidation subscriber is pinged (a silent one is reconnected). */
const COHERENCE_PING_MS = 1000;

export class Refresher {
  readonly #config: RefresherConfig;
  readonly #control: Control;
  readonly #writer: L1Writer;
  readonly #table: L1Table;
  readonly #l2: L2Client;
  readonly #batcher: ReadBatcher;
  readonly #counters: CounterFlusher;
  readonly #clients: ClientChannels;
  readonly #flights: Flights;
  readonly #coherence: Coherence | undefined;
  /** Hot keys refreshed before they turn stale (refresh-ahead.ts); undefined with hotKeys off. */
  readonly #ahead: RefreshAhead | undefined;
  /** The fleet's hot set: this process's published, every process's read (hot-fleet.ts). */
  readonly #fleet: HotFleet;
  readonly #metrics = new RefresherMetrics(() => this.#flights.size);
  readonly #sweep: NodeJS.Timeout;
  #mirrored = { rejected: 0, opened: 0, resets: 0 };
  #rounds = 0;
  #closed = false;

  constructor(l1: L1Handle, control: Control, config: RefresherConfig) {
    this.#config = config;
    this.#control = control;
    control.setState('starting');
    // The pool runs at most one refresher, so whoever held the writer role is dead (maybe
    // before it could announce itself): take it over rather than crash-loop on it.
    this.#writer = L1Writer.open(l1, { takeover: true });
    this.#table = L1Table.attach(l1);
    this.#l2 = new L2Client({
      redis: config.redis,
      l2TimeoutMs: config.l2TimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      slotsRefreshIntervalMs: config.slotsRefreshIntervalMs,
      breakerThreshold: config.breakerThreshold,
      breakerCooldownMs: config.breakerCooldownMs,
      onCall: (call) => this.#metrics.call(call),
    });
    this.#batcher = new ReadBatcher(this.#l2, MAX_BATCH, (keys) => {
      control.add('l2Batches');
      this.#metrics.batch(keys);
    });
    this.#counters = new CounterFlusher(this.#writer, this.#l2, control, {
      shards: config.counterShards,
      flushIntervalMs: config.flushIntervalMs,
      markTtlMs: config.counterMarkTtlMs,
      retryMaxMs: FLUSH_RETRY_MAX_MS,
    });
    this.#clients = new ClientChannels(config.tierId, config.maxThreads * 4, {
      ask: (clientId, data) => this.#onMessage(clientId, data),
      left: (clientId) => this.#flights.forget(clientId),
    });
    this.#coherence = config.coherence ? this.#cohere() : undefined;
    const untrackedSoftTtlMs = config.coherence
      ? Math.min(config.softTtlMs, UNTRACKED_SOFT_TTL_MS)
      : config.softTtlMs;
    this.#flights = new Flights({
      config,
      control,
      table: this.#table,
      entries: new EntryStore(this.#writer, control, { ...config, untrackedSoftTtlMs }),
      l2: this.#l2,
      batcher: this.#batcher,
      counters: this.#counters,
      clients: this.#clients,
      tracking: this.#coherence,
    });
    this.#ahead =
      this.#table.heatOn && config.softTtlMs >= MIN_SOFT_TTL_MS
        ? new RefreshAhead(this.#table, {
            hotThreshold: config.hotThreshold,
            refresh: (key) => this.#flights.refreshAhead(key),
          })
        : undefined;
    this.#fleet = new HotFleet(this.#l2, this.#table, config.tierId);
    this.#sweep = setInterval(() => this.#housekeeping(), SWEEP_EVERY_MS);
    const generation = control.announceRefresher();
    if (generation > 1) control.add('respawns');
    this.#clients.announce(generation);
    this.#l2.ready(config.connectTimeoutMs).then(
      () => this.#housekeeping(),
      () => this.#housekeeping(),
    );
  }

  /**
   * Stop: flush the counters (for up to FINAL_FLUSH_MS), fail what is in flight, leave
   * the channels, close Redis and the writer. Resolves with what could not be flushed.
   */
  async close(): Promise<Unflushed[]> {
    if (this.#closed) return [];
    this.#closed = true;
    this.#clients.stop();
    this.#flights.close();
    const unflushed = await this.#counters.close(FINAL_FLUSH_MS);
    clearInterval(this.#sweep);
    this.#ahead?.close();
    this.#coherence?.close();
    // Every attachment fails what it still waits for (reads, leases, unacknowledged writes).
    this.#clients.close();
    this.#control.setState('down');
    this.#control.setCoherence(0, 0);
    await this.#l2.close();
    this.#writer.close();
    this.#table.close();
    return unflushed;
  }

  /** The refresher's view of Redis, with ioredis' last connection error (no secrets in it). */
  status(): { state: string; lastError: string | undefined } {
    return { state: this.#control.state, lastError: this.#l2.lastError };
  }

  /** ioredis failed inside its reply handling (see thread.ts): start its connections anew. */
  resetL2(): void {
    this.#l2.resetConnections();
  }

  /** This thread's Prometheus metrics, as prom-client JSON. */
  metrics(): Promise<object[]> {
    return this.#metrics.registry.getMetricsAsJSON();
  }

  /** What Redis says changed leaves L1 (and is not stored by a read in flight). */
  #cohere(): Coherence {
    const control = this.#control;
    return new Coherence(
      this.#l2.client,
      {
        // Each is counted once L1 shows it: whoever sees the count (another thread, a
        // test waiting for an announcement) then reads an L1 that has it applied.
        invalidated: (keys) => {
          for (const key of keys) {
            this.#flights.invalidated(key);
            if (this.#dropInvalidated(key)) control.add('invalidatedEntries');
          }
          control.add('invalidations', keys.length);
        },
        flushed: () => {
          this.#flights.invalidatedAll();
          this.#writer.clear();
          control.add('invalidationFlushes');
        },
        // Served stale while one refresh per key replaces them: a clear would turn every
        // hot key into a miss at once, mid-failover.
        lost: () => {
          this.#writer.markAllStale();
          control.add('trackingLost');
        },
        changed: ({ tracked, masters }) => control.setCoherence(tracked, masters),
        refused: () => control.add('trackingRefused'),
      },
      {
        target: this.#config.redis,
        timeoutMs: this.#config.l2TimeoutMs,
        connectTimeoutMs: this.#config.connectTimeoutMs,
        pingEveryMs: COHERENCE_PING_MS,
      },
    );
  }

  /**
   * Drop what L1 holds of `key`. Redis announces every key read over a tracked connection,
   * some of which L1 cannot even name (longer than maxKeyBytes: a counter's flush mark a
   * shard read's script read), and anyone may PUBLISH on the channel; L1 holds nothing
   * for those, and they must not throw here.
   */
  #dropInvalidated(key: string): boolean {
    try {
      return this.#writer.delete(key);
    } catch {
      return false;
    }
  }

  #housekeeping(): void {
    if (this.#closed) return;
    this.#control.setState(this.#l2.isReady ? 'l2Ready' : 'l2Down');
    this.#writer.sweepExpired();
    // The hot-key table's windows are seconds: every other round (heat-keeper.ts).
    // Hot keys are a view and a help, never a reason for this thread to die: a failure
    // here (a slot map ioredis could not parse, say) skips this round's upkeep.
    try {
      if (this.#rounds++ % HEAT_EVERY_ROUNDS === 0 && this.#table.heatOn) {
        this.#writer.tickHeat(this.#l2.slotOwners());
        this.#fleet.publish().catch(noop);
      }
      this.#ahead?.tick();
    } catch {
      this.#control.add('heatErrors');
    }
    // The breaker lives in this thread; its counts are mirrored for every thread to read.
    const b = this.#l2.breakerState();
    this.#control.add('breakerRejected', b.rejected - this.#mirrored.rejected);
    this.#control.add('breakerOpened', b.opened - this.#mirrored.opened);
    this.#control.add('l2Resets', b.resets - this.#mirrored.resets);
    this.#mirrored = { rejected: b.rejected, opened: b.opened, resets: b.resets };
  }

  /** A message on a client's channel: one ask, or the asks of one of its turns (turn-batch.ts). */
  #onMessage(clientId: string, data: unknown): void {
    for (const item of itemsOf(data)) this.#onAsk(clientId, item);
  }

  /** Read and merge the fleet's reports for one asker; a failure is its answer. */
  #fleetReport(ask: Extract<Ask, { t: 'hot' }>): void {
    const reply = (r: Omit<Extract<Reply, { t: 'hot' }>, 't' | 'id' | 'to'>) =>
      this.#clients.send(ask.from, { t: 'hot', id: ask.id, to: ask.from, ...r });
    this.#fleet.read(ask.limit).then(
      (report) => reply({ report }),
      (error: unknown) => {
        const e =
          error instanceof HotshieldError
            ? error
            : new HotshieldError('HS_ERR_L2_UNAVAILABLE', String(error));
        reply({ code: e.code, message: e.message });
      },
    );
  }

  #onAsk(clientId: string, data: unknown): void {
    const ask = parseAsk(data, this.#config.maxKeyBytes);
    // A client speaks for itself only.
    if (ask === undefined || ask.from !== clientId) return;
    if (ask.t === 'hot') {
      this.#fleetReport(ask);
      return;
    }
    // Nothing an ask carries may take the refresher down (a respawn loses every flight):
    // a failure here leaves the asker to its own timer.
    try {
      const flights = this.#flights;
      if (ask.t === 'fetch') flights.fetch(ask);
      else if (ask.t === 'store') flights.loaded(ask).catch(noop);
      else if (ask.t === 'release') flights.released(ask.key, ask.from);
      else if (ask.t === 'gone' || ask.t === 'loadFailed') flights.loadEnded(ask);
      else flights.write(ask).catch(noop);
    } catch {
      // Dropped, as above.
    }
  }
}
