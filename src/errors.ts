/**
 * hotshield's typed errors above the L1 (which has its own catalogue in src/l1/errors.ts,
 * because l1 imports nothing of the project). Codes are the contract: they survive
 * `postMessage`, classes do not.
 */

export const ErrorCodes = {
  /** A Redis call did not answer within its deadline. */
  HS_ERR_L2_TIMEOUT: 'HS_ERR_L2_TIMEOUT',
  /** Redis refused or failed the call (connection closed, cluster down, …). */
  HS_ERR_L2_UNAVAILABLE: 'HS_ERR_L2_UNAVAILABLE',
  /** Too many keys are being fetched at once: the bound on in-flight fetches was reached. */
  HS_ERR_QUEUE_FULL: 'HS_ERR_QUEUE_FULL',
  /** An option describing the Redis connection is invalid (the message names it). */
  HS_ERR_REDIS_OPTION: 'HS_ERR_REDIS_OPTION',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

const kHotshieldError = Symbol.for('hotshield.error.HotshieldError');

export class HotshieldError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
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
