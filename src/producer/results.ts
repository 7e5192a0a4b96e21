/**
 * Result records: what the consumer stores under a job id when the job
 * completes, fails, is retried, revoked or expires — and the errors
 * `job.result()` throws for them. The record is JSON; a return value is
 * kept as its tagged serialization (the same closed set of types as args).
 */
import { TaskmillError, toError } from '../shared/errors.js';
import { deserializeValue } from '../codec/message.js';

export type JobStatus = 'pending' | 'completed' | 'failed' | 'retrying' | 'revoked' | 'expired' | 'cancelled';

export interface RemoteError {
  name: string;
  message: string;
  stack: string | undefined;
}

export interface ResultRecordData {
  status: Exclude<JobStatus, 'pending'>;
  /** The attempt the record is about (0 for revoked). */
  attempt: number;
  /** When it was recorded, ms since the epoch. */
  at: number;
  /** completed: the tagged serialization of the return value. */
  value?: string;
  /** failed / retrying: the command's error. */
  error?: RemoteError;
  /** retrying: when the next attempt may start. */
  runAt?: number;
  /** A pipeline's record that is another step's outcome (the step that stopped it): that step's job id. */
  job?: string;
}

export const DEFAULT_RESULT_TTL_MS = 24 * 60 * 60 * 1000;

export function remoteError(thrown: unknown): RemoteError {
  const error = toError(thrown);
  return { name: error.name, message: error.message, stack: error.stack };
}

/** Builds a record's text; `serializedValue` is already tagged JSON text. */
export function resultRecord(data: ResultRecordData): string {
  return JSON.stringify(data);
}

export function parseResultRecord(text: string): ResultRecordData {
  const parsed = JSON.parse(text) as ResultRecordData;
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.status !== 'string') {
    throw new TaskmillError('ERR_TASKMILL_RESULT', 'result record is malformed');
  }
  return parsed;
}

/** The command failed for good (retries spent); carries the remote error's name, message and stack. */
export class JobFailedError extends TaskmillError {
  readonly jobId: string;
  readonly remote: RemoteError;
  readonly attempt: number;
  constructor(jobId: string, remote: RemoteError, attempt: number) {
    super('ERR_TASKMILL_JOB_FAILED', `job ${jobId} failed after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${remote.name}: ${remote.message}`);
    this.jobId = jobId;
    this.remote = remote;
    this.attempt = attempt;
  }
}

/** The job was revoked before it ran. */
export class JobRevokedError extends TaskmillError {
  constructor(readonly jobId: string) {
    super('ERR_TASKMILL_JOB_REVOKED', `job ${jobId} was revoked before it ran`);
  }
}

/**
 * The job was cancelled while it ran (`job.cancel()`): its `this.signal` aborted with this error,
 * the attempt ended, and it was not retried. `job.result()` throws it.
 */
export class JobCancelledError extends TaskmillError {
  constructor(readonly jobId: string) {
    super('ERR_TASKMILL_JOB_CANCELLED', `job ${jobId} was cancelled while it ran`);
  }
}

/** The job did not start before its `expires` time and was skipped. */
export class JobExpiredError extends TaskmillError {
  constructor(readonly jobId: string) {
    super('ERR_TASKMILL_JOB_EXPIRED', `job ${jobId} expired before it started`);
  }
}

/** `job.result({ timeout })` waited `timeout` ms and the job had no final result yet. */
export class JobResultTimeoutError extends TaskmillError {
  constructor(
    readonly jobId: string,
    ms: number,
  ) {
    super('ERR_TASKMILL_RESULT_TIMEOUT', `no result for job ${jobId} within ${ms} ms`);
  }
}

/** Turns a final record into the value it stands for, or throws what it stands for. */
export function settle(handleId: string, record: ResultRecordData): unknown {
  const jobId = typeof record.job === 'string' ? record.job : handleId;
  switch (record.status) {
    case 'completed':
      return record.value === undefined ? undefined : deserializeValue(record.value);
    case 'failed':
      throw new JobFailedError(jobId, record.error ?? { name: 'Error', message: 'unknown error', stack: undefined }, record.attempt);
    case 'revoked':
      throw new JobRevokedError(jobId);
    case 'expired':
      throw new JobExpiredError(jobId);
    case 'cancelled':
      throw new JobCancelledError(jobId);
    default:
      throw new TaskmillError('ERR_TASKMILL_RESULT', `job ${jobId} is not finished (${record.status})`);
  }
}

/**
 * Thrown by a command to ask for another attempt, optionally after `delay`
 * ms. It still counts against the command's `retries` (default 3 when a
 * command that sets none throws Retry).
 */
export class Retry extends Error {
  readonly delay: number | undefined;
  constructor(options: { delay?: number; message?: string } = {}) {
    super(options.message ?? 'retry requested');
    this.name = 'Retry';
    if (options.delay !== undefined && !(Number.isFinite(options.delay) && options.delay >= 0)) {
      throw new TypeError(`Retry({ delay }) must be a number of ms ≥ 0, got ${String(options.delay)}`);
    }
    this.delay = options.delay;
  }
}

/** Retries a command that sets none gets when it throws Retry. */
export const DEFAULT_RETRY_REQUEST_LIMIT = 3;
