import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../src/errors.ts';
import { tierConfigOf } from '../../../src/tier/options.ts';
import { formatBytes, formatDuration, parseBytes, parseDuration } from '../../../src/units.ts';

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

describe('units written back (--help, the README)', () => {
  it('in the largest unit that holds the value whole, parsing back to the same value', () => {
    const durations: Array<[number, string]> = [
      [250, '250ms'],
      [1500, '1500ms'],
      [3000, '3s'],
      [90_000, '90s'],
      [120_000, '2m'],
      [86_400_000, '24h'],
    ];
    for (const [ms, text] of durations) {
      expect(formatDuration(ms)).toBe(text);
      expect(parseDuration(text)).toBe(ms);
    }
    const sizes: Array<[number, string]> = [
      [1000, '1000'],
      [1536, '1536'],
      [64 * 1024, '64kb'],
      [1024 ** 2, '1mb'],
      [64 * 1024 ** 2, '64mb'],
      [2 * 1024 ** 3, '2gb'],
    ];
    for (const [bytes, text] of sizes) {
      expect(formatBytes(bytes)).toBe(text);
      expect(parseBytes(text)).toBe(bytes);
    }
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

  it('takes seeds and nodes in the forms ioredis takes them', () => {
    const cluster = {
      kind: 'cluster',
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
    };
    expect(tierConfigOf({ redis: ['127.0.0.1:7000', '10.0.0.2:7001'] }).redis).toMatchObject(
      cluster,
    );
    expect(
      tierConfigOf({
        redis: [
          { host: '127.0.0.1', port: 7000 },
          { host: '10.0.0.2', port: 7001 },
        ],
      }).redis,
    ).toMatchObject(cluster);
    // A bare port, and an object's missing host or port, default as ioredis does.
    expect(tierConfigOf({ redis: [7000, { host: '10.0.0.2', port: 7001 }] }).redis).toMatchObject(
      cluster,
    );
    expect(tierConfigOf({ redis: [{ port: 7000 }, {}] }).redis).toMatchObject({
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 6379 },
      ],
    });
    // An options object, as `new Redis({ host, port, db })` takes: a standalone Redis.
    expect(tierConfigOf({ redis: { host: '10.0.0.9', port: 6380, db: 3 } }).redis).toMatchObject({
      kind: 'standalone',
      host: '10.0.0.9',
      port: 6380,
      db: 3,
    });
    const refused: Array<[unknown, RegExp]> = [
      [[], /at least one cluster seed/],
      [['127.0.0.1'], /host:port/],
      [[{ host: 'h', port: 70000 }], /redis seed 0 has a bad port/],
      [[{ host: '', port: 1 }], /redis seed 0 has a bad host/],
      [[null], /redis seed 0 must be/],
      [['127.0.0.1:7000,127.0.0.1:7001'], /redis seed 0 must be one "host:port"/],
      [[{ host: 'h', port: 7000, password: 'p' }], /redis seed 0 has an unknown field password/],
      [{ host: 'h', port: 'x' }, /bad port/],
      [{ host: 'h', password: 'p' }, /unknown field password/],
      [{ host: 'h', db: -1 }, /bad db/],
    ];
    for (const [redis, why] of refused) {
      expect(() => tierConfigOf({ redis } as never), JSON.stringify(redis)).toThrow(why);
    }
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
      tls: undefined,
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

  it('passes TLS settings on as plain PEM strings, for clusters and rediss:// alike', () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n';
    const cert = '-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n';
    const key = '-----BEGIN PRIVATE KEY-----\nMIIEkey\n-----END PRIVATE KEY-----\n';
    expect(tierConfigOf({ redis: SEEDS }).redis.tls).toBeUndefined();
    expect(tierConfigOf({ redis: SEEDS, tls: false }).redis.tls).toBeUndefined();
    expect(tierConfigOf({ redis: SEEDS, tls: true }).redis.tls).toEqual({});
    expect(tierConfigOf({ redis: 'rediss://h:6380' }).redis.tls).toEqual({});
    const c = tierConfigOf({
      redis: SEEDS,
      username: 'hotshield',
      password: 'pw',
      tls: {
        ca: Buffer.from(ca),
        cert,
        key,
        servername: 'redis.internal',
        rejectUnauthorized: true,
      },
    });
    expect(c.redis).toMatchObject({
      kind: 'cluster',
      username: 'hotshield',
      password: 'pw',
      tls: { ca: [ca], cert, key, servername: 'redis.internal', rejectUnauthorized: true },
    });
    // Strings, not Buffers: the config crosses threads unchanged.
    expect(structuredClone(c)).toEqual(c);
    // A plain redis:// URL with a tls option is TLS too; the options win over the URL's.
    expect(
      tierConfigOf({ redis: 'redis://u:a@h:6379', password: 'b', tls: { ca: [ca, ca] } }).redis,
    ).toMatchObject({ username: 'u', password: 'b', tls: { ca: [ca, ca] } });
  });

  it("copies an ioredis client's credentials and the plain-data part of its TLS settings", () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n';
    const cluster = new Cluster([{ host: '10.0.0.1', port: 7000 }], {
      lazyConnect: true,
      redisOptions: {
        username: 'u',
        password: 'p',
        tls: {
          ca: Buffer.from(ca),
          servername: 'redis.internal',
          checkServerIdentity: () => undefined,
        },
      },
    });
    const standalone = new Redis({ host: '10.0.0.2', lazyConnect: true, tls: {} });
    try {
      expect(tierConfigOf({ redis: cluster }).redis).toEqual({
        kind: 'cluster',
        nodes: [{ host: '10.0.0.1', port: 7000 }],
        username: 'u',
        password: 'p',
        tls: { ca: [ca], servername: 'redis.internal' },
      });
      expect(tierConfigOf({ redis: standalone }).redis).toMatchObject({ port: 6379, tls: {} });
      expect(tierConfigOf({ redis: cluster, password: 'q', tls: true }).redis).toMatchObject({
        password: 'q',
        tls: {},
      });
    } finally {
      cluster.disconnect();
      standalone.disconnect();
    }
  });

  it('refuses bad TLS settings without echoing them (a key is a secret)', () => {
    const secret = 'not-a-pem-but-secret-material';
    const key = '-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----';
    const cert = '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----';
    const cases: Array<[unknown, RegExp]> = [
      ['yes', /^tls must be true, false or/],
      [{ ca: secret }, /^tls\.ca must be PEM text.*contents rather than its name/],
      [{ ca: [] }, /^tls\.ca must hold at least one/],
      [{ cert, key: secret }, /^tls\.key must be PEM/],
      [{ cert, key: cert }, /^tls\.key must be PEM/],
      [{ key }, /^tls\.cert and tls\.key go together/],
      [{ servername: 1 }, /^tls\.servername/],
      [{ rejectUnauthorized: 'no' }, /^tls\.rejectUnauthorized must be a boolean/],
      [{ passphrase: secret }, /^tls has an unknown field passphrase/],
    ];
    for (const [tls, message] of cases) {
      const e = optionError({ redis: SEEDS, tls });
      expect(e.code).toBe('HS_ERR_OPTION');
      expect(e.message).toMatch(message);
      expect(e.message).not.toContain(secret);
    }
  });

  it('allows turning the negative cache and serve-stale off with 0', () => {
    const c = tierConfigOf({ redis: SEEDS, negativeTtl: 0, staleTtl: '0ms' });
    expect(c.negativeTtlMs).toBe(0);
    expect(c.staleTtlMs).toBe(0);
  });
});
