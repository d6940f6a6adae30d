/**
 * The one place that knows where things live in the L1 SharedArrayBuffer. Every other
 * module asks this one for offsets; none has numeric offsets of its own.
 *
 * ```
 * byte 0 ┌──────────────────────────── header (512 B) ───────────────────────────────┐
 *        │ magic │ layoutVersion │ slotCount │ maxLiveEntries │ maxKey │ maxValue │…  │
 *        │ seed0 seed1 (HalfSipHash key)    │ smallRing │ mainRing │ epochMs f64 │ … │
 *   128  │ writerOwner │ stateActive │ versionCounter │ liveEntries │ state A │ B │ …  │
 *        │ … sweepCursor │ registryHigh │ staleBelow (stale-mark.ts)                  │
 *   256  │ writer statistics: u32 lo/hi pairs (inserts, evictions, refused, …)        │
 *   512  ├──────────── reader registry: maxThreads × 64-B lines ──────────────────────┤
 *        │ owner(threadId+1) │ seq (odd = inside a read) │ hits │ stale │ misses │ …   │
 *        ├──────────── budget (l1Bytes) starts here ─────────────────────────────────┤
 *        │ counter cells: maxCounters × 256 B (see C below)                          │
 *        │ heat: 256 KiB when hotKeys is on (see HEAT below; heat.ts)                 │
 *        │ index: slotCount × [tag u32 │ ptr u32]   (ptr = arena offset / 8 + 1)     │
 *        │ ghost: slotCount × u32 hashes of recently evicted keys                    │
 *        │ arena: small ring (10 %) │ main ring (90 %), entries 8-byte aligned        │
 *        └───────────────────────────────────────────────────────────────────────────┘
 * entry: [totalBytes u32│hash│slot│keyLen│valueLen│flags│version│access]
 *        [storedAt f64│softExpiresAt f64│hardExpiresAt f64][key][value][pad to 8]
 * ```
 *
 * Bump LAYOUT_VERSION on any change: a thread attaching to a table of another layout is
 * refused instead of misreading it.
 */

import { L1Error } from './errors.ts';

export const MAGIC = 0x48534c31; // "HSL1"
const LAYOUT_VERSION = 6;

/** Int32 word indexes in the header. */
export const H = {
  MAGIC: 0,
  LAYOUT_VERSION: 1,
  SLOT_COUNT: 2,
  MAX_LIVE_ENTRIES: 3,
  MAX_KEY_BYTES: 4,
  MAX_VALUE_BYTES: 5,
  MAX_THREADS: 6,
  MAX_COUNTERS: 7,
  SEED0: 8,
  SEED1: 9,
  SMALL_RING_BYTES: 10,
  MAIN_RING_BYTES: 11,
  /** Bytes of the heat region (0: hot-key detection off). */
  HEAT_BYTES: 12,
  WRITER_OWNER: 32,
  STATE_ACTIVE: 33,
  VERSION_COUNTER: 34,
  LIVE_ENTRIES: 35,
  STATE_A: 36,
  STATE_B: 42,
  SWEEP_CURSOR: 48,
  /** One past the highest registry line ever claimed: grace periods scan no further. */
  REGISTRY_HIGH: 49,
  /** The stale mark (stale-mark.ts): entries of lower versions are stale; 0: none. */
  STALE_BELOW: 50,
  WRITER_STATS: 64,
} as const;

/** Float64 indexes in the header (written once, before the buffer is shared). */
const HF = {
  EPOCH_MS: 7, // byte 56
  BUDGET_BYTES: 8, // byte 64
} as const;

/** Word offsets inside one writer state record (double-buffered, see writer.ts). */
export const S = {
  SMALL_HEAD: 0,
  SMALL_TAIL: 1,
  SMALL_USED: 2,
  MAIN_HEAD: 3,
  MAIN_TAIL: 4,
  MAIN_USED: 5,
} as const;

/** Writer statistics: each is a u32 lo/hi pair at H.WRITER_STATS + 2 × index. */
export const WRITER_STAT_NAMES = [
  'inserts',
  'updates',
  'evictions',
  'expiredReclaimed',
  'refusedTooLarge',
  'refusedNoSlot',
  'refusedBusy',
  'deletes',
  'promotions',
  'reinsertions',
  'readersRevoked',
  'clears',
  'graceWaits',
] as const;
export type WriterStatName = (typeof WRITER_STAT_NAMES)[number];
export const WS = Object.fromEntries(
  WRITER_STAT_NAMES.map((name, i) => [name, H.WRITER_STATS + 2 * i]),
) as Record<WriterStatName, number>;

