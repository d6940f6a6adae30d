/**
 * hotshield's public entry point: the read-through tier (createTier / attachTier), its
 * typed errors, and the shared-memory L1 it is built on (also at 'hotshield/l1').
 */
export { type ErrorCode, ErrorCodes, HotshieldError, TierErrorCodes } from './errors.ts';
export * from './l1/index.ts';
export * from './tier/index.ts';
