/**
 * Every Redis call gets its own deadline. ioredis' `commandTimeout` starts only once a
 * command is written to a node connection, so a command parked in the cluster's offline
 * queue or behind a redirect loop could otherwise wait for ever (ioredis#1604). The same
 * race bounds a loader (tier.ts).
 */

import { HotshieldError } from '../errors.ts';

/** Settle with `promise`, or reject with `expired()` after `ms`. */
export function raceTimeout<T>(promise: Promise<T>, ms: number, expired: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(expired()), ms);
  });
  // The losing promise may still reject later (its command finishes or fails after the
  // deadline): that outcome is deliberately dropped, not left unhandled.
  promise.catch(() => {});
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Settle with `promise`, or reject with HS_ERR_L2_TIMEOUT after `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return raceTimeout(
    promise,
    ms,
    () => new HotshieldError('HS_ERR_L2_TIMEOUT', `${what} took longer than ${ms} ms (l2Timeout)`),
  );
}
