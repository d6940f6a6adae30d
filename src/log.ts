/**
 * The gateway's logger: pino, as JSON lines (one object a line, for a log collector) or,
 * on a terminal, as readable lines through pino-pretty. Every thread makes its own with
 * the format the supervisor decided, so all of a gateway's lines look the same. Tokens,
 * Redis passwords and TLS keys are never logged (test/fault/security-*.test.ts).
 */

import { createRequire } from 'node:module';
import { type Logger, pino } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogSettings {
  level: string;
  format: LogFormat;
  /** Fields on every line (pid, role, thread). */
  base: Record<string, unknown>;
}

export function createLogger(settings: LogSettings): Logger {
  const options = { level: settings.level, base: settings.base };
  if (settings.format === 'json') return pino(options);
  // Loaded only for a terminal: a gateway logging JSON never pays for the prettifier.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  // Synchronous: a line written just before the process exits (a fatal error) is not lost.
  return pino(options, pretty({ colorize: true, sync: true, destination: 1 }));
}
