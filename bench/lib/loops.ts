/**
 * The measured loops, shared by the main thread and the worker fixture so that the
 * 1-thread and 2-thread figures run the same code.
 *
 * Every loop has the same shape: read the next index from a precomputed pseudo-random
 * order (wrapping with a mask), build the key, do one operation, add something from its
 * result to an accumulator. "Fresh key" loops build the key as an HTTP handler would,
 * `url.slice(URL_PREFIX.length)`, which yields a new string (a V8 sliced string) every
 * time, so no hash cached in a string object survives from one lookup to the next.
 *
 * The loops are written out one per contender on purpose: a shared loop taking the
 * operation as a callback would make its call site polymorphic and charge each
 * contender for the others' inline caches.
 */

import type { LRUCache } from 'lru-cache';
import type { L1SetOptions, L1Table, L1Writer } from '../../src/l1/index.ts';
import { URL_PREFIX } from './keys.ts';
import type { Loop } from './measure.ts';

const CUT = URL_PREFIX.length;

/**
 * A check for get loops: every value has `valueBytes` bytes, so the accumulated length
 * of a round proves that every lookup hit.
 */
export const expectHits =
  (valueBytes: number) =>
  (acc: number, ops: number): void => {
    if (acc !== ops * valueBytes) {
      throw new Error(`a get missed (${acc} bytes !== ${ops} × ${valueBytes})`);
    }
  };

export function l1GetFresh(table: L1Table, urls: readonly string[], order: Uint32Array): Loop {
  const mask = order.length - 1;
  let p = 0;
  return (ops) => {
    let acc = 0;
    for (let i = 0; i < ops; i++) {
      const e = table.get(urls[order[p]].slice(CUT));
      p = (p + 1) & mask;
      acc += e === undefined ? 0 : e.value.length;
    }
    return acc;
  };
}

export function mapGetCached(
  map: Map<string, Buffer>,
  keys: readonly string[],
  order: Uint32Array,
): Loop {
  const mask = order.length - 1;
  let p = 0;
  return (ops) => {
    let acc = 0;
    for (let i = 0; i < ops; i++) {
      const v = map.get(keys[order[p]]);
      p = (p + 1) & mask;
      acc += v === undefined ? 0 : v.length;
    }
    return acc;
  };
}

export function mapGetFresh(
  map: Map<string, Buffer>,
  urls: readonly string[],
  order: Uint32Array,
): Loop {
  const mask = order.length - 1;
  let p = 0;
  return (ops) => {
    let acc = 0;
    for (let i = 0; i < ops; i++) {
      const v = map.get(urls[order[p]].slice(CUT));
      p = (p + 1) & mask;
      acc += v === undefined ? 0 : v.length;
    }
    return acc;
  };
}

export function lruGetFresh(
  lru: LRUCache<string, Buffer>,
  urls: readonly string[],
  order: Uint32Array,
): Loop {
  const mask = order.length - 1;
  let p = 0;
  return (ops) => {
    let acc = 0;
    for (let i = 0; i < ops; i++) {
      const v = lru.get(urls[order[p]].slice(CUT));
      p = (p + 1) & mask;
      acc += v === undefined ? 0 : v.length;
    }
    return acc;
  };
}

/** Writer sets; the accumulator counts stored (non-refused) sets. */
export function l1SetFresh(
  writer: L1Writer,
  urls: readonly string[],
  order: Uint32Array,
  values: readonly Buffer[],
  options: L1SetOptions,
): Loop {
  const mask = order.length - 1;
  const valueMask = values.length - 1;
  let p = 0;
  return (ops) => {
    let acc = 0;
    for (let i = 0; i < ops; i++) {
      const version = writer.set(urls[order[p]].slice(CUT), values[p & valueMask], options);
      p = (p + 1) & mask;
      acc += version > 0 ? 1 : 0;
    }
    return acc;
  };
}

export function mapSetFresh(
  map: Map<string, Buffer>,
  urls: readonly string[],
  order: Uint32Array,
  values: readonly Buffer[],
): Loop {
  const mask = order.length - 1;
  const valueMask = values.length - 1;
  let p = 0;
  return (ops) => {
    let acc = 0;
    for (let i = 0; i < ops; i++) {
      map.set(urls[order[p]].slice(CUT), values[p & valueMask]);
      p = (p + 1) & mask;
      acc += 1;
    }
    return acc;
  };
}

export function lruSetFresh(
  lru: LRUCache<string, Buffer>,
  urls: readonly string[],
  order: Uint32Array,
  values: readonly Buffer[],
): Loop {
  const mask = order.length - 1;
  const valueMask = values.length - 1;
  let p = 0;
  return (ops) => {
    let acc = 0;
    for (let i = 0; i < ops; i++) {
      lru.set(urls[order[p]].slice(CUT), values[p & valueMask]);
      p = (p + 1) & mask;
      acc += 1;
    }
    return acc;
  };
}
