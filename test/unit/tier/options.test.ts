import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../src/errors.ts';
import { tierConfigOf } from '../../../src/tier/options.ts';
import { parseBytes, parseDuration } from '../../../src/tier/units.ts';

const SEEDS = '127.0.0.1:7000,127.0.0.1:7001';

function optionError(options: unknown): { code: string; message: string } {
  try {
    tierConfigOf(options as never);
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error('expected an option error');
}

describe('units', () => {
  it('parses durations and sizes the way the gateway flags spell them', () => {
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('3s')).toBe(3000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration(' 42 ')).toBe(42);
    expect(parseBytes('256mb')).toBe(256 * 1024 * 1024);
    expect(parseBytes('64KB')).toBe(65_536);
    expect(parseBytes('1gib')).toBe(1024 ** 3);
    expect(parseBytes(4096)).toBe(4096);
    for (const bad of [
      '',
      'fast',
      '3 sec',
      '-1s',
      '1e3',
      Number.NaN,
      Number.POSITIVE_INFINITY,
      null,
      {},
    ]) {
      expect(parseDuration(bad)).toBeUndefined();
    }
    for (const bad of ['', 'big', '10 pb', '-5mb', null]) expect(parseBytes(bad)).toBeUndefined();
  });
});

describe('tier options', () => {
  it('fills defaults, freezes the result, and keeps only plain data', () => {
    const c = tierConfigOf({ redis: SEEDS });
    expect(Object.isFrozen(c)).toBe(true);
    expect(c).toMatchObject({
      codec: 'msgpack',
      l1Bytes: 64 * 1024 * 1024,
      softTtlMs: 3000,
      staleTtlMs: 30_000,
      negativeTtlMs: 1000,
      requestTimeoutMs: 1000,
      l2TimeoutMs: 250,
      redis: {
        kind: 'cluster',
        nodes: [
          { host: '127.0.0.1', port: 7000 },
          { host: '127.0.0.1', port: 7001 },
        ],
      },
    });
    expect(structuredClone(c)).toEqual(c);
  });

  it('accepts a standalone URL with credentials and a db', () => {
    const c = tierConfigOf({
      redis: 'redis://app:s%3Acret@127.0.0.1:6390/2',
      softTtl: '5s',
      l1Bytes: '16mb',
    });
    expect(c.redis).toEqual({
      kind: 'standalone',
      host: '127.0.0.1',
      port: 6390,
      db: 2,
      tls: false,
      username: 'app',
      password: 's:cret',
    });
    expect(c.softTtlMs).toBe(5000);
    expect(c.l1Bytes).toBe(16 * 1024 * 1024);
  });

  it('refuses bad options with HS_ERR_OPTION and a message naming the option', () => {
    const cases: Array<[unknown, RegExp]> = [
      [undefined, /options object/],
      [{}, /redis is required/],
      [{ redis: '' }, /seed/],
      [{ redis: 'nohost' }, /host:port/],
      [{ redis: 42 }, /redis must be/],
      [{ redis: 'redis://[bad' }, /not a valid URL/],
      [{ redis: SEEDS, softTtl: 'soon' }, /softTtl/],
      [{ redis: SEEDS, softTtl: 0 }, /softTtl/],
      [{ redis: SEEDS, staleTtl: -1 }, /staleTtl/],
      [{ redis: SEEDS, l1Bytes: 'lots' }, /l1Bytes/],
      [{ redis: SEEDS, codec: 'json' }, /codec must be one of msgpack, raw, utf8/],
      [{ redis: SEEDS, maxInFlight: 0 }, /maxInFlight/],
      [{ redis: SEEDS, maxWaiting: 1.5 }, /maxWaiting/],
      [{ redis: SEEDS, l2Timeout: '1 minute' }, /l2Timeout/],
      [{ redis: SEEDS, password: 5 }, /password must be a string/],
      [{ redis: SEEDS, softTTL: '3s' }, /unknown option softTTL/],
    ];
    for (const [options, message] of cases) {
      const e = optionError(options);
      expect(e.code).toBe(ErrorCodes.HS_ERR_OPTION);
      expect(e.message).toMatch(message);
    }
  });

  it('validates every duration, size and count option, naming it', () => {
    const durations = [
      'softTtl',
      'staleTtl',
      'negativeTtl',
      'requestTimeout',
      'l2Timeout',
      'connectTimeout',
      'loaderTimeout',
      'slotsRefreshInterval',
      'breakerCooldown',
    ];
    const sizes = ['l1Bytes', 'maxValueBytes'];
    const counts = ['maxKeyBytes', 'maxThreads', 'maxInFlight', 'maxWaiting', 'breakerThreshold'];
    for (const name of [...durations, ...sizes, ...counts]) {
      for (const bad of ['x', -5, 1.5e300, true]) {
        const e = optionError({ redis: SEEDS, [name]: bad });
        expect(e.code).toBe('HS_ERR_OPTION');
        expect(e.message.startsWith(`${name} must be`)).toBe(true);
      }
    }
  });

  it('allows turning the negative cache and serve-stale off with 0', () => {
    const c = tierConfigOf({ redis: SEEDS, negativeTtl: 0, staleTtl: '0ms' });
    expect(c.negativeTtlMs).toBe(0);
    expect(c.staleTtlMs).toBe(0);
  });
});
