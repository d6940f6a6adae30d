/**
 * The refresher thread (started from workers/refresher.ts by a piscina pool of exactly
 * one worker, tier/refresher-pool.ts): the Refresher starts at once, from the pool's
 * `workerData`, and serves asks over the tier's channels; piscina gives it respawn (a
 * replacement worker starts a Refresher again, which takes over the L1 writer), and its
 * task queue carries the few calls the owning thread makes: `close` (which resolves with
 * the counter increments it could not flush), `metrics` and `status`.
 */

import { sep } from 'node:path';
import type { L1Handle } from '../l1/index.ts';
import type { RefresherConfig } from './config.ts';
import { Control } from './control.ts';
import { Refresher } from './refresher.ts';

export interface RefresherWorkerData {
  l1: L1Handle;
  control: SharedArrayBuffer;
  config: RefresherConfig;
}

export type RefresherTask = { op: 'close' } | { op: 'metrics' } | { op: 'status' };

const IOREDIS_FRAME = `${sep}node_modules${sep}ioredis${sep}`;

/**
 * Did ioredis throw this from its own reply handling? It rethrows a failure there on the
 * next tick, an uncaught exception (ioredis' DataHandler.dispatch): a reply with no
 * command waiting for it (an unsolicited reply, a RESP3 push of null), or a malformed
 * ASK redirect (cluster/util.js, "Invalid node key"). A Redis node can send those at will.
 */
function isIoredisReplyError(error: unknown): boolean {
  const top =
    error instanceof Error ? error.stack?.split('\n').find((l) => l.includes(' at ')) : undefined;
  return top?.includes(IOREDIS_FRAME) === true;
}

/**
 * A socket's own failure (a TLS alert, a reset) that reached no listener: all this
 * thread's sockets are Redis connections, and ioredis can drop its listener before a late
 * TLS alert arrives (seen: "tlsv1 alert decode error" after a refused handshake, which
 * killed the thread). Its connections are reset instead, as for a bad reply.
 */
function isSocketError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    (code.startsWith('ERR_SSL_') ||
      ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED'].includes(code))
  );
}

/** Start this thread's Refresher; returns the pool's task handler. */
export function startRefresher(data: RefresherWorkerData): (t: RefresherTask) => Promise<unknown> {
  const refresher = new Refresher(data.l1, new Control(data.control), data.config);
  // A bad reply must not cost the thread (a respawn loses every flight, and a node that
  // keeps sending them keeps it in a respawn loop): reset the connections instead, as
  // ioredis does for a reply it cannot parse. Anything else is a real bug: die, be respawned.
  process.on('uncaughtException', (error) => {
    if (isIoredisReplyError(error) || isSocketError(error)) {
      refresher.resetL2();
      return;
    }
    // Said before dying: a respawn is otherwise silent but for the generation counter.
    process.stderr.write(
      `hotshield refresher: uncaught exception, respawning: ${error?.stack ?? error}\n`,
    );
    throw error;
  });
  return async (t) => {
    if (t?.op === 'close') return refresher.close();
    if (t?.op === 'metrics') return refresher.metrics();
    if (t?.op === 'status') return refresher.status();
    throw new TypeError(`unknown refresher task ${JSON.stringify(t)}`);
  };
}
