/**
 * Log lines for heat: once a second the gateway process reads its hot set and says when
 * a key's reads (or a counter's increments) a second cross `hotThreshold`, and when they
 * fall back under half of it (the gap keeps a key hovering at the threshold from
 * logging every second). The lines carry the key, its rate, its slot and its master.
 */

import type { Logger } from '../log.ts';
import type { HotKeysReport, Tier } from '../tier/index.ts';

/** How often the hot set is read for these lines. */
const HOT_WATCH_MS = 1000;
/** The most keys and counters one look considers (the whole hot set). */
const WATCHED = 512;

export interface HotChanges {
  hot: Array<{
    kind: 'key' | 'counter';
    name: string;
    rate: number;
    slot?: number;
    node?: string | null;
  }>;
  cooled: Array<{ kind: 'key' | 'counter'; name: string; rate: number }>;
}

/**
 * What changed since `hotNow` (the names hot before; updated in place): pure, for the
 * watcher and its tests.
 */
export function hotChanges(
  report: HotKeysReport,
  threshold: number,
  hotNow: Set<string>,
): HotChanges {
  const out: HotChanges = { hot: [], cooled: [] };
  const rates = new Map<string, number>();
  for (const k of report.keys) {
    const id = `key ${k.key}`;
    rates.set(id, k.readsPerSecond);
    if (k.readsPerSecond >= threshold && !hotNow.has(id)) {
      hotNow.add(id);
      out.hot.push({
        kind: 'key',
        name: k.key,
        rate: k.readsPerSecond,
        slot: k.slot,
        node: k.node,
      });
    }
  }
  for (const c of report.counters) {
    const id = `counter ${c.name}`;
    rates.set(id, c.incrementsPerSecond);
    if (c.incrementsPerSecond >= threshold && !hotNow.has(id)) {
      hotNow.add(id);
      out.hot.push({ kind: 'counter', name: c.name, rate: c.incrementsPerSecond });
    }
  }
  for (const id of hotNow) {
    const rate = rates.get(id) ?? 0;
    if (rate >= threshold / 2) continue;
    hotNow.delete(id);
    const [kind, ...name] = id.split(' ');
    out.cooled.push({ kind: kind as 'key' | 'counter', name: name.join(' '), rate });
  }
  return out;
}

/** Log heat changes every second; returns a stop function. */
export function watchHotKeys(tier: Tier, threshold: number, log: Logger): () => void {
  const hotNow = new Set<string>();
  const check = async () => {
    const changes = hotChanges(await tier.hotKeys({ limit: WATCHED }), threshold, hotNow);
    for (const h of changes.hot) {
      const fields =
        h.kind === 'key'
          ? { key: h.name, readsPerSecond: h.rate, slot: h.slot, node: h.node, threshold }
          : { counter: h.name, incrementsPerSecond: h.rate, threshold };
      log.warn(fields, h.kind === 'key' ? 'key is hot' : 'counter is hot');
    }
    for (const c of changes.cooled) {
      const fields =
        c.kind === 'key'
          ? { key: c.name, readsPerSecond: c.rate, threshold }
          : { counter: c.name, incrementsPerSecond: c.rate, threshold };
      log.info(fields, c.kind === 'key' ? 'key cooled down' : 'counter cooled down');
    }
  };
  const timer = setInterval(() => check().catch(() => {}), HOT_WATCH_MS);
  timer.unref();
  return () => clearInterval(timer);
}
