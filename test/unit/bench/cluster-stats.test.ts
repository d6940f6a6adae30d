import { describe, expect, it } from 'vitest';
import {
  callsOf,
  delta,
  KEY_WRITE_COMMANDS,
  type NodeSnapshot,
  parseInfo,
  SCRIPT_COMMANDS,
} from '../../../bench/lib/cluster-stats.ts';

// As Redis 7 prints it, after one EVALSHA whose script ran GET, INCRBY and SET.
const INFO = [
  '# Commandstats',
  'cmdstat_get:calls=1,usec=1,usec_per_call=1.00,rejected_calls=0,failed_calls=0',
  'cmdstat_evalsha:calls=1,usec=40,usec_per_call=40.00,rejected_calls=0,failed_calls=0',
  'cmdstat_incrby:calls=1,usec=2,usec_per_call=2.00,rejected_calls=0,failed_calls=0',
  'cmdstat_set:calls=1,usec=2,usec_per_call=2.00,rejected_calls=0,failed_calls=0',
  'cmdstat_config|resetstat:calls=3,usec=43,usec_per_call=14.33,rejected_calls=0,failed_calls=0',
  'cmdstat_info:calls=9,usec=90,usec_per_call=10.00,rejected_calls=0,failed_calls=0',
  '',
  '# CPU',
  'used_cpu_sys:1.250000',
  'used_cpu_user:0.500000',
].join('\r\n');

describe('parseInfo', () => {
  it('reads every command, subcommands included, and CPU as sys + user', () => {
    const { calls, cpuSeconds } = parseInfo(INFO);
    expect(calls).toEqual({
      get: 1,
      evalsha: 1,
      incrby: 1,
      set: 1,
      'config|resetstat': 3,
      info: 9,
    });
    expect(cpuSeconds).toBeCloseTo(1.75);
  });
});

describe('callsOf', () => {
  it('counts a flush script as two key writes and one script call', () => {
    const { calls } = parseInfo(INFO);
    expect(callsOf(calls, KEY_WRITE_COMMANDS)).toBe(2);
    expect(callsOf(calls, SCRIPT_COMMANDS)).toBe(1);
  });

  it('is 0 for a snapshot without counts', () => {
    expect(callsOf(undefined, KEY_WRITE_COMMANDS)).toBe(0);
  });
});

describe('delta', () => {
  it('gives writes and script calls during the run, per master', () => {
    const before: NodeSnapshot[] = [
      { port: 7000, cpuSeconds: 1, calls: { incrby: 10, evalsha: 2, get: 5 } },
    ];
    const after: NodeSnapshot[] = [
      { port: 7000, cpuSeconds: 1.5, calls: { incrby: 40, evalsha: 5, set: 3, get: 5, info: 2 } },
      { port: 7001, cpuSeconds: 0.2, calls: { incr: 7 } },
    ];
    const d = delta(before, after);
    expect(d[0]).toMatchObject({ port: 7000, gets: 0, writes: 33, scripts: 3, commands: 36 });
    expect(d[0].cpuSeconds).toBeCloseTo(0.5);
    // A master missing from the first snapshot counts from zero.
    expect(d[1]).toMatchObject({ port: 7001, writes: 7, scripts: 0, commands: 7 });
  });
});
