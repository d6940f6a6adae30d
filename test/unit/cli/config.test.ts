import { availableParallelism } from 'node:os';
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

  it('documents every flag with its variable in --help', () => {
    expect(parseConfig(['--help'], {})).toEqual({ help: true });
    const help = helpText();
    for (const name of Object.keys(SETTINGS) as Array<keyof typeof SETTINGS>) {
      expect(help).toContain(`--${name}`);
      expect(help).toContain(envName(name));
    }
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
