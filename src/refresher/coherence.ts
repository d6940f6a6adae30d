/**
 * Coherence: Redis tells the refresher when a key it has read changes, whoever changed
 * it (server-assisted client-side caching, RESP2 two-connection mode).
 *
 * For every master the refresher reads from, a pair:
 * - the data connection (the cluster client's own connection to that master, or the
 *   standalone client) gets `CLIENT TRACKING ON REDIRECT <id> NOLOOP`: Redis remembers
 *   the keys read over it and, when one is written, expires, is evicted or the database
 *   is flushed, says so once. NOLOOP: our own writes are not echoed back (the refresher
 *   has already put them in L1).
 * - a subscriber connection of ours, `<id>`, subscribed to `__redis__:invalidate`, hears
 *   those messages: a list of keys, or null for a flush.
 *
 * Tracking lives in Redis per connection and is silently gone when either connection
 * drops (redis#11767: the subscriber is not told that its data connection went). So any
 * close, a reconnect, a subscriber that stops answering its ping, a master added or
 * removed, counts as `lost`: the refresher then stops trusting what it read before (it
 * marks L1 stale). `epoch` changes on every such event and on every change of the set of
 * masters; a read is coherent only if every master was tracked when it started and the
 * epoch has not moved by the time it lands (`token` / `coherent`), since a read that
 * crossed a loss may have missed its invalidation.
 */

import { type Cluster, Redis } from 'ioredis';
import { withDeadline } from './deadline.ts';
import { isCluster, STANDALONE_NODE } from './l2-batch.ts';
import type { RedisTarget } from './redis-target.ts';

export const INVALIDATE_CHANNEL = '__redis__:invalidate';

/** What the refresher does with what Redis says. */
export interface CoherenceEvents {
  /** These keys changed (written, deleted, expired or evicted in Redis). */
  invalidated(keys: readonly string[]): void;
  /** A master was flushed (FLUSHALL / FLUSHDB): every key it held is gone. */
  flushed(node: string): void;
  /** Tracking was lost on `node`: changes may have gone unheard since. */
  lost(node: string, why: string): void;
  /** How many masters are tracked, of how many, changed. */
  changed(state: { tracked: number; masters: number }): void;
  /**
   * Redis refused what coherence needs (an ACL without CLIENT TRACKING or SUBSCRIBE, a
   * Redis or a proxy without them): coherence stays off, and reads are trusted for their
   * soft TTL as without it. Said once.
   */
  refused(message: string): void;
}

export interface CoherenceOptions {
  /** Credentials and TLS for the subscriber connections (the data connections' own). */
  target: RedisTarget;
  timeoutMs: number;
  connectTimeoutMs: number;
  /** How often each subscriber is pinged; one that does not answer is reconnected. */
  pingEveryMs: number;
}

/** The pair for one master. */
interface Tracker {
  readonly node: string;
  readonly data: Redis;
  readonly sub: Redis;
  /** The subscriber's CLIENT ID while it is subscribed. */
  subId: number | undefined;
  /** The data connection tracks, redirecting to subId. */
  tracked: boolean;
  /** Counts the subscriber's connections: a late failure of an earlier one is ignored. */
  attempt: number;
  /** Subscriptions that failed in a row (the backoff before the next). */
  failures: number;
  retry: NodeJS.Timeout | undefined;
  readonly onDataReady: () => void;
  readonly onDataClose: () => void;
  retired: boolean;
}

/** A token that names no coherent read (some master was not tracked when it started). */
export const UNTRACKED = -1;
/** The token of every read once Redis refused coherence: judged by soft TTL alone. */
const TRUSTED = -2;

/** The wait before subscribing again after a failed subscription, doubling to the most. */
const RESUBSCRIBE_FIRST_MS = 100;
const RESUBSCRIBE_MAX_MS = 5000;

/** Redis's answer to a command it will never run for us: retrying cannot help. */
const REFUSAL = /^(NOPERM|ERR unknown command|ERR unknown subcommand|ERR Unknown subcommand)/i;

export class Coherence {
  readonly #client: Cluster | Redis;
  readonly #events: CoherenceEvents;
  readonly #options: CoherenceOptions;
  readonly #trackers = new Map<Redis, Tracker>();
  readonly #ping: NodeJS.Timeout;
  readonly #onTopology = () => this.reconcile();
  #epoch = 0;
  #closed = false;
  #refused: string | undefined;

