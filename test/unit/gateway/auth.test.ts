import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { isLoopback, makeWriteGuard } from '../../../src/gateway/auth.ts';

const req = (remoteAddress: string, authorization?: string) =>
  ({ socket: { remoteAddress }, headers: { authorization } }) as unknown as IncomingMessage;

describe('write guard', () => {
  it('without a token, lets loopback clients write and refuses everyone else with 403', () => {
    const guard = makeWriteGuard(undefined);
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'])
      expect(() => guard(req(a))).not.toThrow();
    for (const a of ['10.0.0.1', '192.168.1.2', '::ffff:10.0.0.1', 'fe80::1', '1.127.0.0']) {
      expect(() => guard(req(a))).toThrow(expect.objectContaining({ code: 'HS_ERR_FORBIDDEN' }));
    }
    expect(isLoopback(undefined)).toBe(false);
  });

  it('with a token, wants exactly `Bearer <token>` from anyone, loopback included', () => {
    const guard = makeWriteGuard('0123456789abcdef');
    expect(() => guard(req('10.0.0.1', 'Bearer 0123456789abcdef'))).not.toThrow();
    for (const h of [
      undefined,
      '',
      'Bearer 0123456789abcdeF',
      'bearer 0123456789abcdef',
      '0123456789abcdef',
      'Bearer 0123456789abcdef ',
    ]) {
      expect(() => guard(req('127.0.0.1', h))).toThrow(
        expect.objectContaining({ code: 'HS_ERR_UNAUTHORIZED' }),
      );
    }
  });
});
