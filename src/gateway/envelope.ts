/**
 * How the gateway keeps a value's content type with the value in Redis: values written
 * through the gateway with a content type other than application/octet-stream are
 * stored as MAGIC · length · content-type · body; everything else — above all values
 * other applications wrote — is the body itself, served byte-for-byte as
 * application/octet-stream. One key, one GET, and the type travels to every gateway.
 *
 * A body that happens to start with MAGIC is stored wrapped (as octet-stream), so it
 * can never be mistaken for an envelope.
 */

const MAGIC = Buffer.from([0x00, 0x68, 0x73, 0x63, 0x74, 0x01]); // "\0hsct\x01"
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
export const MAX_CONTENT_TYPE_BYTES = 255;

export interface Unwrapped {
  contentType: string;
  body: Buffer;
}

function startsWithMagic(bytes: Uint8Array): boolean {
  if (bytes.length < MAGIC.length) return false;
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) return false;
  return true;
}

/** The bytes to store for `body` served as `contentType` (≤ 255 bytes of ASCII). */
export function wrap(contentType: string | undefined, body: Buffer): Buffer {
  const type = contentType === undefined || contentType === '' ? DEFAULT_CONTENT_TYPE : contentType;
  if (type === DEFAULT_CONTENT_TYPE && !startsWithMagic(body)) return body;
  const typeBytes = Buffer.from(type, 'latin1');
  return Buffer.concat([MAGIC, Buffer.from([typeBytes.length]), typeBytes, body]);
}

/** Characters an HTTP header value may hold (Node refuses anything else in writeHead). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]+$/;

/**
 * The content type and body of stored bytes (the body is a view, not a copy). Bytes that
 * only look like an envelope (another application's value, or a type no HTTP header can
 * carry) are served as they are, as application/octet-stream.
 */
export function unwrap(bytes: Buffer): Unwrapped {
  if (startsWithMagic(bytes) && bytes.length > MAGIC.length) {
    const len = bytes[MAGIC.length];
    const start = MAGIC.length + 1;
    if (start + len <= bytes.length) {
      const contentType = bytes.toString('latin1', start, start + len);
      if (HEADER_VALUE.test(contentType)) return { contentType, body: bytes.subarray(start + len) };
    }
  }
  return { contentType: DEFAULT_CONTENT_TYPE, body: bytes };
}
