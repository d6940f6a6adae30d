/**
 * The gateway's configuration: command-line flags and HOTSHIELD_* environment variables
 * (a flag wins over its variable), validated eagerly and frozen. Flag, variable and tier
 * option are the same name in three spellings: `--soft-ttl`, `HOTSHIELD_SOFT_TTL`,
 * `softTtl`. An invalid value is a ConfigError naming the flag and the variable.
 */

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { type DefaultedOption, shownDefault, TIER_DEFAULTS } from '../defaults.ts';
import { HotshieldError } from '../errors.ts';
import type { GatewayProcessConfig } from '../gateway/process.ts';
import { LOG_FORMATS, type LogFormat } from '../log.ts';
import { type RedisTlsOptions, type TierOptions, tierConfigOf } from '../tier/index.ts';

type TierSetting = Exclude<keyof TierOptions, 'redis' | 'tls' | 'codec'>;

export interface Setting {
  /** Tier option it feeds, if any (its default is the tier's: src/defaults.ts). */
  tier?: TierSetting;
  /** The tier option is a plain integer (durations and sizes parse strings themselves). */
  integer?: true;
  /** A flag without a value; its variable takes true/false, 1/0, yes/no, on/off. */
  boolean?: true;
  /** Names a PEM file whose contents go into this field of the tier's `tls` option. */
  tlsFile?: 'ca' | 'cert' | 'key';
  /** The default as --help shows it, for a setting that is not a tier option. */
  shown?: string;
  help: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The gateway's own defaults (the tier's are in src/defaults.ts). */
export const GATEWAY_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  processes: 1,
  logLevel: 'info',
} as const satisfies Partial<GatewayConfig>;

