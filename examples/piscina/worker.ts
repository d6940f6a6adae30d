/**
 * A piscina worker answering from the shared tier. It attaches once, when the pool
 * starts it, with the handle the main thread put in the pool's workerData; every task
 * then reads through the L1 that all workers share.
 *
 * In an application this import is `from 'hotshield'`.
 */
import { workerData } from 'node:worker_threads';
import { attachTier, type TierHandle } from '../../src/index.ts';

const tier = attachTier((workerData as { handle: TierHandle }).handle);

export default async function lookup({ key }: { key: string }): Promise<unknown> {
  return tier.get(key);
}
