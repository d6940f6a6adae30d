/**
 * One batch of Redis commands, one per key, sent as one pipeline per master node within
 * one deadline (L2Client.getMany, flushMany, readShards).
 *
 * Keys are grouped by the master that owns their slot (CRC16 via cluster-key-slot, then
 * the client's slot table), never sent as a cross-slot command. A key whose command comes
 * back with a redirect (MOVED/ASK during a reshard or failover) is sent again alone
 * through the cluster client, which follows redirects; the rest of its batch is
 * unaffected (ioredis' own pipelines would retry or fail the batch whole, ioredis#2075).
 * Each master's pipeline passes its node's breaker and reports to `onCall`; a batch never
 * rejects: each key's slot holds its result or its own typed error.
 */

import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { HotshieldError } from '../errors.ts';
import type { Breaker } from './breaker.ts';
import { withDeadline } from './deadline.ts';
import { circuitOpen, isNodeFailure, toL2Error } from './l2-errors.ts';

/** `report`: the fleet's hot-set reports and their registry (hot-fleet.ts). */
export type L2Op = 'get' | 'set' | 'del' | 'flush' | 'count' | 'report';

/** One call to one node, as reported to `onCall`. */
export interface L2Call {
  node: string;
  op: L2Op;
  seconds: number;
  /** Keys in the call, and how many of them failed (with the first failure's code). */
  keys: number;
  failed: number;
  code?: string;
}

/** A command that a pipeline (or, after a redirect, the cluster client) can carry. */
export type Commands = Record<string, (...args: unknown[]) => unknown>;

/** What a batch needs of the client that runs it (L2Client). */
export interface BatchHost {
  readonly client: Cluster | Redis;
  readonly breaker: Breaker;
  readonly timeoutMs: number;
  onCall(call: L2Call): void;
  /** Resolves once the client takes commands, within the deadline; else rejects. */
  connected(deadlineAt: number): Promise<void>;
  /** A node failed a call (`timedOut`: it stopped answering). */
  nodeFailed(nodeKey: string, timedOut: boolean): void;
  /** Ready a node's connection for the batch's commands (define scripts on it). */
  prepare(node: Redis): void;
}

/**
 * What to send: `command(target, i)` adds key i's command to a pipeline, or sends it
 * alone, and `reply(raw, i)` turns its reply into the batch's result, throwing a
 * HotshieldError for a reply of the wrong shape. `onPart` hears of each master's keys
 * as soon as that master has answered (or failed); every key is in exactly one part.
 */
export interface BatchSpec {
  readonly op: L2Op;
  readonly keys: readonly string[];
  readonly command: (target: Commands, i: number) => unknown;
  readonly reply: (raw: unknown, i: number) => unknown;
  readonly onPart?: (indexes: readonly number[], out: readonly unknown[]) => void;
}

interface Batch extends BatchSpec {
  readonly host: BatchHost;
  readonly out: unknown[];
  readonly deadlineAt: number;
}

/** A well-formed redirect (anything else is that key's error, never followed). */
const REDIRECT = /^(?:(?:MOVED|ASK) \d{1,5} \S*:\d{1,5}$|TRYAGAIN )/;
/** The node name of a standalone Redis in metrics and breaker keys. */
export const STANDALONE_NODE = 'redis';

/** Run `spec` (see BatchSpec); never rejects. */
export async function runBatch(host: BatchHost, spec: BatchSpec): Promise<unknown[]> {
  const { keys, onPart } = spec;
  const out: unknown[] = new Array(keys.length).fill(null);
  const all = () => keys.map((_, i) => i);
  const deadlineAt = performance.now() + host.timeoutMs;
  try {
    await host.connected(deadlineAt);
  } catch (error) {
    out.fill(toL2Error(error));
    onPart?.(all(), out);
    return out;
  }
  const batch: Batch = { ...spec, host, out, deadlineAt };
  const client = host.client;
  if (!isCluster(client)) {
    const indexes = all();
    await pipeline(batch, client, STANDALONE_NODE, indexes);
    onPart?.(indexes, out);
    return out;
  }
  const masters = new Map<string, Redis>();
  for (const node of client.nodes('master'))
    masters.set(`${node.options.host}:${node.options.port}`, node);
  const groups = new Map<string, number[]>();
  for (let i = 0; i < keys.length; i++) {
    const nodeKey = client.slots[calculateSlot(keys[i])]?.[0] ?? '';
    const group = groups.get(nodeKey);
    if (group) group.push(i);
    else groups.set(nodeKey, [i]);
  }
  await Promise.all(
    [...groups].map(([nodeKey, indexes]) => {
      const node = masters.get(nodeKey);
      const part = node ? pipeline(batch, node, nodeKey, indexes) : oneByOne(batch, indexes);
      // A master that answers is not kept waiting for one that hangs.
      return onPart === undefined ? part : part.then(() => onPart(indexes, out));
    }),
  );
  return out;
}