  constructor(client: Cluster | Redis, events: CoherenceEvents, options: CoherenceOptions) {
    this.#client = client;
    this.#events = events;
    this.#options = options;
    if (isCluster(client)) {
      // '+node' is emitted before the first command goes to a new connection.
      client.on('+node', this.#onTopology);
      client.on('-node', this.#onTopology);
      client.on('refresh', this.#onTopology);
    }
    this.#ping = setInterval(() => this.#pingAll(), options.pingEveryMs);
    this.#ping.unref();
    this.reconcile();
  }

  /** Changes on every loss of tracking and every change of the masters. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Is every master's data connection tracked right now? */
  get complete(): boolean {
    if (this.#trackers.size === 0) return false;
    for (const t of this.#trackers.values()) if (!t.tracked) return false;
    return true;
  }

  /** Why Redis refused coherence, if it did (then it is off for good). */
  get refused(): string | undefined {
    return this.#refused;
  }

  /** Taken when a read starts: what `coherent` needs to judge it when it lands. */
  token(): number {
    if (this.#refused !== undefined) return TRUSTED;
    this.reconcile();
    return this.complete ? this.#epoch : UNTRACKED;
  }

  /**
   * Did nothing that could hide an invalidation happen since `token` was taken? The
   * masters are matched first: ioredis promotes a replica's connection in place when a
   * MOVED names it, with no event, and the read may just have been answered by it.
   */
  coherent(token: number): boolean {
    if (token === TRUSTED) return true;
    if (token === UNTRACKED) return false;
    this.reconcile();
    return token === this.#epoch && this.complete;
  }

  /** Masters tracked now, of how many. */
  state(): { tracked: number; masters: number } {
    let tracked = 0;
    for (const t of this.#trackers.values()) if (t.tracked) tracked++;
    return { tracked, masters: this.#trackers.size };
  }

  /**
   * Match the trackers to the client's masters now: on topology events, every ping round,
   * and when a read starts or lands (a replica promoted by a failover becomes a master in
   * ioredis's pool without '+node' when a MOVED names it, and the read may have gone to
   * it). Any change moves the epoch, so no read in flight across it is trusted; a master
   * we stop pairing while it was tracked (demoted, removed, its connection replaced) hears
   * nothing more for us: what was read from it is `lost`.
   */
  reconcile(): void {
    if (this.#closed || this.#refused !== undefined || this.#paired()) return;
    const masters = this.#masters();
    let changed = false;
    const untracked: string[] = [];
    for (const [data, t] of this.#trackers) {
      if (masters.has(data)) continue;
      if (t.tracked) untracked.push(t.node);
      this.#retire(t);
      this.#trackers.delete(data);
      changed = true;
    }
    for (const [data, node] of masters) {
      if (this.#trackers.has(data)) continue;
      this.#trackers.set(data, this.#open(node, data));
      changed = true;
    }
    if (changed) this.#bump();
    if (untracked.length > 0) this.#events.lost(untracked.join(' '), 'no longer a master of ours');
  }

  /** Stop tracking and close the subscribers (the data connections are the client's). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop();
  }

  #stop(): void {
    clearInterval(this.#ping);
    const client = this.#client;
    if (isCluster(client)) {
      client.off('+node', this.#onTopology);
      client.off('-node', this.#onTopology);
      client.off('refresh', this.#onTopology);
    }
    for (const t of this.#trackers.values()) this.#retire(t);
    this.#trackers.clear();
  }

  /** Is every master of the client paired, and nothing else? (Run per read: no allocation.) */
  #paired(): boolean {
    const client = this.#client;
    if (!isCluster(client)) return this.#trackers.size === 1 && this.#trackers.has(client);
    const nodes = client.nodes('master');
    if (nodes.length !== this.#trackers.size) return false;
    for (const node of nodes) if (!this.#trackers.has(node)) return false;
    return true;
  }

  #masters(): Map<Redis, string> {
    const client = this.#client;
    const out = new Map<Redis, string>();
    if (!isCluster(client)) {
      out.set(client, STANDALONE_NODE);
      return out;
    }
    for (const node of client.nodes('master'))
      out.set(node, `${node.options.host}:${node.options.port}`);
    return out;
  }

  #bump(): void {
    this.#epoch = (this.#epoch + 1) % 0x7fffffff;
    this.#events.changed(this.state());
  }

  #open(node: string, data: Redis): Tracker {
    const { target, timeoutMs, connectTimeoutMs } = this.#options;
    const { host, port } = data.options;
    const sub = new Redis({
      host,
      port,
      username: target.username,
      password: target.password,
      tls: target.tls,
      connectTimeout: connectTimeoutMs,
      commandTimeout: timeoutMs,
      // RESP2: invalidations then come as pub/sub messages on INVALIDATE_CHANNEL. ioredis 6
      // speaks RESP3 by default, where they come as 'invalidate' pushes it drops unseen.
      protocol: 2,
      // Resubscribing is ours to do: the new connection has a new id to redirect to.
      autoResubscribe: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    });
    const t: Tracker = {
      node,
      data,
      sub,
      subId: undefined,
      tracked: false,
      attempt: 0,
      failures: 0,
      retry: undefined,
      retired: false,
      onDataReady: () => void this.#track(t),
      onDataClose: () => this.#lose(t, 'data connection closed'),
    };
    // Errors surface as closes and failed commands; an 'error' without a listener would
    // take the thread down.
    sub.on('error', () => {});
    sub.on('ready', () => void this.#subscribe(t));
    sub.on('close', () => {
      t.subId = undefined;
      this.#lose(t, 'invalidation connection closed');
    });
    sub.on('messageBuffer', (channel: Buffer, message: unknown) =>
      this.#message(t, channel, message),
    );
    data.on('ready', t.onDataReady);
    data.on('close', t.onDataClose);
    // A cluster connects to a node on its first command: connect now, so that every
    // master tracks before the first read of its keys rather than after.
    if (data.status === 'wait') data.connect().catch(() => {});
    return t;
  }

  #retire(t: Tracker): void {
    t.retired = true;
    clearTimeout(t.retry);
    t.data.off('ready', t.onDataReady);
    t.data.off('close', t.onDataClose);
    t.sub.disconnect(false);
  }

  /** The subscriber is (re)connected: learn its id, subscribe, then track on the data side. */
  async #subscribe(t: Tracker): Promise<void> {
    const { timeoutMs } = this.#options;
    const attempt = ++t.attempt;
    try {
      const id = await withDeadline(t.sub.client('ID'), timeoutMs, 'CLIENT ID');
      await withDeadline(t.sub.subscribe(INVALIDATE_CHANNEL), timeoutMs, 'SUBSCRIBE');
      if (t.retired || t.attempt !== attempt) return;
      t.subId = Number(id);
      await this.#track(t);
    } catch (error) {
      if (this.#refusal(error) || t.retired || t.attempt !== attempt) return;
      // Reconnect and try again, later each time it fails: until then the node is not
      // tracked (its reads get the short untracked soft TTL).
      t.failures++;
      t.sub.disconnect(false);
      const delay = Math.min(RESUBSCRIBE_FIRST_MS * 2 ** (t.failures - 1), RESUBSCRIBE_MAX_MS);
      t.retry = setTimeout(() => {
        if (!t.retired) t.sub.connect().catch(() => {});
      }, delay);
      t.retry.unref();
    }
  }

  /** Is `error` Redis refusing coherence for good? Then stop trying, and say so. */
  #refusal(error: unknown): boolean {
    const message = error instanceof Error ? error.message : String(error);
    if (!REFUSAL.test(message) || this.#closed) return false;
    if (this.#refused === undefined) {
      this.#refused = message.slice(0, 300);
      this.#stop();
      this.#bump();
      this.#events.refused(this.#refused);
    }
    return true;
  }

  /** Turn tracking on for the data connection, redirected to the subscriber. */
  async #track(t: Tracker): Promise<void> {
    const id = t.subId;
    if (t.retired || id === undefined || t.data.status !== 'ready') return;
    try {
      const ok = await withDeadline(
        t.data.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'NOLOOP'),
        this.#options.timeoutMs,
        'CLIENT TRACKING',
      );
      // Still the same pair as when it was asked for: nothing closed in between.
      if (String(ok) === 'OK' && !t.retired && t.subId === id && t.data.status === 'ready') {
        t.tracked = true;
        t.failures = 0;
        this.#events.changed(this.state());
      }
    } catch (error) {
      // Unless refused, the node is slow or gone: the next reconnect or ping round tries again.
      this.#refusal(error);
    }
  }

  #lose(t: Tracker, why: string): void {
    if (t.retired || this.#closed || this.#refused !== undefined) return;
    const was = t.tracked;
    t.tracked = false;
    this.#bump();
    if (was) this.#events.lost(t.node, why);
  }

  #message(t: Tracker, channel: Buffer, message: unknown): void {
    if (t.retired || channel.toString() !== INVALIDATE_CHANNEL) return;
    if (message === null) {
      this.#events.flushed(t.node);
      return;
    }
    // A list of key names (RESP2 carries the array as the message itself).
    const list = Array.isArray(message) ? message : [message];
    const keys: string[] = [];
    for (const k of list) if (Buffer.isBuffer(k)) keys.push(k.toString());
    if (keys.length > 0) this.#events.invalidated(keys);
  }

  /**
   * A subscriber that stopped answering (a hung node, a half-open socket) would hear
   * nothing while looking healthy: ping each one, and reconnect one that does not answer.
   * A node that is up but not tracked (a CLIENT TRACKING that failed) is tried again.
   */
  #pingAll(): void {
    if (this.#closed || this.#refused !== undefined) return;
    this.reconcile();
    const { timeoutMs } = this.#options;
    for (const t of this.#trackers.values()) {
      if (t.sub.status !== 'ready') continue;
      if (!t.tracked && t.subId !== undefined) void this.#track(t);
      withDeadline(t.sub.ping(), timeoutMs, 'PING').catch((error) => {
        if (!this.#refusal(error) && !t.retired) t.sub.disconnect(true);
      });
    }
  }
}