export const HEADER_BYTES = 512;

/** Reader registry line: 16 Int32 words = 64 B, one cache line per thread. */
export const REGISTRY_LINE_WORDS = 16;
export const R = {
  OWNER: 0,
  SEQ: 1,
  HITS: 2,
  STALE_HITS: 4,
  MISSES: 6,
  COUNTER_ADDS: 8,
} as const;
export const READER_STAT_NAMES = ['hits', 'staleHits', 'misses', 'counterAdds'] as const;
export type ReaderStatName = (typeof READER_STAT_NAMES)[number];
export const READER_STAT_WORD: Record<ReaderStatName, number> = {
  hits: R.HITS,
  staleHits: R.STALE_HITS,
  misses: R.MISSES,
  counterAdds: R.COUNTER_ADDS,
};

/**
 * Counter cell: 256 B.
 *
 * ```
 * words:  state │ hash │ nameLen │ pendingShard
 * i64:    added │ ops │ pendingSeq │ pendingUpTo │ pendingOps │ ackedUpTo │ ackedOps
 * byte 128: name (UTF-8)
 * ```
 *
 * `added` (sum of every add) and `ops` (number of adds) only grow by Atomics.add from any
 * thread. The rest belongs to the flusher: `pending*` records the one flush in flight
 * (seq 0 = none) so that a respawned flusher re-sends the same one; `acked*` is how much
 * of `added` (and how many adds) Redis has acknowledged.
 */
export const COUNTER_CELL_BYTES = 256;
export const C = {
  STATE_WORD: 0, // Int32 word within the cell
  HASH_WORD: 1,
  NAME_LEN_WORD: 2,
  PENDING_SHARD_WORD: 3,
  // BigInt64 indexes within the cell (byte 16 onwards)
  ADDED_I64: 2,
  OPS_I64: 3,
  PENDING_SEQ_I64: 4,
  PENDING_UPTO_I64: 5,
  PENDING_OPS_I64: 6,
  ACKED_UPTO_I64: 7,
  ACKED_OPS_I64: 8,
  NAME_BYTE: 128,
} as const;
export const MAX_COUNTER_NAME_BYTES = COUNTER_CELL_BYTES - C.NAME_BYTE;
export const COUNTER_STATE = { EMPTY: 0, CLAIMING: 1, READY: 2 } as const;

/**
 * The heat region (heat.ts, heat-keeper.ts): hot-key detection, 256 KiB when on.
 *
 * ```
 * header (256 B) │ sketch: 2 rows × 8192 u32 │ slot → node: 16384 u8 │ nodes: 64 × 128 B
 *                │ tags: 512 u32 │ records: 512 × 256 B
 * ```
 *
 * Offsets are bytes from the region's start. Header words: see HW; a node row and a
 * record are Int32 words (HN, HR), a record's key bytes from HR_KEY_BYTE.
 */
export const HEAT = {
  BYTES: 256 * 1024,
  HEADER_BYTES: 256,
  SKETCH_ROWS: 2,
  SKETCH_WIDTH: 8192,
  SLOTS: 16384,
  NODES: 64,
  NODE_BYTES: 128,
  RECORDS: 512,
  RECORD_BYTES: 256,
  /** A record's probe window: a key's record is one of these many after its hash. */
  PROBE: 8,
} as const;
export const HEAT_SKETCH_OFFSET = HEAT.HEADER_BYTES;
export const HEAT_SLOT_MAP_OFFSET = HEAT_SKETCH_OFFSET + HEAT.SKETCH_ROWS * HEAT.SKETCH_WIDTH * 4;
export const HEAT_NODES_OFFSET = HEAT_SLOT_MAP_OFFSET + HEAT.SLOTS;
export const HEAT_TAGS_OFFSET = HEAT_NODES_OFFSET + HEAT.NODES * HEAT.NODE_BYTES;
export const HEAT_RECORDS_OFFSET = HEAT_TAGS_OFFSET + HEAT.RECORDS * 4;
if (HEAT_RECORDS_OFFSET + HEAT.RECORDS * HEAT.RECORD_BYTES > HEAT.BYTES) {
  throw new Error('the heat region does not fit its budget');
}
/** Heat header words. */
export const HW = {
  /** Sketch estimate from which a key gets a record (the keeper sets it every tick). */
  ADMIT: 0,
  /** Ticks of the keeper so far (0: no keeper has run). */
  TICKS: 1,
} as const;
/**
 * A node row (32 words): readers add to READS and MISSES; the keeper writes the name
 * (under SEQ: odd while it writes) and the window bases, two sets flipped by FLIP.
 */
