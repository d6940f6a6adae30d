/**
 * Who may write. With a token configured, writes need `Authorization: Bearer <token>`,
 * compared in constant time (both sides hashed first, so not even the length leaks).
 * Without one, only loopback clients may write, and the gateway says so at start.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-errors.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}

export function makeWriteGuard(token: string | undefined): (req: IncomingMessage) => void {
  if (token === undefined) {
    return (req) => {
      if (!isLoopback(req.socket.remoteAddress)) {
        throw new HttpError(
          'HS_ERR_FORBIDDEN',
          'writes are allowed from loopback only (no --token configured)',
        );
      }
    };
  }
  const expected = digest(`Bearer ${token}`);
  return (req) => {
    const given = req.headers.authorization;
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      throw new HttpError('HS_ERR_UNAUTHORIZED', 'writes need a valid bearer token', {
        'www-authenticate': 'Bearer',
      });
    }
  };
}
