/**
 * Why this exists: a command may report progress far faster than a backend
 * round trip (a loop calling `this.progress(i)`), and only the latest value
 * of a job matters. The writer keeps at most one setResults call in flight;
 * what is reported meanwhile waits in a map keyed by job, where a newer
 * value replaces an older one, and goes out in the next call, all jobs
 * together. So a job's progress is written in report order (never an older
 * value over a newer one from this consumer) and a busy loop costs one
 * write per round trip, not one per report.
 *
 * A write that fails is put back (unless a newer value came meanwhile) and
 * tried again after PROGRESS_RETRY_MS, so an outage is not hammered; once
 * closed, a failure is only reported.
 *
 * Hot path: nothing here is touched by a job that never reports progress.
 */
import type { BaseQueue, ResultRecord } from '../backends/base.js';
import { toError } from '../shared/errors.js';

export const PROGRESS_RETRY_MS = 500;

export interface ProgressWriterDeps {
  queue: Pick<BaseQueue, 'setResults'>;
  /** Called with every write's promise (the adapter waits for them on close). */
  track: <T>(promise: Promise<T>) => Promise<T>;
  /** A write failed; `closed` true means it will not be retried. */
  onFailed: (error: unknown, count: number, closed: boolean) => void;
}

interface Pending {
  record: ResultRecord;
  /** The job's message: a queue of several stores the record where the message came from. */
  messageId: string;
  /** Its delivery: the record is stored only while that delivery holds the lease. */
  delivery: number;
}

export class ProgressWriter {
  /** The latest unwritten record of each job, by its key (the record's jobId). */
  #pending = new Map<string, Pending>();
  #writing = false;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(private readonly deps: ProgressWriterDeps) {}

  /** Stores `record` for the job of delivery `delivery` of `messageId`: now when nothing is in flight, else with the next write. */
  write(messageId: string, delivery: number, record: ResultRecord): void {
    this.#pending.set(record.jobId, { record, messageId, delivery });
    if (!this.#writing && this.#retry === undefined) this.flush();
  }

  /** How many jobs have a value waiting to be written. */
  get pending(): number {
    return this.#pending.size;
  }

  /** No more retries from now on; call `flush()` to write what is pending one last time. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
  }

  /** Writes what is pending now, unless a write is in flight (then what is pending follows it). */
  flush(): void {
    if (this.#writing || this.#pending.size === 0) return;
    const batch = [...this.#pending.values()];
    this.#pending.clear();
    this.#writing = true;
    let write: Promise<void>;
    try {
      write = this.deps.queue.setResults(
        batch.map((p) => p.record),
        batch.map((p) => p.messageId),
        batch.map((p) => p.delivery),
      );
    } catch (error) {
      write = Promise.reject(toError(error)); // a backend that checks its arguments synchronously
    }
    this.deps.track(write).then(
      () => {
        this.#writing = false;
        this.flush();
      },
      (error: unknown) => {
        this.#writing = false;
        this.#failed(error, batch);
      },
    );
  }

  #failed(error: unknown, batch: readonly Pending[]): void {
    this.deps.onFailed(error, batch.length, this.#closed);
    if (this.#closed) {
      this.flush(); // newer values reported while it failed still get their one write
      return;
    }
    // Put back what no newer report replaced; a job with a newer value keeps only that one.
    for (const entry of batch) if (!this.#pending.has(entry.record.jobId)) this.#pending.set(entry.record.jobId, entry);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.flush();
    }, PROGRESS_RETRY_MS);
    this.#retry.unref();
  }
}
