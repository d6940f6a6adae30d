/**
 * Typed-array views over one L1 buffer, built once per thread when it attaches (creating
 * views per operation costs an allocation each; ShareableMap's lock did exactly that).
 */

import {
  COUNTER_CELL_BYTES,
  epochOf,
  H,
  HEADER_BYTES,
  type Layout,
  REGISTRY_LINE_WORDS,
  SLOT_WORDS,
} from './layout.ts';

export interface Views {
  readonly sab: SharedArrayBuffer;
  readonly layout: Layout;
  readonly header: Int32Array;
  readonly registry: Int32Array;
  readonly counters32: Int32Array;
  readonly counters64: BigInt64Array;
  readonly countersU8: Uint8Array;
  readonly index: Uint32Array;
  readonly ghost: Uint32Array;
  readonly arenaU8: Uint8Array;
  readonly arenaU32: Uint32Array;
  readonly arenaF64: Float64Array;
  /** A Buffer view of the arena, for its native `copy`; never handed out. */
  readonly arenaBuf: Buffer;
  readonly seed0: number;
  readonly seed1: number;
  readonly epochMs: number;
}

export function makeViews(sab: SharedArrayBuffer, layout: Layout): Views {
  const header = new Int32Array(sab, 0, HEADER_BYTES / 4);
  const countersBytes = layout.maxCounters * COUNTER_CELL_BYTES;
  return {
    sab,
    layout,
    header,
    registry: new Int32Array(sab, layout.registryOffset, layout.maxThreads * REGISTRY_LINE_WORDS),
    counters32: new Int32Array(sab, layout.countersOffset, countersBytes / 4),
    counters64: new BigInt64Array(sab, layout.countersOffset, countersBytes / 8),
    countersU8: new Uint8Array(sab, layout.countersOffset, countersBytes),
    index: new Uint32Array(sab, layout.indexOffset, layout.slotCount * SLOT_WORDS),
    ghost: new Uint32Array(sab, layout.ghostOffset, layout.slotCount),
    arenaU8: new Uint8Array(sab, layout.arenaOffset, layout.arenaBytes),
    arenaU32: new Uint32Array(sab, layout.arenaOffset, layout.arenaBytes / 4),
    arenaF64: new Float64Array(sab, layout.arenaOffset, layout.arenaBytes / 8),
    arenaBuf: Buffer.from(sab, layout.arenaOffset, layout.arenaBytes),
    seed0: header[H.SEED0],
    seed1: header[H.SEED1],
    epochMs: epochOf(sab),
  };
}
