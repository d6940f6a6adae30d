export { INTERNAL_MARK, isInternalKey } from '../keys/reserved-keys.ts';
export { L1_STAT_HELP } from '../l1/table.ts';
export { STATS as TIER_STATS } from '../refresher/control.ts';
export { type RedisTlsOptions, redactRedis } from '../refresher/redis-target.ts';
export { parseBytes, parseDuration } from '../units.ts';
export { CODECS, type CodecName } from './codec.ts';
export type { Counter, IncrOptions, ReadOptions } from './counter.ts';
export { attachTier, createTier } from './create.ts';
export { type TierConfig, type TierOptions, tierConfigOf } from './options.ts';
export type { Tier } from './tier.ts';
export type {
  GetOptions,
  Loader,
  Lookup,
  RefresherStatus,
  SetOptions,
  TierHandle,
  TierStats,
} from './types.ts';