export const HN = {
  SEQ: 0,
  NAME_LEN: 1,
  READS: 2,
  MISSES: 3,
  FLIP: 4,
  /** Base set s at BASE + s × 3: reads, misses, at (table-clock ms, mod 2^32). */
  BASE: 5,
  /** The name's first bytes (a longer one is kept by its first HEAT_NODE_NAME_BYTES). */
  NAME_WORD: 12,
} as const;
export const HEAT_NODE_NAME_BYTES = HEAT.NODE_BYTES - HN.NAME_WORD * 4;
/**
 * A record (64 words): the key it counts and its cumulative event counts. STATE is
 * `gen << 2 | state`; readers add to the counts; the keeper writes the bases.
 */
export const HR = {
  STATE: 0,
  HASH: 1,
  /** The key's whole length in UTF-8 bytes; STORED_LEN of them are kept (a prefix). */
  KEY_LEN: 2,
  STORED_LEN: 3,
  SLOT: 4,
  CLAIMED_AT: 5,
  /** Hash of the stored bytes: the keeper checks that what it reads is what was claimed. */
  STORED_HASH: 6,
  FLIP: 7,
  /** Base set s at BASE + s × 5: hits, stale, misses, writes, at. */
  BASE: 8,
  /** Counts, one word per HeatKind, from here (a cache line of their own). */
  COUNTS: 20,
} as const;
export const HR_KEY_BYTE = 128;
export const HEAT_KEY_BYTES = HEAT.RECORD_BYTES - HR_KEY_BYTE;
export const RECORD_STATE = { EMPTY: 0, CLAIMING: 1, READY: 2 } as const;
/** What a heat event was: index of its count in a record. */
export const HEAT_KIND = { HIT: 0, STALE: 1, MISS: 2, WRITE: 3 } as const;
export type HeatKind = (typeof HEAT_KIND)[keyof typeof HEAT_KIND];
export const HEAT_KINDS = 4;
/**
 * Counter cells carry the keeper's window bases for their increment rate in bytes 72..127
 * (unused by the counter itself): a flip word and two sets of (ops i64, at i32).
 */
export const C_HEAT = { FLIP_WORD: 18, BASE_OPS_I64: [10, 12], BASE_AT_WORD: [22, 26] } as const;

/** Index slot: two u32 words. Tag 0 = never used (ends a probe); ptr 0 = no entry. */
export const SLOT_WORDS = 2;
export const SLOT_TAG = 0;
export const SLOT_PTR = 1;
export const EMPTY_TAG = 0;
/** A probe sequence never looks at more slots than this: caps CPU under hash flooding. */
export const MAX_PROBE = 32;
export const COUNTER_MAX_PROBE = 64;

/** Entry header, byte offsets from the entry start. */
export const E = {
  TOTAL_BYTES: 0,
  HASH: 4,
  SLOT: 8,
  KEY_LEN: 12,
  VALUE_LEN: 16,
  FLAGS: 20,
  VERSION: 24,
  /** (version << 2 | count): readers bump the S3-FIFO access count here, see table.ts. */
  ACCESS: 28,
  STORED_AT: 32,
  SOFT_EXPIRES_AT: 40,
  HARD_EXPIRES_AT: 48,
  KEY: 56,
} as const;
export const ENTRY_HEADER_BYTES = E.KEY;
export const RING = { SMALL: 0, MAIN: 1 } as const;
export type RingId = (typeof RING)[keyof typeof RING];

/** Access counts saturate here (S3-FIFO's 2-bit frequency). */
export const MAX_ACCESS = 3;

const LIMITS = {
  minBytes: 64 * 1024,
  maxBytes: 0xffff_0000, // ring offsets are u32 byte counts
  maxKeyBytes: 64 * 1024,
  maxThreads: 1024,
} as const;

/** Defaults of createL1's options (the tier's are in src/defaults.ts, which reads these). */
export const L1_DEFAULTS = {
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxThreads: 64,
  maxCounters: 4096,
} as const;

