/**
 * Job control and queue events on the backend side: the types of
 * BaseQueue.cancel / control / listen / publishEvents / readEvents, and the
 * limits every backend keeps the same.
 *
 * Cancel. A message that has not started (ready, delayed, parked, a lapsed
 * lease) is deleted. One a consumer holds gets a mark, keyed by its message
 * id and naming its job id; the consumer that holds it sees the mark on its
 * next control() poll and aborts the run. The mark stays on the message, so
 * a consumer that dies before acting on it leaves it for the next holder.
 *
 * Queue events. Each queue keeps a log of its last MAX_EVENTS events, each
 * with a sequence number one above the last: a listener reading from
 * sequence n sees whether anything between n and what it got was trimmed,
 * so it can say how much it missed. Consumers publish only while a listener
 * is registered (registerListener(), refreshed before LISTENER_TTL_MS runs out), which
 * control() tells them, so a queue without listeners pays nothing per job.
 */
import { ConfigError, describeValue } from '../shared/errors.js';

/** What cancel() did. */
export type CancelOutcome =
  /** It had not started: it is deleted. */
  | 'revoked'
  /** A consumer holds it: marked, so that consumer aborts it. */
  | 'signalled'
  /** No such message (finished, failed, or never there). */
  | false;

/** A cancel mark on a message this owner holds. */
export interface CancelRequest {
  /** The message id. */
  id: string;
  /** The job the mark is for: a consumer aborts the run only when its envelope has this id. */
  jobId: string;
}

/** control()'s answer: what the consumer polls for, twice a second. */
export interface QueueControl {
  /** Cancel marks on messages leased by this owner. */
  cancels: CancelRequest[];
  /** Whether a queueEvents listener is registered on the queue (publish events while true). */
  listening: boolean;
}

/** One event of the queue's log. */
export interface LoggedEvent {
  seq: number;
  data: string;
}

/** readEvents()'s answer. */
export interface EventPage {
  /** Events after the cursor, oldest first (a gap in `seq` is what the log trimmed). */
  events: LoggedEvent[];
  /** The highest sequence number the log has handed out (0 before the first event). */
  last: number;
}

/** A live consumer's last heartbeat (BaseQueue.heartbeat): its id, its state as JSON text, when it was seen (backend clock, ms). */
export interface ConsumerRecord {
  id: string;
  state: string;
  seenAt: number;
}

/** A consumer whose heartbeat is older than this is gone (consumers beat every CONSUMER_HEARTBEAT_MS). */
export const CONSUMER_TTL_MS = 15_000;
export const CONSUMER_HEARTBEAT_MS = 5_000;

/**
 * Jobs a consumer settled in one minute of one queue, sent with its heartbeat (never per job).
 * `minute` is the minute's start, ms since the epoch, by the consumer's clock.
 */
export interface ThroughputCount {
  queue: string;
  minute: number;
  completed: number;
  failed: number;
}

/** A minute of a queue's throughput, all consumers added up (BaseQueue.throughput). */
export interface ThroughputBucket {
  minute: number;
  completed: number;
  failed: number;
}

export const THROUGHPUT_BUCKET_MS = 60_000;
/** The backend keeps this much throughput history; older minutes are trimmed when a heartbeat adds counts. */
export const THROUGHPUT_WINDOW_MS = 60 * THROUGHPUT_BUCKET_MS;
/** Most counts one heartbeat carries (a consumer cut off for an hour holds at most one per minute). */
export const MAX_THROUGHPUT_COUNTS = 120;

/** Events a queue's log keeps; older ones are trimmed. */
export const MAX_EVENTS = 10_000;
/** A listener not refreshed within this long is gone (consumers stop publishing for it). */
export const LISTENER_TTL_MS = 15_000;
/** How often a consumer calls control() by default: a cancel takes effect, and a new listener is seen, within about this. */
export const DEFAULT_CONTROL_POLL_MS = 500;
/** Most events one readEvents() call returns. */
export const MAX_EVENTS_PER_READ = 1_000;

/** readEvents()'s arguments: a cursor ≥ 0 and a page size from 1 to MAX_EVENTS_PER_READ. @internal */
export function checkEventRead(after: unknown, max: unknown, queue: string): void {
  if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) {
    throw new ConfigError(`readEvents on queue "${queue}": invalid after ${describeValue(after)}: must be an integer ≥ 0 (a sequence number)`);
  }
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_EVENTS_PER_READ) {
    throw new ConfigError(`readEvents on queue "${queue}": invalid max ${describeValue(max)}: must be an integer from 1 to ${MAX_EVENTS_PER_READ}`);
  }
}

