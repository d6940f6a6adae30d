/**
 * hotshield's L1: a fixed-size hash table in one SharedArrayBuffer, shared by every
 * thread of a process. Node built-ins only; nothing else of the project is imported.
 *
 * - `createL1(options)` → handle (pass it to workers in `workerData`)
 * - `L1Table.attach(handle)` in any thread: `get`, `addCounter`, `counterAdded`, `stats`
 * - `L1Writer.open(handle)` in exactly one thread: `set`, `delete`, `clear`,
 *   `sweepExpired`, counter flush bookkeeping (`counterState`, `beginCounterFlush`, …)
 * - `releaseThread(handle, threadId)` from a worker's 'exit' event
 */

export type { CounterState, PendingFlush } from './counters.ts';
export { createL1, type L1Handle, type L1Options } from './create.ts';
export { L1Error, type L1ErrorCode, L1ErrorCodes } from './errors.ts';
export type { CounterCount, HotKeyCount, NodeCount } from './heat.ts';
export { HEAT_WINDOW_MS } from './heat.ts';
export type { SlotOwners } from './heat-keeper.ts';
export {
  HEADER_BYTES,
  HEAT,
  HEAT_KIND,
  type HeatKind,
  MAX_COUNTER_NAME_BYTES,
  MAX_PROBE,
} from './layout.ts';
export { ReadMemo } from './read-memo.ts';
export { releaseThread } from './registry.ts';
export {
  type CounterTicket,
  type EntryState,
  type L1Entry,
  type L1Ref,
  type L1Stats,
  L1Table,
  newRef,
} from './table.ts';
export { type L1SetOptions, L1Writer, type WriterOptions } from './writer.ts';