/**
 * The default number of counter cells for a budget: 4096, or fewer for a small budget so
 * that counters take at most 1/64 of it (a 1 MiB table would otherwise give half its
 * bytes to counters), never fewer than 64. Always a power of two.
 */
export function defaultMaxCounters(bytes: number): number {
  const share = Math.max(64, Math.floor(bytes / (COUNTER_CELL_BYTES * 64)));
  return Math.min(L1_DEFAULTS.maxCounters, 2 ** Math.floor(Math.log2(share)));
}

/** Hot-key detection is on by default from this budget up (it takes HEAT.BYTES of it). */
export const HOT_KEYS_MIN_BYTES = 4 * 1024 * 1024;

/** Where everything is, in bytes from the start of the SharedArrayBuffer. */
export interface Layout {
  readonly totalBytes: number;
  readonly budgetBytes: number;
  readonly maxThreads: number;
  readonly maxCounters: number;
  readonly slotCount: number;
  readonly maxLiveEntries: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly registryOffset: number;
  readonly countersOffset: number;
  /** 0 with hotKeys off. */
  readonly heatBytes: number;
  readonly heatOffset: number;
  readonly indexOffset: number;
  readonly ghostOffset: number;
  readonly arenaOffset: number;
  readonly arenaBytes: number;
  readonly smallRingBytes: number;
  readonly mainRingBytes: number;
}

export interface LayoutOptions {
  bytes: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  maxThreads: number;
  maxCounters: number;
  /** Hot-key detection (the heat region, HEAT.BYTES of the budget). */
  hotKeys: boolean;
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;
const alignDown = (n: number, a: number): number => Math.floor(n / a) * a;

export function entryBytes(keyLen: number, valueLen: number): number {
  return align(ENTRY_HEADER_BYTES + keyLen + valueLen, 8);
}

/** Index slots per byte of budget: the index and the ghost table take about 1/8. */
function slotCountFor(rest: number): number {
  const perSlot = SLOT_WORDS * 4 + 4;
  let n = 64;
  while (n * 2 * perSlot <= rest / 8) n *= 2;
  return n;
}

function fail(message: string): never {
  throw new L1Error('HS_ERR_L1_OPTION', message);
}

/** Decide the layout for a new table; throws naming the option that must change. */
export function planLayout(o: LayoutOptions): Layout {
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      fail(`L1 option ${name} must be an integer in [${min}, ${max}] (got ${v})`);
    }
  };
  int('bytes (l1Bytes)', o.bytes, LIMITS.minBytes, LIMITS.maxBytes);
  int('maxKeyBytes', o.maxKeyBytes, 1, LIMITS.maxKeyBytes);
  int('maxValueBytes', o.maxValueBytes, 0, LIMITS.maxBytes);
  int('maxThreads', o.maxThreads, 1, LIMITS.maxThreads);
  int('maxCounters', o.maxCounters, 1, 1 << 24);
  if ((o.maxCounters & (o.maxCounters - 1)) !== 0)
    fail('L1 option maxCounters must be a power of two');

  const registryOffset = HEADER_BYTES;
  const countersOffset = registryOffset + o.maxThreads * REGISTRY_LINE_WORDS * 4;
  const countersBytes = o.maxCounters * COUNTER_CELL_BYTES;
  const heatBytes = o.hotKeys ? HEAT.BYTES : 0;
  const rest = o.bytes - countersBytes - heatBytes;
  if (rest < LIMITS.minBytes / 2) {
    fail(
      `L1 options maxCounters (${o.maxCounters}, ${countersBytes} bytes) and hotKeys (${heatBytes} bytes) take too much of the ${o.bytes} bytes of l1Bytes; raise l1Bytes, lower maxCounters or turn hotKeys off`,
    );
  }
  const slotCount = slotCountFor(rest);
  const heatOffset = countersOffset + countersBytes;
  const indexOffset = heatOffset + heatBytes;
  const ghostOffset = indexOffset + slotCount * SLOT_WORDS * 4;
  const arenaOffset = ghostOffset + slotCount * 4;
  const arenaBytes = alignDown(countersOffset + o.bytes - arenaOffset, 64);
  const smallRingBytes = alignDown(arenaBytes / 10, 8);
  const mainRingBytes = arenaBytes - smallRingBytes;
  const largest = entryBytes(o.maxKeyBytes, o.maxValueBytes);
  if (largest * 4 > mainRingBytes) {
    fail(
      `L1 option maxValueBytes (${o.maxValueBytes}) is too large for l1Bytes (${o.bytes}): the largest entry ` +
        `must fit four times in the main ring (${mainRingBytes} B); raise l1Bytes or lower maxValueBytes`,
    );
  }
  return {
    totalBytes: countersOffset + o.bytes,
    budgetBytes: o.bytes,
    maxThreads: o.maxThreads,
    maxCounters: o.maxCounters,
    slotCount,
    // Linear probing stays short (textbook estimate ≈3.6 probes for a miss) up to 60 % load.
    maxLiveEntries: Math.floor(slotCount * 0.6),
    maxKeyBytes: o.maxKeyBytes,
    maxValueBytes: o.maxValueBytes,
    registryOffset,
    countersOffset,
    heatBytes,
    heatOffset,
    indexOffset,
    ghostOffset,
    arenaOffset,
    arenaBytes,
    smallRingBytes,
    mainRingBytes,
  };
}

