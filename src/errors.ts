/**
 * hotshield's error catalogue: every code any part of hotshield throws, rejects with or
 * answers over HTTP. A code is a stable string, the contract callers match on (never the
 * message). A class does not survive `postMessage` or structured clone (a clone keeps
 * `message` and `name` only), so where an error crosses threads the protocol sends its
 * code as a field of its own and the receiver rebuilds the error (tier/refresher-link.ts).
 *
 * The L1 keeps its own catalogue of the same shape (l1/errors.ts: l1 imports nothing of
 * the project); `ErrorCodes` is all of them. Every code is documented in the README's
 * error table with its HTTP status, and the gateway's status map
 * (gateway/http-errors.ts) must name every code (test/unit/errors.test.ts checks both).
 */

import { type L1ErrorCode, L1ErrorCodes } from './l1/errors.ts';

/** The tier's codes: createTier, attachTier, Tier and Counter. */
export const TierErrorCodes = {
  /** An option is invalid; the message names it and says what it accepts. */
  HS_ERR_OPTION: 'HS_ERR_OPTION',
  /** A Redis call did not answer within its deadline (l2Timeout). */
  HS_ERR_L2_TIMEOUT: 'HS_ERR_L2_TIMEOUT',
  /** Redis refused or failed the call (connection closed, cluster down, circuit open…). */
  HS_ERR_L2_UNAVAILABLE: 'HS_ERR_L2_UNAVAILABLE',
  /** A bound was reached (keys being fetched, or callers waiting in one thread). */
  HS_ERR_QUEUE_FULL: 'HS_ERR_QUEUE_FULL',
  /** The caller waited longer than its timeout for a value to arrive. */
  HS_ERR_TIMEOUT: 'HS_ERR_TIMEOUT',
  /** The loader threw or rejected; `cause` holds its error in the thread that ran it. */
  HS_ERR_LOADER_FAILED: 'HS_ERR_LOADER_FAILED',
  /** The loader did not settle within loaderTimeout. */
  HS_ERR_LOADER_TIMEOUT: 'HS_ERR_LOADER_TIMEOUT',
  /** A value could not be encoded or decoded with the codec. */
  HS_ERR_CODEC: 'HS_ERR_CODEC',
  /** An entry was stored with another codec than the one this reader decodes with. */
  HS_ERR_CODEC_MISMATCH: 'HS_ERR_CODEC_MISMATCH',
  /** The tier (or this thread's attachment) is closed. */
  HS_ERR_CLOSED: 'HS_ERR_CLOSED',
  /** attachTier was given something that is not a tier handle. */
  HS_ERR_HANDLE: 'HS_ERR_HANDLE',
  /** A counter name is empty, too long, or holds `{`, `}` or hotshield's internal mark. */
  HS_ERR_COUNTER_NAME: 'HS_ERR_COUNTER_NAME',
  /**
   * An increment made with `{ sync: true }` is recorded but Redis did not acknowledge its
   * flush within the timeout. It will still be flushed: retrying would count it twice.
   */
  HS_ERR_UNCONFIRMED: 'HS_ERR_UNCONFIRMED',
  /**
   * close() could not get every counter increment acknowledged; the message lists what
   * was never sent (lost) and what was sent without an answer (Redis may yet apply it).
   */
  HS_ERR_UNFLUSHED: 'HS_ERR_UNFLUSHED',
} as const;

/** The gateway's own refusals, in HTTP answers only. */
export const GatewayErrorCodes = {
  /** A malformed request: a bad query parameter, a body cut off, a content type too long. */
  HS_ERR_BAD_REQUEST: 'HS_ERR_BAD_REQUEST',
  /** A write without the configured bearer token. */
  HS_ERR_UNAUTHORIZED: 'HS_ERR_UNAUTHORIZED',
  /** A write from a non-loopback client when no token is configured. */
  HS_ERR_FORBIDDEN: 'HS_ERR_FORBIDDEN',
  /** No such key. */
  HS_ERR_NOT_FOUND: 'HS_ERR_NOT_FOUND',
  /** No such route. */
  HS_ERR_NO_ROUTE: 'HS_ERR_NO_ROUTE',
  /** The route does not take this method (the answer has `Allow`). */
  HS_ERR_METHOD: 'HS_ERR_METHOD',
  /** A key or counter name that is not valid percent-encoded UTF-8. */
  HS_ERR_KEY_ENCODING: 'HS_ERR_KEY_ENCODING',
  /** A key holding hotshield's internal mark (`:__hotshield`). */
  HS_ERR_KEY_RESERVED: 'HS_ERR_KEY_RESERVED',
  /** Anything unexpected; the answer says nothing of the inside (the log has it). */
  HS_ERR_INTERNAL: 'HS_ERR_INTERNAL',
} as const;

/** The local Redis Cluster launcher's (src/dev/: development, tests, benchmarks). */
export const DevErrorCodes = {
  /** No redis-server to run (install Redis 7, or pass redisServerPath). */
  HS_ERR_REDIS_SERVER_MISSING: 'HS_ERR_REDIS_SERVER_MISSING',
  /** An option of startRedisCluster is invalid; the message names it. */
  HS_ERR_INVALID_CLUSTER_OPTION: 'HS_ERR_INVALID_CLUSTER_OPTION',
  /** A redis-server did not start (its log's tail is in the message). */
  HS_ERR_REDIS_NODE_START: 'HS_ERR_REDIS_NODE_START',
  /** Another process took a node's port before redis-server bound it (thrown after the last retry). */
  HS_ERR_REDIS_PORT_TAKEN: 'HS_ERR_REDIS_PORT_TAKEN',
  /** The nodes started but did not agree on a healthy cluster in time. */
  HS_ERR_CLUSTER_NOT_READY: 'HS_ERR_CLUSTER_NOT_READY',
} as const;

export const ErrorCodes = {
  ...L1ErrorCodes,
  ...TierErrorCodes,
  ...GatewayErrorCodes,
  ...DevErrorCodes,
} as const;

export type TierErrorCode = keyof typeof TierErrorCodes;
export type GatewayErrorCode = keyof typeof GatewayErrorCodes;
export type DevErrorCode = keyof typeof DevErrorCodes;
export type ErrorCode = keyof typeof ErrorCodes;
/** The codes of HotshieldError: all but the L1's, which are L1Error's. */
export type HotshieldErrorCode = Exclude<ErrorCode, L1ErrorCode>;

const kHotshieldError = Symbol.for('hotshield.error.HotshieldError');

export class HotshieldError extends Error {
  readonly code: HotshieldErrorCode;

  constructor(code: HotshieldErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HotshieldError';
    this.code = code;
    Object.defineProperty(this, kHotshieldError, { value: true });
  }

  // Two copies of this module (the sources and a build, say) must still recognise each
  // other's errors.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[kHotshieldError] === true
    );
  }
}

/** Is `code` one of the tier's codes (as received in a message from another thread)? */
export function isTierErrorCode(code: unknown): code is TierErrorCode {
  return typeof code === 'string' && Object.hasOwn(TierErrorCodes, code);
}

/** An invalid option; `message` names it and says what it accepts. */
export function optionError(message: string): HotshieldError {
  return new HotshieldError('HS_ERR_OPTION', message);
}

/** A call on a tier (or its refresher) that was closed. */
export function closedError(): HotshieldError {
  return new HotshieldError('HS_ERR_CLOSED', 'the tier is closed');
}
