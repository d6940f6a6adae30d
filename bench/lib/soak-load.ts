/**
 * The soak's load: closed-loop HTTP clients over keep-alive connections, mixing Zipf
 * reads of cached keys with counter increments, and recording everything per minute:
 * statuses, errors by kind (the JSON error code, or the socket error), latencies, and
 * for the counter every increment attempted, accepted (202) and acknowledged (200 with
 * sync=1), so that the final total can be checked the way Jepsen checks a counter.
 */

import http from 'node:http';
import { type Prng, prng } from './prng.ts';
import { zipfTrace } from './zipf.ts';

export interface MinuteStats {
  minute: number;
  requests: number;
  /** Status (or `error`) → count. */
  statuses: Record<string, number>;
  /** Error kind (JSON error code, socket error code, `timeout`) → count. */
  errors: Record<string, number>;
  latenciesMs: number[];
  /** x-cache of 200 reads. */
  cache: Record<string, number>;
}

export interface CounterTally {
  /** Increments sent (whatever came back). */
  attempted: number;
  /** Answered 202 (in the gateway's shared memory). */
  accepted: number;
  /** Answered 200 with sync=1 (in Redis). */
  acknowledged: number;
}

export interface LoadOptions {
  baseUrl: string;
  keys: readonly string[];
  connections: number;
  counter: string;
  /** Share of requests that increment the counter; half of those with sync=1. */
  incrShare: number;
  seed: number;
  /** Per-request client timeout. */
  timeoutMs: number;
}

const TRACE_LENGTH = 1 << 20;

export class SoakLoad {
  readonly #o: LoadOptions;
  readonly #agent: http.Agent;
  readonly #minutes: MinuteStats[] = [];
  readonly #startedAt = performance.now();
  readonly tally: CounterTally = { attempted: 0, accepted: 0, acknowledged: 0 };
  #stopped = false;
  #loops: Promise<void>[] = [];

  constructor(o: LoadOptions) {
    this.#o = o;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  }

  start(): void {
    const trace = zipfTrace(this.#o.keys.length, 0.99, TRACE_LENGTH, prng(this.#o.seed)).requests;
    this.#loops = Array.from({ length: this.#o.connections }, (_, i) =>
      this.#loop(trace, prng(this.#o.seed + 1 + i), (i * 7919) % TRACE_LENGTH),
    );
  }

  async stop(): Promise<MinuteStats[]> {
    this.#stopped = true;
    await Promise.all(this.#loops);
    this.#agent.destroy();
    return this.#minutes;
  }

  /** The stats of the minute now running (for live progress). */
  current(): MinuteStats {
    return this.#bucket();
  }

  #bucket(): MinuteStats {
    const minute = Math.floor((performance.now() - this.#startedAt) / 60_000);
    let b = this.#minutes[minute];
    if (b === undefined) {
      b = { minute, requests: 0, statuses: {}, errors: {}, latenciesMs: [], cache: {} };
      this.#minutes[minute] = b;
    }
    return b;
  }

  async #loop(trace: Uint32Array, rng: Prng, start: number): Promise<void> {
    let i = start;
    while (!this.#stopped) {
      const o = this.#o;
      const draw = rng.float();
      if (draw < o.incrShare) {
        const sync = draw < o.incrShare / 2;
        this.tally.attempted++;
        const r = await this.#request(
          'POST',
          `/v1/counters/${encodeURIComponent(o.counter)}/incr${sync ? '?sync=1' : ''}`,
        );
        if (r.status === 200 && sync) this.tally.acknowledged++;
        else if (r.status === 202) this.tally.accepted++;
      } else {
        const key = o.keys[trace[i++ % trace.length]];
        await this.#request('GET', `/v1/kv/${encodeURIComponent(key)}`);
      }
    }
  }

  #request(method: string, path: string): Promise<{ status: number }> {
    const started = performance.now();
    return new Promise((resolve) => {
      let settled = false;
      const done = (status: number, kind?: string, cache?: string) => {
        if (settled) return;
        settled = true;
        const b = this.#bucket();
        b.requests++;
        const label = status === 0 ? 'error' : String(status);
        b.statuses[label] = (b.statuses[label] ?? 0) + 1;
        if (kind !== undefined) b.errors[kind] = (b.errors[kind] ?? 0) + 1;
        if (cache !== undefined) b.cache[cache] = (b.cache[cache] ?? 0) + 1;
        b.latenciesMs.push(performance.now() - started);
        resolve({ status });
      };
      const req = http.request(
        `${this.#o.baseUrl}${path}`,
        { method, agent: this.#agent, timeout: this.#o.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            let kind: string | undefined;
            if (status >= 400) {
              try {
                kind = JSON.parse(Buffer.concat(chunks).toString()).error?.code ?? `http ${status}`;
              } catch {
                kind = `http ${status}`;
              }
            }
            const cache =
              status === 200 ? (res.headers['x-cache'] as string | undefined) : undefined;
            done(status, kind, cache);
          });
          res.on('error', (e: NodeJS.ErrnoException) => done(0, e.code ?? 'response error'));
        },
      );
      req.on('timeout', () => {
        req.destroy();
        done(0, 'client timeout');
      });
      req.on('error', (e: NodeJS.ErrnoException) => done(0, e.code ?? e.message));
      req.end();
    });
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}
