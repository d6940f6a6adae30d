/**
 * Typed errors of the local Redis Cluster launcher (dev, tests, benchmarks).
 *
 * The `code` is the stable contract: it survives `postMessage` and structured clone
 * where the class does not, so callers and tests match on `code`, never on `message`.
 */

export type DevClusterErrorCode =
  | 'HS_ERR_REDIS_SERVER_MISSING'
  | 'HS_ERR_INVALID_CLUSTER_OPTION'
  | 'HS_ERR_REDIS_NODE_START'
  | 'HS_ERR_CLUSTER_NOT_READY';

export class DevClusterError extends Error {
  readonly code: DevClusterErrorCode;

  constructor(code: DevClusterErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class RedisServerMissingError extends DevClusterError {
  constructor(command: string) {
    super(
      'HS_ERR_REDIS_SERVER_MISSING',
      `redis-server not found (looked for "${command}"${command.includes('/') ? '' : ' on PATH'}). ` +
        'The local Redis Cluster needs Redis >= 7.0: on Debian/Ubuntu run ' +
        '`apt-get install redis-server`, or pass options.redisServerPath.',
    );
  }
}

export class InvalidClusterOptionError extends DevClusterError {
  constructor(message: string) {
    super('HS_ERR_INVALID_CLUSTER_OPTION', message);
  }
}

export class RedisNodeStartError extends DevClusterError {
  /** True when redis-server could not bind its port: a retry on another port may work. */
  readonly portInUse: boolean;

  constructor(message: string, portInUse = false) {
    super('HS_ERR_REDIS_NODE_START', message);
    this.portInUse = portInUse;
  }
}

export class ClusterNotReadyError extends DevClusterError {
  constructor(message: string, options?: ErrorOptions) {
    super('HS_ERR_CLUSTER_NOT_READY', message, options);
  }
}