export function isCluster(client: Cluster | Redis): client is Cluster {
  return client.isCluster;
}

/** Key i's reply as the batch's result, or the error saying why it is not one. */
function replyOf(batch: Batch, raw: unknown, i: number): unknown {
  try {
    return batch.reply(raw, i);
  } catch (error) {
    return toL2Error(error);
  }
}

async function pipeline(
  batch: Batch,
  node: Redis,
  nodeKey: string,
  indexes: number[],
): Promise<void> {
  const { out, host } = batch;
  const started = performance.now();
  const report = () => {
    let failed = 0;
    let code: string | undefined;
    for (const i of indexes) {
      const r = out[i];
      if (r instanceof HotshieldError) {
        failed++;
        code ??= r.code;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    host.onCall({ node: nodeKey, op: batch.op, seconds, keys: indexes.length, failed, code });
  };
  if (!host.breaker.allow(nodeKey, performance.now())) {
    const e = circuitOpen(nodeKey);
    for (const i of indexes) out[i] = e;
    report();
    return;
  }
  try {
    await pipelineOnce(batch, node, nodeKey, indexes);
  } finally {
    report();
  }
}

async function pipelineOnce(
  batch: Batch,
  node: Redis,
  nodeKey: string,
  indexes: number[],
): Promise<void> {
  const { out, deadlineAt, host } = batch;
  host.prepare(node);
  const pipe = node.pipeline();
  for (const i of indexes) batch.command(pipe as unknown as Commands, i);
  try {
    const replies = await withDeadline(
      pipe.exec(),
      Math.max(1, deadlineAt - performance.now()),
      `${batch.op.toUpperCase()} of ${indexes.length} keys on ${nodeKey}`,
    );
    // A redirect (slot moved or moving) is followed through the cluster client; any
    // other error is that key's answer. ioredis' own commandTimeout fails commands
    // inside a pipeline that still resolves: those count against the node.
    const retry: number[] = [];
    const cluster = isCluster(host.client);
    let nodeFailed = false;
    let timedOut = false;
    replies?.forEach(([error, value], j) => {
      const i = indexes[j];
      if (error && cluster && REDIRECT.test(error.message)) retry.push(i);
      else if (error) {
        const e = toL2Error(error);
        nodeFailed ||= isNodeFailure(e);
        timedOut ||= e.code === 'HS_ERR_L2_TIMEOUT';
        out[i] = e;
      } else out[i] = replyOf(batch, value, i);
    });
    if (nodeFailed) host.nodeFailed(nodeKey, timedOut);
    else host.breaker.success(nodeKey);
    if (retry.length > 0) await oneByOne(batch, retry);
  } catch (error) {
    const e = toL2Error(error);
    host.nodeFailed(nodeKey, e.code === 'HS_ERR_L2_TIMEOUT');
    for (const i of indexes) out[i] = e;
  }
}

/** Each key's command alone through the cluster client, which follows MOVED/ASK. */
async function oneByOne(batch: Batch, indexes: number[]): Promise<void> {
  const { keys, out, deadlineAt, host } = batch;
  await Promise.all(
    indexes.map(async (i) => {
      try {
        const raw = await withDeadline(
          batch.command(host.client as unknown as Commands, i) as Promise<unknown>,
          Math.max(1, deadlineAt - performance.now()),
          `${batch.op.toUpperCase()} ${keys[i]}`,
        );
        out[i] = replyOf(batch, raw, i);
      } catch (error) {
        out[i] = toL2Error(error);
      }
    }),
  );
}
