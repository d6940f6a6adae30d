/**
 * The `hotshield` command: the gateway (`hotshield top …`: the live view of a gateway's
 * hot keys, top.ts). The node:cluster primary supervises the gateway
 * processes (supervisor.ts); each gateway process runs the tier and its HTTP threads
 * (gateway/process.ts). Exit status 2 for invalid configuration, with a message naming
 * the flag.
 */

import cluster from 'node:cluster';
import { startGatewayProcess } from '../gateway/process.ts';
import { createLogger } from '../log.ts';
import { ConfigError, type GatewayConfig, helpText, parseConfig } from './config.ts';
import {
  DRAIN_DEADLINE_MS,
  LISTENING_MESSAGE,
  redactRedis,
  runPrimary,
  SHUTDOWN_MESSAGE,
} from './supervisor.ts';
import { parseTopArgs, runTop } from './top.ts';

async function runGatewayProcess(config: GatewayConfig): Promise<void> {
  const log = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    base: { pid: process.pid, role: 'gateway' },
  });
  const redis = config.redis;
  if (redis === undefined)
    throw new ConfigError('--redis (HOTSHIELD_REDIS) is required in a gateway process');
  // Listen for a stop before starting: a shutdown that arrives while the tier and the
  // threads come up is honoured as soon as they are up, not lost.
  let gateway: Awaited<ReturnType<typeof startGatewayProcess>> | undefined;
  let stopRequested = false;
  let draining = false;
  const drain = async (): Promise<void> => {
    stopRequested = true;
    if (draining || gateway === undefined) return;
    draining = true;
    await gateway.drain(DRAIN_DEADLINE_MS);
    log.info('gateway process drained');
    process.exit(0);
  };
  process.on('message', (m) => {
    if (m === SHUTDOWN_MESSAGE) void drain();
  });
  // The primary decides when to stop (a Ctrl-C reaches the whole process group).
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => void drain());
  gateway = await startGatewayProcess(config, redis, log);
  log.info(
    { host: config.host, port: gateway.port, threads: config.threads, redis: redactRedis(redis) },
    'gateway process listening',
  );
  process.send?.(LISTENING_MESSAGE);
  if (stopRequested) await drain();
}

try {
  const argv = process.argv.slice(2);
  if (argv[0] === 'top' && cluster.isPrimary) {
    await runTop(parseTopArgs(argv.slice(1), process.env));
    process.exit(0);
  }
  const parsed = parseConfig(argv, process.env, process.stdout.isTTY === true);
  if (parsed.help) {
    console.log(helpText());
  } else if (cluster.isPrimary) {
    const log = createLogger({
      level: parsed.config.logLevel,
      format: parsed.config.logFormat,
      base: { pid: process.pid, role: 'supervisor' },
    });
    await runPrimary(parsed.config, log);
  } else {
    await runGatewayProcess(parsed.config);
  }
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`hotshield: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
