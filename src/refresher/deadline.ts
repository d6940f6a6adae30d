/**
 * Every Redis call gets its own deadline. ioredis' `commandTimeout` starts only once a
 * command is written to a node connection, so a command parked in the cluster's offline
 * queue or behind a redirect loop could otherwise wait for ever (ioredis#1604).
 */

import { HotshieldError } from '../errors.ts';

/** Settle with `promise`, or reject with HS_ERR_L2_TIMEOUT after `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new HotshieldError(
            'HS_ERR_L2_TIMEOUT',
            `${what} took longer than ${ms} ms (l2TimeoutMs)`,
          ),
        ),
      ms,
    );
  });
  // The losing promise may still reject later (its command finishes or fails after the
  // deadline): that outcome is deliberately dropped, not left unhandled.
  promise.catch(() => {});
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
