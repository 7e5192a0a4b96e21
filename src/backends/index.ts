/**
 * createQueue(url): the one place a queue URL becomes a backend instance.
 */
import { parseQueueUrl } from '../shared/config.js';
import type { BaseQueue, QueueOptions } from './base.js';
import { MemoryQueue } from './memory/queue.js';
import { SqliteQueue, type SqliteQueueOptions } from './sqlite/queue.js';
import { DatabaseQueue, PostgresQueue, type DatabaseQueueOptions, type PostgresQueueOptions } from './postgres/queue.js';
import { RedisBlockingQueue, RedisQueue, type RedisQueueOptions } from './redis/queue.js';

export type CreateQueueOptions = QueueOptions & SqliteQueueOptions & PostgresQueueOptions & RedisQueueOptions;

/**
 * 'memory://NAME' | 'sqlite:PATH' | 'postgres://…' | 'redis://host:port/db[?blocking=true]' | 'host:port:db'.
 * Throws ConfigError (with the URL redacted) for anything else.
 */
export function createQueue(url: string, options: CreateQueueOptions = {}): BaseQueue {
  const target = parseQueueUrl(url);
  switch (target.kind) {
    case 'memory':
      return new MemoryQueue(target.store, options);
    case 'sqlite':
      return new SqliteQueue(target.path, options);
    case 'postgres':
      return new PostgresQueue(target.url, options);
    case 'redis':
      return target.blocking ? new RedisBlockingQueue(target.url, options) : new RedisQueue(target.url, options);
  }
}

export { BaseQueue, QUEUE_NAME_PATTERN, validateQueueName } from './base.js';
export type { FailedMessage, QueueMessage, QueueOptions, QueueStats, ResultRecord, WriteOptions } from './base.js';
export { MemoryQueue, SqliteQueue, PostgresQueue, DatabaseQueue, RedisQueue, RedisBlockingQueue };
export type { SqliteQueueOptions, PostgresQueueOptions, DatabaseQueueOptions, RedisQueueOptions };
