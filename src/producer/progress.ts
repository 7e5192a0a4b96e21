/**
 * Job progress: what `this.progress(value)` inside a command stores and
 * `job.progress()` reads back. It lives in the results store, beside the
 * job's result under a derived key, so every backend has it without a new
 * BaseQueue method; the record is JSON like a result record, its value kept
 * as tagged JSON (the same closed set of types as arguments and results).
 */
import { TaskmillError, describeValue } from '../shared/errors.js';
import { deserializeValue, serializeValue } from '../codec/message.js';

/**
 * The results-store key of a job's progress. Job ids are UUIDs (taskmill
 * writes them), so none ends in `#progress` and the two records never meet.
 */
export function progressKey(jobId: string): string {
  return `${jobId}#progress`;
}

export interface ProgressRecordData {
  /** The tagged serialization of the reported value. */
  value: string;
  /** The attempt that reported it: a retry's first report replaces the last attempt's. */
  attempt: number;
  /** When it was reported, ms since the epoch. */
  at: number;
}

const EXPECTED = 'must be a number from 0 to 100, or a JSON value (an object, array, string, boolean or null)';

/**
 * The stored record of a reported value, or a TypeError naming the value:
 * a number outside 0–100 (NaN and ±Infinity included), undefined (which
 * `job.progress()` answers for "nothing reported"), or a value tagged JSON
 * cannot hold (a function, a class instance, a cycle, …).
 */
export function progressRecord(value: unknown, attempt: number, now = Date.now()): string {
  if (typeof value === 'number') {
    if (!(value >= 0 && value <= 100)) throw new TypeError(`this.progress(): invalid value ${describeValue(value)}: ${EXPECTED}`);
  } else if (value === undefined) {
    throw new TypeError(`this.progress(): invalid value undefined: ${EXPECTED}`);
  }
  let serialized: string;
  try {
    serialized = serializeValue(value, 'progress');
  } catch (error) {
    // The SerializationError names the part that cannot be stored (`progress.items[2]`); keep it as the cause.
    const why = error instanceof Error ? error.message : String(error);
    throw new TypeError(`this.progress(): invalid value ${describeValue(value)}: ${EXPECTED}; ${why}`, { cause: error });
  }
  const data: ProgressRecordData = { value: serialized, attempt, at: now };
  return JSON.stringify(data);
}

/** The value a stored progress record holds. */
export function progressValue(text: string): unknown {
  const parsed = JSON.parse(text) as Partial<ProgressRecordData> | null;
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.value !== 'string') {
    throw new TaskmillError('ERR_TASKMILL_RESULT', 'progress record is malformed');
  }
  return deserializeValue(parsed.value);
}

/** The tagged value text inside a stored progress record (what a queue event carries). */
export function progressRecordValue(text: string): string {
  return (JSON.parse(text) as ProgressRecordData).value;
}
