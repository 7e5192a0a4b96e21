/**
 * RedisQueue's and RedisBlockingQueue's own options: declared here once, parsed by the
 * constructor (the shared ones are BaseQueue's).
 */
import { z } from 'zod';
import { boolean, millis, type DeclaresEvery } from '../../shared/options.js';
import { queueNameField, type QueueOptions } from '../base.js';

export interface RedisQueueOptions extends QueueOptions {
  /** First part of every key (`PREFIX:{name}:…`). Default: the URL's `?prefix=`, else 'taskmill'; same rules as a queue name. */
  prefix?: string;
  /**
   * A Redis Cluster (ioredis's Cluster client; every key of the queue shares one hash slot).
   * Default: the URL's `?cluster=`, else false. A URL naming several nodes needs it.
   */
  cluster?: boolean;
  /** RedisBlockingQueue: longest single blocking wait on the server. Default 5000 ms. */
  blockTimeoutMs?: number;
  /** Longest wait for a TCP connection (and for the first connection on open()). Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * A command without a reply after this long rejects and its connection is replaced (a silent
   * server or network path). Default 5000 ms; keep it under a third of the lease.
   */
  commandTimeoutMs?: number;
}

/** RedisQueue's and RedisBlockingQueue's own options (the shared ones are BaseQueue's). @internal */
export const REDIS_DEFAULTS = { prefix: 'taskmill', blockTimeoutMs: 5000, connectTimeoutMs: 5000, commandTimeoutMs: 5000 } as const;

/** @internal */
export const redisOptionsSchema = z.object({
  /** The options' prefix, else the URL's `?prefix=`. */
  prefix: queueNameField.default(REDIS_DEFAULTS.prefix),
  /** The options' cluster, else the URL's `?cluster=`. */
  cluster: boolean().optional(),
  blockTimeoutMs: millis(1).default(REDIS_DEFAULTS.blockTimeoutMs),
  connectTimeoutMs: millis(1).default(REDIS_DEFAULTS.connectTimeoutMs),
  commandTimeoutMs: millis(1).default(REDIS_DEFAULTS.commandTimeoutMs),
});
const _declared: DeclaresEvery<z.input<typeof redisOptionsSchema>, Omit<RedisQueueOptions, keyof QueueOptions>> = true;
