/**
 * Failures of Redis calls as the refresher reports them: every one is a HotshieldError
 * with an L2 code, and some say that the node itself is unwell (which counts against its
 * circuit, breaker.ts) rather than that one key's command was refused.
 */

import { HotshieldError } from '../errors.ts';

/** Any failure of a Redis call as a typed L2 error. */
export function toL2Error(error: unknown): HotshieldError {
  if (error instanceof HotshieldError) return error;
  const message = error instanceof Error ? error.message : String(error);
  // ioredis' per-node commandTimeout can fire before our deadline: it is a timeout too.
  const code = /timed out/i.test(message) ? 'HS_ERR_L2_TIMEOUT' : 'HS_ERR_L2_UNAVAILABLE';
  return new HotshieldError(code, `Redis: ${message}`, { cause: error });
}

/**
 * Does `error` say the node is unwell (timeout, connection lost, cluster down), rather
 * than that this key's command was refused (WRONGTYPE, OOM…)?
 */
export function isNodeFailure(error: HotshieldError): boolean {
  return (
    error.code === 'HS_ERR_L2_TIMEOUT' ||
    /closed|connection is|ECONN|EPIPE|CLUSTERDOWN|MASTERDOWN|LOADING|isn't ready|Too many Cluster redirections/i.test(
      error.message,
    )
  );
}

export function circuitOpen(node: string): HotshieldError {
  return new HotshieldError(
    'HS_ERR_L2_UNAVAILABLE',
    `Redis node ${node} is failing; its circuit is open (breakerCooldown)`,
  );
}

function kindOf(raw: unknown): string {
  if (Array.isArray(raw)) return 'an array';
  if (typeof raw === 'number' || typeof raw === 'bigint') return 'an integer';
  return typeof raw === 'object' ? 'a map' : `a ${typeof raw}`;
}

/** A reply of the wrong shape: a broken or hostile node, which must not reach the codec. */
export function wrongReply(op: string, raw: unknown): HotshieldError {
  return new HotshieldError('HS_ERR_L2_UNAVAILABLE', `Redis: ${op} answered ${kindOf(raw)}`);
}

/** GET's reply: a string (as a Buffer) or nil. */
export function bulkOf(raw: unknown): Buffer | null {
  if (raw === null || Buffer.isBuffer(raw)) return raw;
  throw wrongReply('GET', raw);
}
