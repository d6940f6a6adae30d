/**
 * createTier (the owning thread) and attachTier (any other thread).
 *
 * createTier validates the options, allocates the L1 and the control block, and starts
 * the refresher thread (refresher-pool.ts). It resolves once the refresher listens and
 * Redis is connected, or after connectTimeout with Redis still connecting (reads then
 * fail fast until it is, and the tier never refuses to start because Redis is down).
 */

import { HotshieldError } from '../errors.ts';
import { createL1, L1Error, type L1Handle } from '../l1/index.ts';
import { Control, createControl } from '../refresher/control.ts';
import { type TierConfig, type TierOptions, tierConfigOf } from './options.ts';
import { type RefresherPool, startRefresherPool } from './refresher-pool.ts';
import { Tier } from './tier.ts';
import { HANDLE_KIND, type TierHandle } from './types.ts';

/** How long the refresher thread may take to start listening. */
const REFRESHER_START_MS = 10_000;
/** How often createTier looks whether Redis is connected yet. */
const CONNECT_POLL_MS = 10;

/** The refresher behind each tier created here. */
const pools = new WeakMap<Tier, RefresherPool>();

/** The refresher threads of a tier created here: for the fault tests that kill them (not exported publicly). */
export function refresherThreadsOf(tier: Tier): ReadonlyArray<{ terminate(): Promise<number> }> {
  return pools.get(tier)?.threads() ?? [];
}

export async function createTier(options: TierOptions): Promise<Tier> {
  const config = tierConfigOf(options);
  const l1 = l1For(config);
  const controlSab = createControl();
  const handle: TierHandle = Object.freeze({ kind: HANDLE_KIND, l1, control: controlSab, config });
  const control = new Control(controlSab);
  const pool = startRefresherPool({ l1, control: controlSab, config });
  if (!(await control.waitForRefresher(0, REFRESHER_START_MS))) {
    await pool.destroy();
    throw new HotshieldError(
      'HS_ERR_TIMEOUT',
      `the refresher thread did not start within ${REFRESHER_START_MS} ms`,
    );
  }
  await waitForState(control, config.connectTimeoutMs);
  const tier = new Tier(handle, {
    close: async () => {
      control.close();
      await pool.close();
    },
    metrics: () => pool.metrics(),
    status: () => pool.status(),
  });
  pools.set(tier, pool);
  return tier;
}

/** Attach this thread to a tier created elsewhere; `handle` is `tier.handle` from workerData. */
export function attachTier(handle: TierHandle): Tier {
  if (handle === null || typeof handle !== 'object' || handle.kind !== HANDLE_KIND) {
    throw new HotshieldError(
      'HS_ERR_HANDLE',
      'attachTier needs tier.handle from createTier (pass it in workerData)',
    );
  }
  return new Tier(handle);
}

function l1For(config: TierConfig): L1Handle {
  try {
    return createL1({
      bytes: config.l1Bytes,
      maxKeyBytes: config.maxKeyBytes,
      maxValueBytes: config.maxValueBytes,
      maxThreads: config.maxThreads,
      maxCounters: config.maxCounters,
      hotKeys: config.hotKeys,
    });
  } catch (error) {
    // The L1's message names the options to change (l1Bytes, maxValueBytes…).
    if (error instanceof L1Error)
      throw new HotshieldError('HS_ERR_OPTION', error.message, { cause: error });
    throw error;
  }
}

async function waitForState(control: Control, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (control.state !== 'l2Ready' && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, CONNECT_POLL_MS));
  }
}
