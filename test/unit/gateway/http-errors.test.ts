import { describe, expect, it } from 'vitest';
import { describeError, STATUS_OF } from '../../../src/gateway/http-errors.ts';
import { ErrorCodes, HotshieldError, L1Error } from '../../../src/index.ts';

describe('HTTP status of each error code', () => {
  it('maps every code a request can meet to one status; Redis trouble is a 503', () => {
    for (const code of [
      'HS_ERR_L2_TIMEOUT',
      'HS_ERR_L2_UNAVAILABLE',
      'HS_ERR_TIMEOUT',
      'HS_ERR_QUEUE_FULL',
      'HS_ERR_CLOSED',
    ] as const) {
      expect(describeError(new HotshieldError(code, 'x')).status).toBe(503);
    }
    for (const code of ['HS_ERR_KEY_EMPTY', 'HS_ERR_KEY_TOO_LONG', 'HS_ERR_KEY_INVALID'] as const) {
      expect(describeError(new L1Error(code, 'x')).status).toBe(400);
    }
    expect(describeError(new L1Error('HS_ERR_VALUE_TOO_LARGE', 'x')).status).toBe(413);
    for (const code of Object.keys(STATUS_OF)) expect(STATUS_OF[code]).toBeGreaterThanOrEqual(400);
    expect(Object.keys(ErrorCodes).length).toBeGreaterThan(0);
  });

  it('anything unexpected is a 500 that says nothing of the inside', () => {
    expect(describeError(new Error('secret path /etc/x'))).toEqual({
      status: 500,
      code: 'HS_ERR_INTERNAL',
      message: 'internal error',
    });
    expect(describeError(undefined)).toMatchObject({ status: 500 });
  });
});
