/**
 * The messages between a tier's threads and its refresher, and the flags the refresher
 * stores with each L1 entry.
 *
 * Transport: BroadcastChannels named after the tier, joined by name, so a respawned
 * refresher is reachable again with no hand-over and no message goes through the main
 * thread.
 * - `hotshield:<tier>` (control), every thread and the refresher: a thread says `join`
 *   and `leave`; the refresher says `hello` (it (re)started: join again) and `closed`.
 *   Rare messages only.
 * - `hotshield:<tier>:<client>`, one per attached thread (client), opened by the thread
 *   and, on its `join`, by the refresher, which answers `welcome`: asks go one way,
 *   replies the other. A channel delivers every message to every other instance of its
 *   name (measured here: ~3 µs of CPU per message per instance, listener or not), so a
 *   private channel per client keeps each ask and reply to exactly one receiver.
 *   Nothing posted before the peer has opened its instance is delivered: a thread holds
 *   its asks until `welcome`.
 *
 * Messages cross threads as structured clones and may come from a thread with a bug:
 * the refresher parses everything (`parseAsk`, `parseControl`) and drops what does not
 * fit.
 */

import { HEAT } from '../l1/index.ts';
import type { HotKeysReport } from './hot-report.ts';

/** Which codec produced an entry's bytes; 0 means read from Redis, codec unknown. */
export const CODEC_ID = { unknown: 0, msgpack: 1, raw: 2, utf8: 3 } as const;
export type CodecId = (typeof CODEC_ID)[keyof typeof CODEC_ID];

/**
 * Entry flag bits: the low nibble is the CodecId. ABSENT marks a negative-cache entry
 * (Redis had no such key); GONE additionally says a loader confirmed the origin has none,
 * so callers with a loader accept it too.
 */
export const FLAG_CODEC_MASK = 0xf;
export const FLAG_ABSENT = 0x10;
export const FLAG_GONE = 0x20;

export type Ask =
  /**
   * A caller missed L1 (or found it stale); `load`: it has a loader for a full miss.
   * `seq`: the sender's count of its fetches, returned in the reply that answers this one.
   */
  | { t: 'fetch'; key: string; from: string; load: boolean; seq?: number }
  /** The lessee's loader produced a value. */
  | { t: 'store'; key: string; from: string; value: Uint8Array; flags: number; ttlMs: number }
  /** The lessee's loader says the key does not exist at the origin either. */
  | { t: 'gone'; key: string; from: string }
  /** The sender will not load the key after all (its callers left, it is closing). */
  | { t: 'release'; key: string; from: string }
  /** The lessee's loader failed; the code is HS_ERR_LOADER_FAILED or _TIMEOUT. */
  | { t: 'loadFailed'; key: string; from: string; code: string; message: string }
  | {
      t: 'set';
      id: number;
      key: string;
      from: string;
      value: Uint8Array;
      flags: number;
      ttlMs: number;
    }
  | { t: 'delete'; id: number; key: string; from: string }
  /** The fleet's hot set (hot-fleet.ts), `limit` keys and counters. */
  | { t: 'hot'; id: number; from: string; limit: number };

export type DoneStatus =
  /** The value is in `value` (and in L1, unless L1 could not take it or it was answered from L1). */
  | 'ok'
  /** Redis has no such key; callers without a loader get undefined. */
  | 'absent'
  /** Neither Redis nor the loader has it: everyone gets undefined. */
  | 'gone'
  /** Failed with `code`. */
  | 'error'
  /** Redis has no value (or failed: `code`) and `to` should run its loader. */
  | 'lease';

/** On the control channel. */
export type Control =
  | { t: 'join'; from: string }
  | { t: 'leave'; from: string }
  /** A refresher (re)started: threads join again and re-send what they still wait for. */
  | { t: 'hello'; generation: number }
  /** The tier was closed: everything still waiting fails with HS_ERR_CLOSED. */
  | { t: 'closed' };

/** From the refresher to one client, on its private channel. */
export type Reply =
  | {
      t: 'done';
      key: string;
      status: DoneStatus;
      to?: string;
      code?: string;
      message?: string;
      value?: Uint8Array;
      flags?: number;
      /** The L1 entry now holding `value` (absent or 0: not stored, say superseded). */
      version?: number;
      /**
       * The `seq` of the recipient's last fetch this answers: a thread's caller that
       * asked later (after the key changed) must not take the answer to an earlier ask.
       */
      seq?: number;
    }
  | { t: 'ack'; id: number; to: string; code?: string; message?: string }
  /** The answer to a `hot` ask: the merged report, or why not (`code`). */
  | { t: 'hot'; id: number; to: string; report?: HotKeysReport; code?: string; message?: string }
  /** The refresher listens on this client's channel now: asks may flow. */
  | { t: 'welcome' };

export function controlChannel(tierId: string): string {
  return `hotshield:${tierId}`;
}

export function clientChannel(tierId: string, clientId: string): string {
  return `hotshield:${tierId}:${clientId}`;
}

/** A join or leave from a thread, or undefined. */
export function parseControl(data: unknown): Extract<Control, { t: 'join' | 'leave' }> | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const m = data as Record<string, unknown>;
  if ((m.t !== 'join' && m.t !== 'leave') || typeof m.from !== 'string' || m.from.length > 64)
    return undefined;
  return { t: m.t, from: m.from };
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** A key L1 and Redis can take: non-empty, well-formed, at most `maxKeyBytes` of UTF-8. */
function isKey(v: unknown, maxKeyBytes: number): v is string {
  return (
    typeof v === 'string' &&
    v.length > 0 &&
    v.length <= maxKeyBytes &&
    v.isWellFormed() &&
    Buffer.byteLength(v) <= maxKeyBytes
  );
}

/** The ask in `data`, or undefined if it is not a well-formed one. */
export function parseAsk(data: unknown, maxKeyBytes: number): Ask | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const m = data as Record<string, unknown>;
  if (m.t === 'hot')
    return isStr(m.from) && isInt(m.id) && isInt(m.limit) && m.limit >= 1 && m.limit <= HEAT.RECORDS
      ? { t: 'hot', id: m.id, from: m.from, limit: m.limit }
      : undefined;
  if (!isKey(m.key, maxKeyBytes) || !isStr(m.from)) return undefined;
  switch (m.t) {
    case 'fetch':
      return typeof m.load === 'boolean' && (m.seq === undefined || isInt(m.seq))
        ? (m as Ask)
        : undefined;
    case 'store':
    case 'set':
      if (!(m.value instanceof Uint8Array) || !isInt(m.flags) || !isInt(m.ttlMs)) return undefined;
      return m.t === 'store' || isInt(m.id) ? (m as Ask) : undefined;
    case 'gone':
    case 'release':
      return m as Ask;
    case 'loadFailed':
      return isStr(m.code) && isStr(m.message) ? (m as Ask) : undefined;
    case 'delete':
      return isInt(m.id) ? (m as Ask) : undefined;
    default:
      return undefined;
  }
}