/** Every flag, in --help order. Names are the public contract. */
export const SETTINGS = {
  redis: {
    help: 'Redis Cluster seeds host:port,… or a redis:// or rediss:// URL (standalone)',
    shown: 'a throwaway local cluster',
  },
  'redis-username': { tier: 'username', help: 'Redis ACL user', shown: 'the default user' },
  'redis-password': {
    tier: 'password',
    help: 'Redis password (AUTH); prefer the variable, a flag shows in ps',
  },
  'redis-tls': { boolean: true, help: 'connect to Redis over TLS (every cluster node)' },
  'redis-ca': {
    tlsFile: 'ca',
    help: 'PEM file of the CA that signed the Redis certificates; implies --redis-tls',
  },
  'redis-cert': {
    tlsFile: 'cert',
    help: 'PEM client certificate, for Redis that verifies clients; with --redis-key',
  },
  'redis-key': { tlsFile: 'key', help: 'PEM private key of --redis-cert' },
  host: { help: 'address to listen on', shown: GATEWAY_DEFAULTS.host },
  port: { help: 'port to listen on', shown: String(GATEWAY_DEFAULTS.port) },
  threads: { help: 'HTTP threads per process', shown: 'available parallelism' },
  processes: {
    help: 'gateway processes, each with its own L1',
    shown: String(GATEWAY_DEFAULTS.processes),
  },
  'l1-bytes': { tier: 'l1Bytes', help: 'L1 byte budget per process, e.g. 256mb' },
  'memo-bytes': {
    tier: 'memoBytes',
    help: 'per HTTP thread: recent replies kept ready, re-validated against L1 (0 disables)',
  },
  'soft-ttl': { tier: 'softTtl', help: 'refresh a cached value after this age, e.g. 3s' },
  'stale-ttl': {
    tier: 'staleTtl',
    help: 'serve a value this long past soft-ttl while Redis fails',
  },
  'negative-ttl': { tier: 'negativeTtl', help: 'remember absent keys this long (0 disables)' },
  'request-timeout': { tier: 'requestTimeout', help: 'longest a request waits for Redis' },
  'l2-timeout': { tier: 'l2Timeout', help: 'deadline of one Redis call' },
  'max-key-bytes': { tier: 'maxKeyBytes', integer: true, help: 'longest key in UTF-8 bytes' },
  'max-value-bytes': { tier: 'maxValueBytes', help: 'largest value, e.g. 1mb' },
  'counter-shards': {
    tier: 'counterShards',
    integer: true,
    help: 'shard keys per counter, 1-256; the same on every process',
  },
  'flush-interval': {
    tier: 'flushInterval',
    help: 'how often counter increments are flushed to Redis',
  },
  'max-counters': {
    tier: 'maxCounters',
    integer: true,
    help: 'distinct counters per process, a power of two',
  },
  coherence: {
    tier: 'coherence',
    help: 'drop a key from L1 as soon as Redis says it changed, whoever wrote it (on or off)',
  },
  'hot-keys': {
    tier: 'hotKeys',
    help: 'count reads and writes per key in shared memory and keep the hot set: /v1/hotkeys (on or off)',
  },
  'hot-threshold': {
    tier: 'hotThreshold',
    integer: true,
    help: 'reads a second from which a key is hot: logged when crossed, refreshed ahead',
  },
  'hot-key-metrics': {
    boolean: true,
    help: 'export the hottest keys themselves in /metrics (keys become labels: unbounded, maybe sensitive)',
    shown: 'off',
  },
  token: {
    help: 'bearer token required for writes',
    shown: 'none: only loopback clients may write',
  },
  'log-level': {
    help: LOG_LEVELS.filter((l) => l !== 'silent').join(', '),
    shown: GATEWAY_DEFAULTS.logLevel,
  },
  'log-format': {
    help: 'pretty (readable lines) or json (one JSON object a line)',
    shown: 'pretty on a terminal, json otherwise',
  },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

export interface GatewayConfig extends GatewayProcessConfig {
  /** Undefined: start a throwaway local cluster. */
  redis: string | undefined;
  processes: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

export class ConfigError extends HotshieldError {
  constructor(message: string) {
    super('HS_ERR_OPTION', message);
    this.name = 'ConfigError';
  }
}

export function envName(setting: SettingName): string {
  return `HOTSHIELD_${setting.toUpperCase().replaceAll('-', '_')}`;
}

function label(setting: SettingName): string {
  return `--${setting} (${envName(setting)})`;
}

function oneOf<T extends string>(setting: SettingName, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new ConfigError(`${label(setting)} must be one of ${allowed.join(', ')} (got "${value}")`);
}

function integer(
  setting: SettingName,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < min || n > max) {
    throw new ConfigError(
      `${label(setting)} must be an integer from ${min} to ${max} (got "${raw}")`,
    );
  }
  return n;
}

export function helpText(): string {
  const lines = [
    'Usage: hotshield [flags]',
    '',
    'Every flag can also be set with its environment variable.',
    '',
  ];
  for (const [name, s] of Object.entries(SETTINGS) as Array<[SettingName, Setting]>) {
    const flag = s.boolean
      ? `  --${name}`
      : `  --${name} ${s.tlsFile === undefined ? '<value>' : '<file>'}`;
    const shown = defaultOf(s);
    const help = shown === undefined ? s.help : `${s.help} (default ${shown})`;
    lines.push(flag.padEnd(28) + envName(name).padEnd(28) + help);
  }
  lines.push(`${'  --help'.padEnd(56)}print this and exit`);
  lines.push('', 'Durations take 500ms, 3s, 2m or milliseconds; sizes take 64kb, 256mb or bytes.');
  return lines.join('\n');
}

/** A setting's default as --help shows it: the tier's (src/defaults.ts) or the gateway's own. */
export function defaultOf(s: Setting): string | undefined {
  if (s.tier !== undefined && Object.hasOwn(TIER_DEFAULTS, s.tier))
    return shownDefault(s.tier as DefaultedOption);
  return s.shown;
}

/**
 * Parse `argv` (without node and script) and `env`; `help` true means print helpText().
 * `terminal`: stdout is a terminal (the log format's default).
 */
export function parseConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  terminal = false,
): { help: true } | { help: false; config: GatewayConfig } {
  const options = Object.fromEntries(
    (Object.entries(SETTINGS) as Array<[SettingName, Setting]>).map(([name, s]) => [
      name,
      { type: s.boolean ? ('boolean' as const) : ('string' as const) },
    ]),
  ) as Record<SettingName, { type: 'string' | 'boolean' }>;
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: 'boolean' } },
      strict: true,
    });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; see --help`);
  }
  if (parsed.values.help === true) return { help: true };
  const raw = (name: SettingName): string | undefined => {
    const flag = parsed.values[name] as string | boolean | undefined;
    const v = typeof flag === 'boolean' ? String(flag) : (flag ?? env[envName(name)]);
    return v === '' ? undefined : v;
  };
  const tier: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(SETTINGS) as Array<[SettingName, Setting]>) {
    const v = raw(name);
    if (s.tier !== undefined && v !== undefined)
      tier[s.tier] = s.integer && /^\d+$/.test(v) ? Number(v) : v;
  }
  const tls = tlsOf(raw);
  if (tls !== undefined) tier.tls = Object.freeze(tls);
  const redis = raw('redis');
  // The tier validates its own options; its messages name the option, ours the flag.
  try {
    tierConfigOf({ redis: redis ?? '127.0.0.1:6379', ...tier });
  } catch (error) {
    throw rename(error);
  }
  const logLevel = oneOf('log-level', raw('log-level') ?? GATEWAY_DEFAULTS.logLevel, LOG_LEVELS);
  const logFormat = oneOf(
    'log-format',
    raw('log-format') ?? (terminal ? 'pretty' : 'json'),
    LOG_FORMATS,
  );
  const token = raw('token');
  if (token !== undefined && token.length < 16) {
    throw new ConfigError(`${label('token')} must be at least 16 characters`);
  }
  return {
    help: false,
    config: Object.freeze({
      redis,
      host: raw('host') ?? GATEWAY_DEFAULTS.host,
      port: integer('port', raw('port'), GATEWAY_DEFAULTS.port, 0, 65535),
      threads: integer('threads', raw('threads'), availableParallelism(), 1, 256),
      processes: integer('processes', raw('processes'), GATEWAY_DEFAULTS.processes, 1, 64),
      tier: Object.freeze(tier) as Omit<TierOptions, 'redis'>,
      token,
      hotKeyMetrics: onOff('hot-key-metrics', raw('hot-key-metrics')),
      logLevel,
      logFormat,
    }),
  };
}

/** A gateway switch (a flag without a value, or its variable: true/false, 1/0, yes/no, on/off); default off. */
function onOff(name: SettingName, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${label(name)} must be true or false (got "${value}")`);
}

