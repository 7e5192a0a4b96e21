/**
 * taskmill's public surface: what an application imports. A backend author's
 * surface is `taskmill/backends` (backends/api.ts); tests' is
 * `taskmill/testing` (testing/index.ts). Nothing else is public.
 */
export {
  queueCommand,
  periodicCommand,
  type CommandOptions,
  type CommandFunction,
  type JobContext,
  type QueuedCommand,
  type PeriodicCommand,
  type RegisteredCommand,
  type ScheduleWhen,
  type UniqueOptions,
  type DropFirst,
} from './producer/commands.js';
export type { RateLimitOptions, ConcurrencyOptions } from './producer/gates.js';
export type { Pool } from './pool/kinds.js';
export { Job } from './producer/job.js';
export { queueEvents, QueueEvents, type QueueEvent, type QueueEventsMap, type QueueEventsOptions, type MissedEvents } from './producer/queue-events.js';
export { pipeline, group, GroupJob, type Step, type GroupBuilder, type GroupResults } from './producer/composition.js';
export { registry, CommandRegistry } from './producer/registry.js';
export { configure, closeQueues, type TaskmillSettings } from './producer/settings.js';
export { autodiscover } from './producer/autodiscover.js';
export {
  Retry,
  JobFailedError,
  JobRevokedError,
  JobExpiredError,
  JobCancelledError,
  JobResultTimeoutError,
  type JobStatus,
  type RemoteError,
} from './producer/results.js';
export { retryFailed } from './producer/admin.js';
export { startInspector, createInspectLog, DEFAULT_INSPECT_PORT, type InspectorOptions, type InspectorRelay, type InspectLog } from './inspect/index.js';
export { jobEvents, JobEvents, type JobEventMap, type JobEventName } from './producer/hooks.js';
export { crontab, cronSchedule, type Schedule, type CrontabFields, type ScheduleOptions } from './schedule/crontab.js';
export { createDashboard, type Dashboard, type DashboardOptions } from './dashboard/api.js';
export { createConsumer, type Consumer, type ConsumerOptions, type ControlEvent, type StopResult } from './consumer/consumer.js';
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
} from './shared/errors.js';

// One instance per install, whichever way it was loaded: index.cjs (the
// `require` entry) hands out this module when it has already been imported.
// Without it, a CommonJS command module loaded through tsx's require hook
// would get a transformed second copy with its own (empty) registry.
import * as taskmill from './index.js';
import { sharedInstanceKey } from './shared/instance-key.js';
(globalThis as Record<symbol, unknown>)[sharedInstanceKey(import.meta.url)] ??= taskmill;
