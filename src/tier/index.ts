export { CODECS, type CodecName } from './codec.ts';
export { attachTier, createTier } from './create.ts';
export type { TierConfig, TierOptions } from './options.ts';
export type { GetOptions, Loader, SetOptions, Tier, TierHandle, TierStats } from './tier.ts';
export { parseBytes, parseDuration } from './units.ts';
