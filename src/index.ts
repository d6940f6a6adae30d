/**
 * hotshield's public entry point: the read-through tier (createTier / attachTier), its
 * typed errors, and the shared-memory L1 it is built on (also at 'hotshield/l1').
 */
export { type ErrorCode, ErrorCodes, HotshieldError, TierErrorCodes } from './errors.ts';
export * from './l1/index.ts';
export {
  attachTier,
  CODECS,
  type CodecName,
  type Counter,
  createTier,
  type GetOptions,
  type HotCounter,
  type HotKey,
  type HotKeysOptions,
  type HotKeysReport,
  type HotNode,
  INTERNAL_MARK,
  type IncrOptions,
  isInternalKey,
  type Loader,
  type Lookup,
  parseBytes,
  parseDuration,
  type ReadOptions,
  type RedisTlsOptions,
  type RefresherStatus,
  type SetOptions,
  type Tier,
  type TierConfig,
  type TierHandle,
  type TierOptions,
  type TierStats,
} from './tier/index.ts';
