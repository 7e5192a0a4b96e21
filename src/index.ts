/**
 * taskmill's public surface: what an application imports. A backend author's
 * surface is `taskmill/backends` (backends/api.ts); tests' is
 * `taskmill/testing` (testing/index.ts). Nothing else is public.
 */
export {
  queueCommand,
  periodicCommand,
  registry,
  autodiscover,
  configure,
  closeQueues,
  Job,
  CommandRegistry,
  type CommandOptions,
  type CommandFunction,
  type JobContext,
  type QueuedCommand,
  type PeriodicCommand,
  type RegisteredCommand,
  type TaskmillSettings,
  type ScheduleWhen,
} from './commands.js';
export {
  Retry,
  JobFailedError,
  JobRevokedError,
  JobExpiredError,
  JobResultTimeoutError,
  type JobStatus,
  type RemoteError,
} from './results.js';
export { retryFailed } from './admin.js';
export { startInspector, createInspectLog, DEFAULT_INSPECT_PORT, type InspectorOptions, type InspectorRelay, type InspectLog } from './inspect.js';
export { jobEvents, JobEvents, type JobEventMap, type JobEventName } from './hooks.js';
export { crontab, cronSchedule, type Schedule, type CrontabFields, type ScheduleOptions } from './crontab.js';
export { createConsumer, type Consumer, type ConsumerOptions, type ControlEvent, type StopResult } from './consumer.js';
export {
  createQueue,
  BaseQueue,
  MemoryQueue,
  SqliteQueue,
  PostgresQueue,
  DatabaseQueue,
  RedisQueue,
  RedisBlockingQueue,
  type CreateQueueOptions,
  type FailedMessage,
  type QueueMessage,
  type QueueOptions,
  type QueueStats,
  type WriteOptions,
  type SqliteQueueOptions,
  type PostgresQueueOptions,
  type DatabaseQueueOptions,
  type RedisQueueOptions,
} from './backends/index.js';
export {
  TaskmillError,
  ConfigError,
  SerializationError,
  PayloadTooLargeError,
  MessageDecodeError,
  UnknownCommandError,
  LeaseLostError,
  WorkerLostError,
  QueueConnectionError,
  CommandTimeoutError,
} from './errors.js';

// One instance per install, whichever way it was loaded: index.cjs (the
// `require` entry) hands out this module when it has already been imported.
// Without it, a CommonJS command module loaded through tsx's require hook
// would get a transformed second copy with its own (empty) registry.
import * as taskmill from './index.js';
import { sharedInstanceKey } from './shared-instance.js';
(globalThis as Record<symbol, unknown>)[sharedInstanceKey(import.meta.url)] ??= taskmill;
