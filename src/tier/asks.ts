/**
 * What one thread asks its tier's refresher, and what the refresher's replies mean for
 * the callers waiting in this thread: a miss waits for the key's flight (waiters.ts), a
 * stale hit asks for one background refresh, a write waits for its acknowledgement, and
 * a lease runs one caller's loader (loader-lease.ts). Transport: refresher-link.ts.
 */

import { closedError, HotshieldError } from '../errors.ts';
import { counterOfTotalKey } from '../keys/reserved-keys.ts';
import type { L1Table } from '../l1/index.ts';
import type { Control } from '../refresher/control.ts';
import type { HotKeysReport } from '../refresher/hot-report.ts';
import { FLAG_ABSENT, type Reply } from '../refresher/protocol.ts';
import { type CodecName, decode } from './codec.ts';
import { LoaderLeases } from './loader-lease.ts';
import type { TierConfig } from './options.ts';
import { type Outgoing, RefresherLink, replyError, type Without } from './refresher-link.ts';
import type { Loader } from './types.ts';
import { type Pending, Waiters } from './waiters.ts';

type Done = Extract<Reply, { t: 'done' }>;
type Write = Extract<Outgoing, { t: 'set' | 'delete' }>;

/** Bound on the keys a thread remembers as being refreshed (cleared when reached). */
const PENDING_REFRESH_LIMIT = 10_000;
/** Bound on a thread's fleet hot-set reports waiting for the refresher. */
const MAX_REPORTS = 64;

interface ReportWait {
  readonly limit: number;
  readonly resolve: (report: HotKeysReport) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Does `reply` answer `p`'s callers? Not if it answers an earlier ask of this thread (a
 * background refresh, or callers since answered): that flight may have read the key
 * before a change these callers came after; the answer to their own ask follows.
 */
function answers(reply: Done, p: Pending): boolean {
  return reply.seq === undefined || reply.seq >= p.askSeq;
}

export class Asks {
  readonly #config: TierConfig;
  readonly #control: Control;
  readonly #l1: L1Table;
  readonly #codec: CodecName;
  readonly #link: RefresherLink;
  readonly #waiters: Waiters;
  readonly #leases: LoaderLeases;
  /** Keys whose background refresh was asked for, and when this thread may ask again. */
  readonly #refreshing = new Map<string, number>();
  /** Fleet hot-set reports asked for (hot-fleet.ts), by id. */
  readonly #reports = new Map<number, ReportWait>();
  #nextReport = 1;
  /** This thread's fetches so far: each carries its number (Pending.askSeq). */
  #fetches = 0;
  #closed = false;

