/**
 * Typed-array views over one L1 buffer, built once per thread when it attaches (creating
 * views per operation costs an allocation each; ShareableMap's lock did exactly that).
 */

import {
  COUNTER_CELL_BYTES,
  epochOf,
  H,
  HEADER_BYTES,
  HEAT,
  HEAT_NODES_OFFSET,
  HEAT_RECORDS_OFFSET,
  HEAT_SKETCH_OFFSET,
  HEAT_SLOT_MAP_OFFSET,
  HEAT_TAGS_OFFSET,
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
  /** The heat region (heat.ts); undefined with hotKeys off. */
  readonly heat: HeatViews | undefined;
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

export interface HeatViews {
  readonly header: Int32Array;
  readonly sketch: Int32Array;
  readonly slotMap: Uint8Array;
  readonly nodes: Int32Array;
  readonly nodesU8: Uint8Array;
  readonly tags: Int32Array;
  readonly records: Int32Array;
  readonly recordsU8: Uint8Array;
}

function heatViews(sab: SharedArrayBuffer, at: number): HeatViews {
  const nodeBytes = HEAT.NODES * HEAT.NODE_BYTES;
  const recordBytes = HEAT.RECORDS * HEAT.RECORD_BYTES;
  return {
    header: new Int32Array(sab, at, HEAT.HEADER_BYTES / 4),
    sketch: new Int32Array(sab, at + HEAT_SKETCH_OFFSET, HEAT.SKETCH_ROWS * HEAT.SKETCH_WIDTH),
    slotMap: new Uint8Array(sab, at + HEAT_SLOT_MAP_OFFSET, HEAT.SLOTS),
    nodes: new Int32Array(sab, at + HEAT_NODES_OFFSET, nodeBytes / 4),
    nodesU8: new Uint8Array(sab, at + HEAT_NODES_OFFSET, nodeBytes),
    tags: new Int32Array(sab, at + HEAT_TAGS_OFFSET, HEAT.RECORDS),
    records: new Int32Array(sab, at + HEAT_RECORDS_OFFSET, recordBytes / 4),
    recordsU8: new Uint8Array(sab, at + HEAT_RECORDS_OFFSET, recordBytes),
  };
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
    heat: layout.heatBytes === 0 ? undefined : heatViews(sab, layout.heatOffset),
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
