/**
 * The tier's public types: what createTier hands out, what its methods take and return.
 */

import type { L1Handle, L1Stats } from '../l1/index.ts';
import type { ControlStats, RefresherState } from '../refresher/control.ts';
import type { TierConfig } from './options.ts';

export const HANDLE_KIND = 'hotshield.tier/1';

/** What createTier hands out and attachTier takes: plain data and two SharedArrayBuffers. */
export interface TierHandle {
  readonly kind: typeof HANDLE_KIND;
  readonly l1: L1Handle;
  readonly control: SharedArrayBuffer;
  readonly config: TierConfig;
}

export type Loader = (key: string) => unknown | Promise<unknown>;

/** What only the thread that created the tier can do (create.ts). */
export interface TierOwner {
  close(): Promise<void>;
  metrics(): Promise<object[]>;
  status(): Promise<RefresherStatus>;
}

/** The refresher's view of Redis (tier.refresherStatus()). */
export interface RefresherStatus {
  state: RefresherState;
  /** The last connection error Redis or ioredis reported (e.g. WRONGPASS), cleared once connected. */
  lastError?: string;
}

export interface GetOptions {
  /** Called on a full miss (not in L1, not in Redis); its result is stored in Redis and L1. */
  loader?: Loader;
  /** Redis TTL of a loaded value (default: none). */
  ttl?: number | string;
  /** How long to wait for the value (default: requestTimeout). */
  timeout?: number | string;
}

export interface Lookup {
  value: unknown;
  /** 'hit': fresh in L1; 'stale': past softTtl in L1 (a refresh was asked for); 'miss': fetched now. */
  cache: 'hit' | 'stale' | 'miss';
  /** Milliseconds since the value was stored in L1 (0 on a miss). */
  ageMs: number;
  /**
   * The L1 entry's version: changes whenever the entry is rewritten in this process (on a
   * miss, the entry the refresher stored it in; 0 when it was not stored). Lets a caller
   * cache something derived from the value, like an ETag.
   */
  version: number;
}

export interface SetOptions {
  /** Redis TTL of the value (default: none); L1 never keeps it longer. */
  ttl?: number | string;
  /** How long to wait for Redis to acknowledge (default: requestTimeout). */
  timeout?: number | string;
}

export interface TierStats {
  l1: L1Stats;
  /** Process-wide counters (control.ts), summed over every thread and refresher life. */
  tier: ControlStats;
  refresher: {
    state: RefresherState;
    generation: number;
    /** Masters Redis tracks this tier's reads on, of how many (0 of 0: coherence off). */
    coherence: { tracked: number; masters: number };
  };
  /** This thread only. */
  thread: { waiting: number; pendingKeys: number };
}
