/**
 * The fleet's hot set (`scope: 'cluster'`), with no service of its own: every process
 * publishes its hot set to Redis once a second, and a process asked for the fleet's
 * reads every live one's and merges them (hot-report.ts).
 *
 * - A report is the process's top PUBLISHED keys and counters and its masters' load, as
 *   JSON, under `hotkeys:<tier id>:__hotshield:report` with a TTL of REPORT_TTL_MS: a
 *   process that stops publishing drops out within that. Keys of different processes
 *   hash to different slots, so the reports spread over the masters.
 * - The registry, a sorted set `hotkeys:__hotshield:registry`, scores each process's
 *   id with the wall-clock time of its last report (one ZADD a second a process, one
 *   key: a thousand processes are a thousand small writes a second on one master), and
 *   each publisher drops members older than REGISTRY_KEEP_MS.
 * - Reading: the registry's members of the last REGISTRY_KEEP_MS, then their reports,
 *   one pipeline per master (getMany); expired or malformed reports are passed over.
 *
 * Both keys carry `:__hotshield`, so no client of the gateway or the tier can address
 * them. A failed publication is dropped: the next second publishes again,
 * unless Redis refused the commands (NOPERM), after which this process stops publishing.
 */

import { HotshieldError } from '../errors.ts';
import type { L1Table } from '../l1/index.ts';
import { type HotKeysReport, hotKeysReport, mergeReports, parseReport } from './hot-report.ts';
import type { L2Client } from './l2-client.ts';

/** Keys and counters each process publishes (the fleet's view is the merge of these). */
export const PUBLISHED = 32;
export const REPORT_TTL_MS = 5000;
const REGISTRY_KEEP_MS = 60_000;
export const HOT_REGISTRY_KEY = 'hotkeys:__hotshield:registry';
export const hotReportKey = (id: string): string => `hotkeys:${id}:__hotshield:report`;
/** Is `key` one of the fleet's bookkeeping keys in Redis (a report or the registry)? */
export const isHotFleetKey = (key: string): boolean =>
  key === HOT_REGISTRY_KEY || /^hotkeys:[^:]+:__hotshield:report$/.test(key);

export class HotFleet {
  readonly #l2: L2Client;
  readonly #table: L1Table;
  readonly #id: string;
  #publishing = false;
  /** Redis refused the publication's commands (NOPERM: an ACL without them): stop asking. */
  #refused = false;

  constructor(l2: L2Client, table: L1Table, id: string) {
    this.#l2 = l2;
    this.#table = table;
    this.#id = id;
  }

  /** Publish this process's hot set (never rejects; one at a time). */
  async publish(): Promise<void> {
    if (this.#publishing || this.#refused || !this.#l2.isReady) return;
    this.#publishing = true;
    try {
      const now = Date.now();
      const report = JSON.stringify(hotKeysReport(this.#table.hotKeys(), PUBLISHED));
      await this.#l2.publish(hotReportKey(this.#id), report, REPORT_TTL_MS, {
        key: HOT_REGISTRY_KEY,
        member: this.#id,
        score: now,
        forgetBelow: now - REGISTRY_KEEP_MS,
      });
    } catch (error) {
      // One denial in Redis's ACL log, not one a second: this process just is not in the
      // fleet's view (the README's ACL lists what publishing needs).
      if (/NOPERM/.test(String((error as Error).message))) this.#refused = true;
    } finally {
      this.#publishing = false;
    }
  }

  /**
   * Every live process's report, merged, `limit` keys and counters. Reports on a master
   * that failed are left out (the others still answer); it fails only if none could be read.
   */
  async read(limit: number): Promise<HotKeysReport> {
    const ids = await this.#l2.members(HOT_REGISTRY_KEY, Date.now() - REGISTRY_KEEP_MS);
    const reads = ids.length === 0 ? [] : await this.#l2.getMany(ids.map(hotReportKey));
    const reports: HotKeysReport[] = [];
    let failure: HotshieldError | undefined;
    for (const read of reads) {
      if (read instanceof HotshieldError) {
        failure = read;
        continue;
      }
      const report = read === null ? undefined : parseReport(read.toString('utf8'));
      if (report !== undefined) reports.push(report);
    }
    if (failure !== undefined && reports.length === 0) throw failure;
    return mergeReports(reports, limit);
  }
}