/** Write a planned layout's parameters into a fresh buffer's header. */
export function writeHeader(
  sab: SharedArrayBuffer,
  layout: Layout,
  seed: Uint32Array,
  epochMs: number,
): void {
  const h = new Int32Array(sab, 0, HEADER_BYTES / 4);
  const f = new Float64Array(sab, 0, HEADER_BYTES / 8);
  h[H.LAYOUT_VERSION] = LAYOUT_VERSION;
  h[H.SLOT_COUNT] = layout.slotCount;
  h[H.MAX_LIVE_ENTRIES] = layout.maxLiveEntries;
  h[H.MAX_KEY_BYTES] = layout.maxKeyBytes;
  h[H.MAX_VALUE_BYTES] = layout.maxValueBytes;
  h[H.MAX_THREADS] = layout.maxThreads;
  h[H.MAX_COUNTERS] = layout.maxCounters;
  h[H.SEED0] = seed[0];
  h[H.SEED1] = seed[1];
  h[H.SMALL_RING_BYTES] = layout.smallRingBytes;
  h[H.MAIN_RING_BYTES] = layout.mainRingBytes;
  h[H.HEAT_BYTES] = layout.heatBytes;
  f[HF.EPOCH_MS] = epochMs;
  f[HF.BUDGET_BYTES] = layout.budgetBytes;
  // publish: pairs with the Atomics.load of MAGIC in readLayout on another thread.
  Atomics.store(h, H.MAGIC, MAGIC);
}

/** Recompute the layout from a shared buffer's header, refusing foreign buffers. */
export function readLayout(sab: unknown): Layout {
  if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < HEADER_BYTES) {
    throw new L1Error(
      'HS_ERR_L1_HANDLE',
      'not an L1 handle: expected { sab: SharedArrayBuffer } from createL1()',
    );
  }
  const h = new Int32Array(sab, 0, HEADER_BYTES / 4);
  const f = new Float64Array(sab, 0, HEADER_BYTES / 8);
  if (Atomics.load(h, H.MAGIC) !== MAGIC) {
    throw new L1Error('HS_ERR_L1_HANDLE', 'not an L1 table: bad magic word');
  }
  if (h[H.LAYOUT_VERSION] !== LAYOUT_VERSION) {
    throw new L1Error(
      'HS_ERR_L1_HANDLE',
      `L1 layout version ${h[H.LAYOUT_VERSION]} is not this code's version ${LAYOUT_VERSION}`,
    );
  }
  const layout = planLayout({
    bytes: f[HF.BUDGET_BYTES],
    maxKeyBytes: h[H.MAX_KEY_BYTES],
    maxValueBytes: h[H.MAX_VALUE_BYTES],
    maxThreads: h[H.MAX_THREADS],
    maxCounters: h[H.MAX_COUNTERS],
    hotKeys: h[H.HEAT_BYTES] !== 0,
  });
  if (layout.totalBytes !== sab.byteLength || layout.slotCount !== h[H.SLOT_COUNT]) {
    throw new L1Error('HS_ERR_L1_HANDLE', 'L1 header does not match the buffer size');
  }
  return layout;
}

export function epochOf(sab: SharedArrayBuffer): number {
  return new Float64Array(sab, 0, HEADER_BYTES / 8)[HF.EPOCH_MS];
}
