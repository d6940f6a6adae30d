/**
 * Typed errors of the L1 table, a catalogue of the same shape as the project's
 * (src/errors.ts merges it into ErrorCodes). Codes are the contract: the tier and the
 * gateway map each code to one behaviour. A structured clone keeps an error's message,
 * not its code or its class: a thread that passes one on sends the code as a field.
 * This module imports nothing, like all of l1.
 */

export const L1ErrorCodes = {
  HS_ERR_L1_OPTION: 'HS_ERR_L1_OPTION',
  HS_ERR_KEY_INVALID: 'HS_ERR_KEY_INVALID',
  HS_ERR_KEY_EMPTY: 'HS_ERR_KEY_EMPTY',
  HS_ERR_KEY_TOO_LONG: 'HS_ERR_KEY_TOO_LONG',
  HS_ERR_VALUE_INVALID: 'HS_ERR_VALUE_INVALID',
  HS_ERR_VALUE_TOO_LARGE: 'HS_ERR_VALUE_TOO_LARGE',
  HS_ERR_COUNTER_DELTA: 'HS_ERR_COUNTER_DELTA',
  HS_ERR_COUNTER_TABLE_FULL: 'HS_ERR_COUNTER_TABLE_FULL',
  HS_ERR_L1_HANDLE: 'HS_ERR_L1_HANDLE',
  HS_ERR_TOO_MANY_THREADS: 'HS_ERR_TOO_MANY_THREADS',
  HS_ERR_WRITER_TAKEN: 'HS_ERR_WRITER_TAKEN',
  HS_ERR_L1_CLOSED: 'HS_ERR_L1_CLOSED',
} as const;

export type L1ErrorCode = keyof typeof L1ErrorCodes;

const kL1Error = Symbol.for('hotshield.error.L1Error');

export class L1Error extends Error {
  readonly code: L1ErrorCode;

  constructor(code: L1ErrorCode, message: string) {
    super(message);
    this.name = 'L1Error';
    this.code = code;
    Object.defineProperty(this, kL1Error, { value: true });
  }

  // Two copies of this module (e.g. one loaded by a worker through another path) must
  // still recognise each other's errors.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[kL1Error] === true
    );
  }
}
