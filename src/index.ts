/**
 * hotshield's public entry point. For now it exposes the shared-memory L1 table; the
 * read-through tier (createTier / attachTier) is added on top of it.
 */
export * from './l1/index.ts';
