/**
 * Redis keys hotshield keeps for itself (counter flush bookkeeping, issue 6) all carry
 * INTERNAL_MARK, so a front end can refuse to let a client address them.
 */

export const INTERNAL_MARK = ':__hotshield';

export function isInternalKey(key: string): boolean {
  return key.includes(INTERNAL_MARK);
}
