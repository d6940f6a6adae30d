/**
 * Request bodies. A request is acted on only once it has arrived whole: a body that the
 * client breaks off or that Node's parser refuses midway must leave nothing done (the
 * client is answered 400, or nothing, and may retry). A body that is refused (413, or any
 * error before it was read) is not read to the end, and its connection closes after the
 * reply, lingering so the reply is not lost to a reset.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { HttpError } from './http-errors.ts';

/**
 * The request body, up to `limit` bytes. Over it, the promise rejects (413) but the
 * request is not destroyed: that would reset the connection before the 413 is sent. What
 * the client still sends is dropped (see closeAfterReply).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError('HS_ERR_VALUE_TOO_LARGE', `the body is over ${limit} bytes (--max-value-bytes)`);
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error?: HttpError) => {
      req.off('data', onData).off('end', onEnd).off('close', onCutOff).off('error', onCutOff);
      if (error === undefined) resolve(Buffer.concat(chunks, size));
      else reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) done(tooLarge());
      else chunks.push(chunk);
    };
    const onEnd = () => done();
    // The client went away or broke the framing mid-body (Node's parser answers that
    // itself): the client's doing, not a failure to log and count as a 500.
    const onCutOff = () =>
      done(new HttpError('HS_ERR_BAD_REQUEST', 'the request body was cut off'));
    req.on('data', onData).once('end', onEnd).once('close', onCutOff).once('error', onCutOff);
  });
}

/** How long the connection of a refused upload is still read (and dropped) after the reply. */
const LINGER_MS = 2000;

/**
 * Close the connection of a request whose body was not read, after its reply: the body
 * must not be parsed as the next request, and the reply says `connection: close`. The
 * close lingers (RFC 9112 §9.6): half-close, keep reading and dropping what the client
 * still sends, close for good after LINGER_MS. Closing at once (Node's destroySoon after a
 * `connection: close` reply) left the client's bytes unread; the kernel answered them with
 * a reset, which destroyed the 413 before the client read it about half the time.
 */
export function closeAfterReply(req: IncomingMessage, res: ServerResponse): void {
  // Taken now: by 'finish' Node may have detached the socket from req (null there threw in
  // the listener and killed the HTTP thread).
  const socket: Socket | null = req.socket;
  if (socket === null) return;
  if (!res.headersSent) res.setHeader('connection', 'close');
  // Node calls destroySoon() after a `connection: close` reply; ours lingers first.
  socket.destroySoon = () => {
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
  req.resume();
  res.once('finish', () => socket.destroySoon());
}

/**
 * Resolves once the whole request has arrived (its body, if any, dropped): for routes that
 * take no body but act, so that a request whose body goes wrong is not acted on.
 */
export async function wholeRequest(req: IncomingMessage, limit: number): Promise<void> {
  // Without a length or a chunked body, a request has no body: it is whole already.
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined)
    return;
  await readBody(req, limit);
}