/** cancel()'s arguments: a message id and a job id, non-empty strings. @internal */
export function checkCancel(id: unknown, jobId: unknown, queue: string): void {
  for (const [name, value] of [
    ['id', id],
    ['jobId', jobId],
  ] as const) {
    if (
      typeof value !== 'string' ||
      value === '' ||
      value.length > 200 ||
      value.includes('\u0000') ||
      !(value as string & { isWellFormed(): boolean }).isWellFormed()
    ) {
      throw new ConfigError(
        `cancel on queue "${queue}": invalid ${name} ${describeValue(value)}: must be a non-empty string of at most 200 characters, without NUL`,
      );
    }
  }
}

/** A listener id: a non-empty string of at most 200 characters. @internal */
export function checkListenerId(listenerId: unknown, queue: string): void {
  if (typeof listenerId !== 'string' || listenerId === '' || listenerId.length > 200) {
    throw new ConfigError(
      `registerListener on queue "${queue}": invalid listener id ${describeValue(listenerId)}: must be a non-empty string of at most 200 characters`,
    );
  }
}

/** heartbeat()'s arguments: a consumer id like a listener id, a state of JSON text up to 64 KiB. @internal */
export function checkHeartbeat(consumerId: unknown, state: unknown, counts: unknown, queue: string): void {
  const wellFormed = (v: string) => !v.includes('\u0000') && (v as string & { isWellFormed(): boolean }).isWellFormed();
  if (typeof consumerId !== 'string' || consumerId === '' || consumerId.length > 200 || !wellFormed(consumerId)) {
    throw new ConfigError(
      `heartbeat on queue "${queue}": invalid consumer id ${describeValue(consumerId)}: must be a non-empty string of at most 200 characters`,
    );
  }
  if (typeof state !== 'string' || state === '' || state.length > 65_536 || !wellFormed(state)) {
    throw new ConfigError(`heartbeat on queue "${queue}": invalid state ${describeValue(state)}: must be JSON text of at most 65536 characters`);
  }
  if (!Array.isArray(counts) || counts.length > MAX_THROUGHPUT_COUNTS) {
    throw new ConfigError(
      `heartbeat on queue "${queue}": invalid counts ${describeValue(counts)}: must be a list of at most ${MAX_THROUGHPUT_COUNTS} throughput counts`,
    );
  }
  for (const [i, c] of (counts as unknown[]).entries()) {
    const count = c as Partial<ThroughputCount> | null;
    const whole = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    if (
      typeof count !== 'object' ||
      count === null ||
      count.queue !== queue ||
      !whole(count.minute) ||
      count.minute! % THROUGHPUT_BUCKET_MS !== 0 ||
      !whole(count.completed) ||
      !whole(count.failed)
    ) {
      throw new ConfigError(
        `heartbeat on queue "${queue}": invalid counts[${i}] ${describeValue(c)}: must be { queue: "${queue}", minute (a minute's start, ms), completed, failed } with whole numbers ≥ 0`,
      );
    }
  }
}

/** A waiting or delayed message found by its job id (BaseQueue.findJob). */
export interface FoundMessage {
  id: string;
  data: string;
  state: 'waiting' | 'delayed';
}

/** How far into a message findJob looks for the job id (the envelope's head: `{"v":…,"id":…,"command":…`). */
export const JOB_HEAD_CHARS = 600;
/** Most messages findJob may look through, of each kind. */
export const MAX_FIND_LIMIT = 10_000;

/** What findJob looks for in a message's head: the envelope's job id field, followed by its command. @internal */
export function jobNeedle(jobId: string): string {
  return `,"id":${JSON.stringify(jobId)},"command":`;
}

/** findJob()'s arguments: a job id like cancel's, a limit from 1 to MAX_FIND_LIMIT. @internal */
export function checkFindJob(jobId: unknown, limit: unknown, queue: string): void {
  if (typeof jobId !== 'string' || jobId === '' || jobId.length > 200) {
    throw new ConfigError(`findJob on queue "${queue}": invalid job id ${describeValue(jobId)}: must be a non-empty string of at most 200 characters`);
  }
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_FIND_LIMIT) {
    throw new ConfigError(`findJob on queue "${queue}": invalid limit ${describeValue(limit)}: must be an integer from 1 to ${MAX_FIND_LIMIT}`);
  }
}

/** Adds `counts` to `buckets` (minute → counts), then drops the minutes before `now` - THROUGHPUT_WINDOW_MS. @internal */
export function addThroughput(buckets: Map<number, ThroughputBucket>, counts: readonly ThroughputCount[], now: number): void {
  for (const { minute, completed, failed } of counts) {
    const bucket = buckets.get(minute);
    if (bucket) {
      bucket.completed += completed;
      bucket.failed += failed;
    } else buckets.set(minute, { minute, completed, failed });
  }
  const oldest = throughputSince(now);
  for (const minute of buckets.keys()) if (minute < oldest) buckets.delete(minute);
}

/** The first minute the throughput window holds at `now`. @internal */
export function throughputSince(now: number): number {
  return Math.floor((now - THROUGHPUT_WINDOW_MS) / THROUGHPUT_BUCKET_MS) * THROUGHPUT_BUCKET_MS + THROUGHPUT_BUCKET_MS;
}
