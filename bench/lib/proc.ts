/**
 * CPU seconds and resident memory of a process, or of a process and all its descendants,
 * from /proc (Linux): the one reader of /proc/<pid>/stat for the benches (to charge each
 * contender, and the load generator that shares the two cores, for the CPU it used) and
 * for the tests (a gateway's CPU per request, its memory staying bounded).
 */

import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;
const PAGE_BYTES = 4096;

export interface ProcStat {
  pid: number;
  ppid: number;
  /** User + system CPU, in clock ticks (TICKS_PER_SECOND). */
  cpuTicks: number;
  rssPages: number;
}

export function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      pid,
      ppid: Number(fields[1]),
      cpuTicks: Number(fields[11]) + Number(fields[12]),
      rssPages: Number(fields[21]),
    };
  } catch {
    return undefined;
  }
}

function tree(rootPid: number): ProcStat[] {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s !== undefined) all.push(s);
  }
  const out: ProcStat[] = [];
  const wanted = new Set([rootPid]);
  // Parents come before children in most listings, but not always: iterate to a fixpoint.
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of all) {
      if (!wanted.has(s.pid) && wanted.has(s.ppid)) {
        wanted.add(s.pid);
        grew = true;
      }
    }
  }
  for (const s of all) if (wanted.has(s.pid)) out.push(s);
  return out;
}

/** CPU seconds (user + system) `pid` has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  return (readStat(pid)?.cpuTicks ?? 0) / TICKS_PER_SECOND;
}

/** Resident bytes of `pid`; 0 once it is gone. */
export function rssBytes(pid: number): number {
  return (readStat(pid)?.rssPages ?? 0) * PAGE_BYTES;
}

/** CPU seconds (user + system) used so far by `pid` and its descendants still alive. */
export function treeCpuSeconds(pid: number): number {
  return tree(pid).reduce((sum, s) => sum + s.cpuTicks, 0) / TICKS_PER_SECOND;
}

/** Resident bytes of `pid` and its descendants. */
export function treeRssBytes(pid: number): number {
  return tree(pid).reduce((sum, s) => sum + s.rssPages, 0) * PAGE_BYTES;
}

/** The live direct children of `pid` (a supervisor's workers, say). */
export function childPids(pid: number): number[] {
  return tree(pid)
    .filter((s) => s.ppid === pid)
    .map((s) => s.pid);
}
