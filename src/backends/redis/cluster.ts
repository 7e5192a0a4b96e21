/**
 * Redis Cluster (`redis://h1:p1,h2:p2/?cluster=true`, or the `cluster` option): the
 * connections of a queue become ioredis Cluster clients. Nothing else changes: every key
 * of a queue carries the hash tag `{name}` (scripts.ts), so the whole queue lives in one
 * slot, every script's keys are declared in KEYS and route it to that slot's master, and a
 * blocking BLPOP on the wake-up key goes to the same master as the writes that push it.
 *
 * A failover (the slot's master dies, its replica is promoted after
 * cluster-node-timeout) looks like an outage of that length to the queue: commands fail
 * with QueueConnectionError until ioredis has the new slot map, and readers retry.
 */
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { ioredis } from '../drivers.js';
import { replyText, type RedisTarget } from './wire.js';

/** A connection of a queue: one server, or a cluster. Both take the same commands and scripts. */
export type RedisClient = Redis | Cluster;

/**
 * A Cluster client seeded with every node of the URL. `options` are one node's (as for a
 * single server); the ones that are the cluster's own in ioredis move up: the reconnect
 * strategy (of the whole cluster: a node that dies is dropped and found again through the
 * slot map) and the offline queue.
 */
export function createCluster(target: RedisTarget, options: RedisOptions): Cluster {
  const { retryStrategy, enableOfflineQueue, host: _host, port: _port, db: _db, lazyConnect: _lazy, ...node } = { ...target.options, ...options };
  const clusterOptions: ClusterOptions = {
    lazyConnect: true,
    redisOptions: node,
    ...(retryStrategy === undefined ? {} : { clusterRetryStrategy: retryStrategy }),
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
  };
  return new (ioredis().Cluster)(target.nodes, clusterOptions);
}

/**
 * Errors of a cluster command that mean "its master is unreachable" rather than "the command
 * was refused": ioredis's Cluster client stays ready through a failover, so the queue learns
 * of the outage (and reports it once) from these.
 */
const OUTAGE =
  /Too many Cluster redirections|CLUSTERDOWN|Connection is closed|Failed to refresh slots cache|Command timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE/;

export function isClusterOutage(error: unknown): boolean {
  return error instanceof Error && OUTAGE.test(error.message);
}

/**
 * `CONFIG GET maxmemory-policy` of the server, or of every master of a cluster: one master
 * that evicts is enough to lose the queues whose slots it holds.
 */
export async function evictionPolicies(client: RedisClient): Promise<string[]> {
  const servers: Redis[] = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  const replies = (await Promise.all(servers.map((server) => server.call('CONFIG', 'GET', 'maxmemory-policy')))) as unknown[][];
  return replies.flatMap((reply) => (reply?.[1] === undefined ? [] : [replyText(reply[1])]));
}
