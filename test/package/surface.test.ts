/**
 * The public surface, name by name: `taskmill` (an application's),
 * `taskmill/backends` (a backend author's) and `taskmill/testing`. A name
 * added to or dropped from an entry point fails here until this list says so
 * — the contract changes on purpose, never by an export slipping in.
 */
import { describe, expect, it } from 'vitest';
import * as taskmill from '../../src/index.js';
import * as backends from '../../src/backends/api.js';
import * as testing from '../../src/testing/index.js';

const names = (module: object) => Object.keys(module).sort();

describe('the public surface', () => {
  it('taskmill', () => {
    expect(names(taskmill)).toEqual(
      [
        'BaseQueue',
        'CommandRegistry',
        'CommandTimeoutError',
        'ConfigError',
        'DEFAULT_INSPECT_PORT',
        'DatabaseQueue',
        'GroupJob',
        'Job',
        'JobCancelledError',
        'JobEvents',
        'JobExpiredError',
        'JobFailedError',
        'JobResultTimeoutError',
        'JobRevokedError',
        'LeaseLostError',
        'MemoryQueue',
        'MessageDecodeError',
        'PayloadTooLargeError',
        'PostgresQueue',
        'QueueConnectionError',
        'QueueEvents',
        'RedisBlockingQueue',
        'RedisQueue',
        'Retry',
        'SerializationError',
        'SqliteQueue',
        'TaskmillError',
        'UnknownCommandError',
        'WorkerLostError',
        'autodiscover',
        'closeQueues',
        'configure',
        'createConsumer',
        'createDashboard',
        'createInspectLog',
        'createQueue',
        'cronSchedule',
        'crontab',
        'group',
        'jobEvents',
        'periodicCommand',
        'pipeline',
        'queueCommand',
        'queueEvents',
        'registry',
        'retryFailed',
        'startInspector',
      ].sort(),
    );
  });

  it('DatabaseQueue is the seed’s name for PostgresQueue', () => {
    expect(taskmill.DatabaseQueue).toBe(taskmill.PostgresQueue);
  });

  it('taskmill/backends', () => {
    expect(names(backends)).toEqual(
      [
        'BaseQueue',
        'ConfigError',
        'LeaseLostError',
        'MAX_EVENTS',
        'MAX_PRIORITY',
        'MIN_PRIORITY',
        'QueueConnectionError',
        'TaskmillError',
        'checkKeyTtl',
        'checkPriority',
        'checkStartGates',
        'checkUniqueKey',
        'redactText',
        'reserveAt',
        'redactUrl',
        'validateQueueName',
      ].sort(),
    );
    expect(backends.BaseQueue).toBe(taskmill.BaseQueue);
  });

  it('taskmill/testing', () => {
    expect(names(testing)).toEqual(['readerMachine', 'runContractSuite', 'schedulerMachine', 'supervisorMachine', 'workerMachine'].sort());
  });
});
