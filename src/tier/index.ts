export { INTERNAL_MARK, isInternalKey } from '../keys/reserved-keys.ts';
// Shared-memory event counts (u32 lo/hi pairs, one writer each): the gateway's request stats use them too.
export { bump as bumpCount, readCount } from '../l1/counts.ts';
export { L1_STAT_HELP } from '../l1/table.ts';
export { STATS as TIER_STATS } from '../refresher/control.ts';
export type {
  HotCounter,
  HotKey,
  HotKeysOptions,
  HotKeysReport,
  HotNode,
} from '../refresher/hot-report.ts';
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