/**
 * The tier's `tls` option from --redis-tls and the PEM files (read here: the tier takes
 * their contents). A file implies TLS. Messages name files, never their contents.
 */
function tlsOf(raw: (name: SettingName) => string | undefined): RedisTlsOptions | undefined {
  const on = raw('redis-tls');
  const enabled = on === undefined ? undefined : onOff('redis-tls', on);
  const tls: Record<string, string> = {};
  for (const [name, s] of Object.entries(SETTINGS) as Array<[SettingName, Setting]>) {
    const file = s.tlsFile === undefined ? undefined : raw(name);
    if (s.tlsFile === undefined || file === undefined) continue;
    if (enabled === false)
      throw new ConfigError(`${label(name)} needs TLS, but ${label('redis-tls')} is false`);
    try {
      tls[s.tlsFile] = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(
        `${label(name)}: cannot read "${file}" (${(error as NodeJS.ErrnoException).code ?? error})`,
      );
    }
  }
  if ((tls.cert === undefined) !== (tls.key === undefined))
    throw new ConfigError(`${label('redis-cert')} and ${label('redis-key')} go together`);
  return enabled === true || Object.keys(tls).length > 0 ? tls : undefined;
}

/** The tier option (or `tls` field) whose messages a flag's value can cause. */
function optionOf(name: SettingName, s: Setting): string | undefined {
  if (s.tier !== undefined) return s.tier;
  if (s.tlsFile !== undefined) return `tls.${s.tlsFile}`;
  if (name === 'redis-tls') return 'tls';
  return name === 'redis' ? 'redis' : undefined;
}

/**
 * A tier option error, re-worded to name the flags and variables the user set: the
 * option a message starts with (every option check's message does), and every other
 * option it names by its camelCase name (the L1 sizing rules name two at once).
 */
function rename(error: unknown): unknown {
  if (!(error instanceof HotshieldError)) return error;
  let message = error.message;
  const named = new Set<SettingName>();
  for (const [name, s] of Object.entries(SETTINGS) as Array<[SettingName, Setting]>) {
    const option = optionOf(name, s);
    if (option !== undefined && new RegExp(`^${escaped(option)}(?![\\w.])`).test(message)) {
      message = message.replace(option, label(name));
      named.add(name);
      break;
    }
  }
  for (const [name, s] of Object.entries(SETTINGS) as Array<[SettingName, Setting]>) {
    const option = optionOf(name, s);
    // A plain word ("redis", "password") is plain English too: only camelCase names.
    if (option === undefined || !/[A-Z]/.test(option)) continue;
    message = message.replace(new RegExp(`(?<![\\w.-])${escaped(option)}(?![\\w.])`, 'g'), () => {
      const first = !named.has(name);
      named.add(name);
      return first ? label(name) : `--${name}`;
    });
  }
  return new ConfigError(message);
}

function escaped(option: string): string {
  return option.replace('.', '\\.');
}
