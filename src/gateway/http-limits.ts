/**
 * Limits for every connection of an HTTP thread: Node's defaults, stated and tightened,
 * and one of ours (maxPipelined). Its own module so that tests and docs can import it
 * outside an HTTP thread.
 */
export const HTTP_LIMITS = {
  /** Whole request headers must arrive within this (slowloris). */
  headersTimeout: 10_000,
  /** A whole request (headers and body) must arrive within this. */
  requestTimeout: 30_000,
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeout: 5_000,
  /** Largest request head, in bytes (431 beyond). */
  maxHeaderSize: 16 * 1024,
  /**
   * Requests served on one connection before it is closed after its reply (spreads load
   * after a scale-out; http-server.ts).
   */
  maxRequestsPerSocket: 10_000,
  /** How often the two timeouts above are checked (they fire up to this much late). */
  checkingInterval: 1_000,
  /**
   * Replies one connection may have outstanding (pipelining; deeper, the connection is
   * closed). Node parses every request of a read at once: without a bound, a client that
   * sends 40-byte GETs of a large value and never reads has us hold every reply.
   */
  maxPipelined: 32,
} as const;
