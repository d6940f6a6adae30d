/**
 * hotshield's typed errors. Every error the library throws or rejects with carries a
 * stable `code`; codes are the contract (they survive `postMessage`, classes do not).
 * The L1 has its own class and catalogue (src/l1/errors.ts, because l1 imports nothing
 * of the project); `ErrorCodes` below is the one list of both, documented in README.
 */

import { L1ErrorCodes } from './l1/errors.ts';

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

export const ErrorCodes = { ...L1ErrorCodes, ...TierErrorCodes } as const;

export type TierErrorCode = keyof typeof TierErrorCodes;
export type ErrorCode = keyof typeof ErrorCodes;

const kHotshieldError = Symbol.for('hotshield.error.HotshieldError');

export class HotshieldError extends Error {
  readonly code: TierErrorCode;

  constructor(code: TierErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HotshieldError';
    this.code = code;
    Object.defineProperty(this, kHotshieldError, { value: true });
  }

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
