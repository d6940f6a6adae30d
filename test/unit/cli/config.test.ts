import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { envName, helpText, parseConfig, SETTINGS } from '../../../src/cli/config.ts';

function config(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const parsed = parseConfig(argv, env);
  if (parsed.help) throw new Error('unexpected --help');
  return parsed.config;
}

function refusal(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(argv, env);
  } catch (e) {
    expect((e as { code: string }).code).toBe('HS_ERR_OPTION');
    return (e as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('gateway configuration', () => {
  it('has defaults for everything, the local cluster when no --redis', () => {
    const c = config([]);
    expect(c).toMatchObject({
      redis: undefined,
      host: '127.0.0.1',
      port: 8080,
      threads: availableParallelism(),
      processes: 1,
      token: undefined,
      logLevel: 'info',
      tier: {},
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads flags and HOTSHIELD_* variables, flags winning', () => {
    const c = config(
      ['--soft-ttl', '5s', '--port', '9000', '--l1-bytes', '256mb', '--max-key-bytes', '200'],
      {
        HOTSHIELD_SOFT_TTL: '1s',
        HOTSHIELD_STALE_TTL: '1m',
        HOTSHIELD_REDIS: '10.0.0.1:7000,10.0.0.2:7000',
        HOTSHIELD_THREADS: '3',
        HOTSHIELD_TOKEN: 'a-long-enough-token',
      },
    );
    expect(c).toMatchObject({
      redis: '10.0.0.1:7000,10.0.0.2:7000',
      port: 9000,
      threads: 3,
      token: 'a-long-enough-token',
      tier: { softTtl: '5s', staleTtl: '1m', l1Bytes: '256mb', maxKeyBytes: 200 },
    });
  });

  it('names the flag and the variable when a value is wrong', () => {
    expect(refusal(['--soft-ttl', 'soon'])).toMatch(
      /^--soft-ttl \(HOTSHIELD_SOFT_TTL\) must be a duration/,
    );
    expect(refusal([], { HOTSHIELD_L1_BYTES: 'lots' })).toMatch(
      /^--l1-bytes \(HOTSHIELD_L1_BYTES\) must be a size/,
    );
    expect(refusal(['--port', '70000'])).toMatch(
      /^--port \(HOTSHIELD_PORT\) must be an integer from 0 to 65535/,
    );
    expect(refusal(['--threads', '0'])).toMatch(/--threads/);
    expect(refusal(['--processes', 'two'])).toMatch(/--processes/);
    expect(refusal(['--max-key-bytes=1.5'])).toMatch(/^--max-key-bytes/);
    expect(refusal(['--redis', 'nohost'])).toMatch(/^--redis \(HOTSHIELD_REDIS\).*host:port/);
    expect(refusal(['--log-level', 'loud'])).toMatch(/--log-level/);
    expect(refusal(['--token', 'short'])).toMatch(/--token.*16 characters/);
    expect(refusal(['--sofft-ttl', '3s'])).toMatch(/sofft-ttl.*--help/);
  });

  it('finds L1 sizes that cannot work before anything starts, naming every flag to change', () => {
    // The default --max-value-bytes (1mb) does not fit four times in a 2mb L1's main ring.
    const tooSmall = refusal(['--l1-bytes', '2mb']);
    expect(tooSmall).toMatch(/--max-value-bytes \(HOTSHIELD_MAX_VALUE_BYTES\)/);
    expect(tooSmall).toMatch(/--l1-bytes \(HOTSHIELD_L1_BYTES\)/);
    expect(tooSmall).toMatch(/raise --l1-bytes or lower --max-value-bytes/);
    expect(config(['--l1-bytes', '2mb', '--max-value-bytes', '256kb']).tier).toMatchObject({
      l1Bytes: '2mb',
      maxValueBytes: '256kb',
    });
    expect(refusal([], { HOTSHIELD_L1_BYTES: '256kb', HOTSHIELD_MAX_COUNTERS: '1024' })).toMatch(
      /--max-counters \(HOTSHIELD_MAX_COUNTERS\).*--l1-bytes/,
    );
  });

  it('logs readable lines on a terminal and JSON lines otherwise, unless --log-format says', () => {
    expect(config([]).logFormat).toBe('json');
    const terminal = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const parsed = parseConfig(argv, env, true);
      if (parsed.help) throw new Error('unexpected --help');
      return parsed.config.logFormat;
    };
    expect(terminal([])).toBe('pretty');
    expect(terminal(['--log-format', 'json'])).toBe('json');
    expect(terminal([], { HOTSHIELD_LOG_FORMAT: 'json' })).toBe('json');
    expect(config(['--log-format', 'pretty']).logFormat).toBe('pretty');
    expect(refusal(['--log-format', 'xml'])).toMatch(
      /^--log-format \(HOTSHIELD_LOG_FORMAT\) must be one of pretty, json/,
    );
  });

  it('takes Redis credentials from flags or variables and hands them to the tier', () => {
    const c = config(['--redis-username', 'hotshield'], {
      HOTSHIELD_REDIS_PASSWORD: 'pa ss:w@rd',
    });
    expect(c.tier).toMatchObject({ username: 'hotshield', password: 'pa ss:w@rd' });
    expect(c.tier.tls).toBeUndefined();
  });

  it('turns TLS on with --redis-tls or a PEM file, reading the files, naming them in errors', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hotshield-config-'));
    try {
      const ca = '-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n';
      const key = '-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n';
      const file = (name: string, text: string) => {
        writeFileSync(path.join(dir, name), text);
        return path.join(dir, name);
      };
      const [caFile, certFile, keyFile] = [
        file('ca.pem', ca),
        file('c.pem', ca),
        file('k.pem', key),
      ];
      expect(config(['--redis-tls']).tier.tls).toEqual({});
      expect(config([], { HOTSHIELD_REDIS_TLS: 'yes' }).tier.tls).toEqual({});
      expect(config([], { HOTSHIELD_REDIS_TLS: '0' }).tier.tls).toBeUndefined();
      const c = config(['--redis-ca', caFile], {
        HOTSHIELD_REDIS_CERT: certFile,
        HOTSHIELD_REDIS_KEY: keyFile,
      });
      expect(c.tier.tls).toEqual({ ca, cert: ca, key });
      expect(Object.isFrozen(c.tier.tls)).toBe(true);
      expect(refusal([], { HOTSHIELD_REDIS_TLS: 'maybe' })).toMatch(
        /^--redis-tls \(HOTSHIELD_REDIS_TLS\) must be true or false/,
      );
      expect(refusal(['--redis-ca', path.join(dir, 'none.pem')])).toMatch(
        /^--redis-ca \(HOTSHIELD_REDIS_CA\): cannot read ".*none\.pem" \(ENOENT\)/,
      );
      expect(refusal(['--redis-ca', caFile], { HOTSHIELD_REDIS_TLS: 'false' })).toMatch(
        /^--redis-ca .*needs TLS/,
      );
      // A key file that is not a key: the flag is named, the contents are not shown.
      const bad = refusal(['--redis-cert', certFile, '--redis-key', certFile]);
      expect(bad).toMatch(/^--redis-key \(HOTSHIELD_REDIS_KEY\) must be PEM text/);
      expect(refusal(['--redis-key', keyFile])).toMatch(
        /^--redis-cert \(HOTSHIELD_REDIS_CERT\) and --redis-key \(HOTSHIELD_REDIS_KEY\) go together/,
      );
      const notPem = file('notpem.txt', 'secret-key-material');
      const message = refusal(['--redis-ca', notPem]);
      expect(message).toMatch(/^--redis-ca \(HOTSHIELD_REDIS_CA\) must be PEM text/);
      expect(message).not.toContain('secret-key-material');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('documents every flag with its variable in --help', () => {
    expect(parseConfig(['--help'], {})).toEqual({ help: true });
    const help = helpText();
    for (const name of Object.keys(SETTINGS) as Array<keyof typeof SETTINGS>) {
      expect(help).toContain(`--${name}`);
      expect(help).toContain(envName(name));
    }
    expect(help).toMatch(/--redis-tls {2,}HOTSHIELD_REDIS_TLS/);
  });
});

describe('redactRedis', () => {
  it('hides the password of a redis:// URL and leaves seeds alone', async () => {
    const { redactRedis } = await import('../../../src/cli/supervisor.ts');
    expect(redactRedis('redis://app:s3cret@10.0.0.1:6379/0')).toBe(
      'redis://app:***@10.0.0.1:6379/0',
    );
    expect(redactRedis('rediss://:s3cret@host:6380')).toBe('rediss://:***@host:6380');
    expect(redactRedis('10.0.0.1:7000,10.0.0.2:7000')).toBe('10.0.0.1:7000,10.0.0.2:7000');
  });
});