  constructor(config: TierConfig, control: Control, l1: L1Table) {
    this.#config = config;
    this.#control = control;
    this.#l1 = l1;
    this.#codec = config.codec;
    this.#waiters = new Waiters(config.maxWaiting, control);
    this.#link = new RefresherLink(config.tierId, control.generation, config.maxWaiting, {
      reply: (reply) => this.#onReply(reply),
      restarted: () => this.#onRefresherStart(),
      closed: () => this.#waiters.failAll(closedError()),
    });
    this.#leases = new LoaderLeases({
      waiters: this.#waiters,
      link: this.#link,
      codec: this.#codec,
      loaderTimeoutMs: config.loaderTimeoutMs,
      maxValueBytes: config.maxValueBytes,
      isClosed: () => this.#closed,
    });
  }

  /** Callers waiting in this thread, and the keys they wait for. */
  get waiting(): { waiting: number; pendingKeys: number } {
    return { waiting: this.#waiters.waiting, pendingKeys: this.#waiters.pendingKeys };
  }

  /**
   * The value of `key` once the refresher has it (or the loader made it), within
   * `timeoutMs`; `versioned`: as a Fetched, with the L1 version that holds it.
   */
  fetch(
    key: string,
    loader: Loader | undefined,
    ttlMs: number,
    timeoutMs: number,
    versioned = false,
  ): Promise<unknown> {
    return this.#waiters.wait(
      key,
      loader,
      ttlMs,
      timeoutMs,
      (p, load) => this.#fetch(p, load),
      versioned,
    );
  }

  /** Ask for one background refresh (never a load: a caller with a loader has a value). */
  refresh(key: string): void {
    const now = performance.now();
    const notBefore = this.#refreshing.get(key);
    if (notBefore !== undefined && now < notBefore) return;
    if (this.#refreshing.size >= PENDING_REFRESH_LIMIT) this.#refreshing.clear();
    // Until the refresher answers (or an L2 deadline and then some pass), one ask is enough.
    this.#refreshing.set(key, now + this.#config.l2TimeoutMs * 4);
    this.#control.add('refreshes');
    this.#link.post({ t: 'fetch', key, load: false, seq: ++this.#fetches });
  }

  /** Ask the refresher for `p`'s key; its callers now wait for the answer to this ask. */
  #fetch(p: Pending, load: boolean): void {
    p.askSeq = ++this.#fetches;
    this.#link.post({ t: 'fetch', key: p.key, load, seq: p.askSeq });
  }

  /** Send a write and resolve once the refresher acknowledged it (Redis, then L1). */
  write(write: Without<Write, 'id'>, timeoutMs: number): Promise<void> {
    return this.#waiters.acknowledgement(write.key, timeoutMs, (id) =>
      this.#link.post({ ...write, id } as Write),
    );
  }

  /** The fleet's hot set, merged by the refresher from every live process's report in Redis. */
  hotReport(limit: number, timeoutMs: number): Promise<HotKeysReport> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#reports.size >= MAX_REPORTS)
      return Promise.reject(
        new HotshieldError(
          'HS_ERR_QUEUE_FULL',
          `${MAX_REPORTS} hot-key reports are already being read`,
        ),
      );
    const id = this.#nextReport++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.#reports.delete(id)) return;
        this.#control.add('timeouts');
        reject(
          new HotshieldError('HS_ERR_TIMEOUT', `no fleet hot-key report within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#reports.set(id, { limit, resolve, reject, timer });
      this.#link.post({ t: 'hot', id, limit });
    });
  }

  #onReport(reply: Extract<Reply, { t: 'hot' }>): void {
    const wait = this.#reports.get(reply.id);
    if (reply.to !== this.#link.clientId || wait === undefined) return;
    this.#reports.delete(reply.id);
    clearTimeout(wait.timer);
    if (reply.report !== undefined) wait.resolve(reply.report);
    else wait.reject(replyError(reply.code, reply.message));
  }

  /** Fail everything still waiting and leave the refresher (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // A flight must not wait for a loader of ours that will never report.
    for (const p of this.#waiters.pending()) {
      if (p.askedLoad || p.loading) this.#link.post({ t: 'release', key: p.key });
    }
    this.#waiters.failAll(closedError());
    for (const wait of this.#reports.values()) {
      clearTimeout(wait.timer);
      wait.reject(closedError());
    }
    this.#reports.clear();
    this.#link.close();
  }

  #onReply(reply: Exclude<Reply, { t: 'welcome' }>): void {
    if (this.#closed) return;
    if (reply.t === 'hot') {
      this.#onReport(reply);
      return;
    }
    if (reply.t === 'ack') {
      if (reply.to !== this.#link.clientId) return;
      const error = reply.code === undefined ? undefined : replyError(reply.code, reply.message);
      this.#waiters.acked(reply.id, error);
      return;
    }
    if (reply.status === 'lease') this.#onLease(reply);
    else this.#onDone(reply);
  }

  /**
   * A lease tells every thread that Redis has no value (or failed: `code`): callers
   * without a loader are answered now; only the addressee runs its loader, and one that
   * cannot (its loader callers left) hands the lease back at once.
   */
  #onLease(reply: Done): void {
    const { key } = reply;
    const p = this.#waiters.get(key);
    if (p !== undefined && answers(reply, p)) {
      const why = reply.code === undefined ? undefined : replyError(reply.code, reply.message);
      this.#waiters.settleAll(p, (w) =>
        w.loader !== undefined
          ? undefined
          : why === undefined
            ? { value: undefined }
            : { error: why },
      );
    }
    if (reply.to === this.#link.clientId && (p === undefined || !this.#leases.start(p))) {
      this.#link.post({ t: 'release', key });
    }
  }

  #onDone(reply: Done): void {
    const { key } = reply;
    if (reply.to !== undefined && reply.to !== this.#link.clientId) return;
    if (reply.status === 'error')
      this.#refreshing.set(key, performance.now() + this.#config.breakerCooldownMs);
    else this.#refreshing.delete(key);
    const p = this.#waiters.get(key);
    if (p === undefined || !answers(reply, p)) return;
    switch (reply.status) {
      case 'ok':
        this.#delivered(p, reply.value, reply.flags ?? 0, reply.version ?? 0);
        return;
      case 'absent':
        // Callers with a loader keep waiting and ask again, with `load`: their first ask
        // joined a flight that was not leased (it came too late, or a write superseded
        // it). The refresher coalesces a duplicate.
        this.#waiters.settleAll(p, (w) =>
          w.loader === undefined ? { value: undefined } : undefined,
        );
        if (p.waiters.length > 0) {
          p.askedLoad = true;
          this.#fetch(p, true);
        }
        return;
      case 'gone':
        this.#waiters.settleAll(p, () => ({ value: undefined }));
        return;
      case 'error': {
        const error = replyError(reply.code, reply.message, p.loaderError);
        p.loaderError = undefined;
        this.#waiters.settleAll(p, () => ({ error }));
        return;
      }
    }
  }

  #delivered(p: Pending, value: Uint8Array | undefined, flags: number, version: number): void {
    let bytes: Uint8Array | undefined = value;
    let entryFlags = flags;
    let entryVersion = version;
    if (bytes === undefined) {
      const entry = this.#l1.get(p.key);
      if (entry === undefined || (entry.flags & FLAG_ABSENT) !== 0) {
        // Evicted between the refresher's write and this read (rare): ask again; the
        // waiters' own timers still bound the wait.
        this.#fetch(p, p.askedLoad);
        return;
      }
      bytes = entry.value;
      entryFlags = entry.flags;
      entryVersion = entry.version;
    }
    const data = bytes;
    // A counter's cached total is a decimal, read by the tier's counterBase, not a value of the codec.
    if (counterOfTotalKey(p.key) !== undefined) {
      this.#waiters.settleAll(p, () => ({ value: data }));
      return;
    }
    this.#waiters.settleAll(p, () => {
      try {
        return { value: decode(this.#codec, data, entryFlags), version: entryVersion };
      } catch (error) {
        return { error: error as Error };
      }
    });
  }

  /** A new refresher knows nothing of the old one's flights: ask again, fail unacknowledged writes. */
  #onRefresherStart(): void {
    for (const p of this.#waiters.pending()) {
      if (!p.loading) this.#fetch(p, p.askedLoad);
    }
    // A report is a read: ask the new refresher again.
    for (const [id, wait] of this.#reports) this.#link.post({ t: 'hot', id, limit: wait.limit });
    this.#waiters.failAcks(
      new HotshieldError(
        'HS_ERR_L2_UNAVAILABLE',
        'the refresher restarted before acknowledging this write; it may or may not have been applied',
      ),
    );
  }
}
