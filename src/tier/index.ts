export type { Counter, IncrOptions, ReadOptions } from '../counters/counter.ts';
export { CODECS, type CodecName } from './codec.ts';
export { attachTier, createTier } from './create.ts';
export { INTERNAL_MARK, isInternalKey } from './internal-keys.ts';
export type { TierConfig, TierOptions } from './options.ts';
export type {
  GetOptions,
  Loader,
  Lookup,
  RefresherStatus,
  SetOptions,
  Tier,
  TierHandle,
  TierStats,
} from './tier.ts';
export { parseBytes, parseDuration } from './units.ts';
