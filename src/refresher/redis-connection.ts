/**
 * Opening the refresher's ioredis client for a RedisTarget, with the settings a cache
 * wants: no offline queue (a call while the cluster is down fails at once instead of
 * queueing without bound), an explicit slot refresh period (ioredis 5 and 6 leave it
 * off), per-node command and connect timeouts.
 */

import { Cluster, Redis } from 'ioredis';
import type { RedisTarget } from './redis-target.ts';

export interface ConnectionSettings {
  /** ioredis' per-node timeout of a command written to a connection. */
  commandTimeout: number;
  connectTimeout: number;
  slotsRefreshInterval: number;
}

export function openClient(target: RedisTarget, settings: ConnectionSettings): Cluster | Redis {
  const { commandTimeout, connectTimeout, slotsRefreshInterval } = settings;
  // The same credentials and TLS settings for every node: ioredis Cluster gives
  // redisOptions to each node connection, seeds and nodes found in the slot map alike.
  const auth = { username: target.username, password: target.password, tls: target.tls };
  if (target.kind === 'standalone') {
    return new Redis({
      ...auth,
      host: target.host,
      port: target.port,
      db: target.db,
      enableOfflineQueue: false,
      commandTimeout,
      connectTimeout,
      maxRetriesPerRequest: 1,
    });
  }
  return new Cluster(target.nodes, {
    enableOfflineQueue: false,
    slotsRefreshInterval,
    slotsRefreshTimeout: connectTimeout,
    scaleReads: 'master',
    redisOptions: { ...auth, commandTimeout, connectTimeout },
  });
}
