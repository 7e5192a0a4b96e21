/**
 * The handle `cmd(...)` returns: the job's ids, and its status, progress and
 * result once a consumer runs it (read from the queue's result store). A job
 * run in immediate mode carries its outcome and last progress with it instead.
 */
import type { BaseQueue } from '../backends/base.js';
import { jobEvents } from './hooks.js';
import { progressKey, progressValue } from './progress.js';
import { JobResultTimeoutError, parseResultRecord, resultRecord, settle, type JobStatus } from './results.js';
import { settings } from './settings.js';

/** What an immediate-mode run left: its outcome and the record of the latest progress it reported. */
export type LocalOutcome = ({ ok: true; value: unknown } | { ok: false; error: unknown }) & { progress?: string | undefined };

/** A handle on an enqueued job: its ids, and its status and result once a consumer ran it. */
export class Job<R = unknown> {
  readonly #queue: BaseQueue | null;
  readonly #local: LocalOutcome | null;

  constructor(
    /** The job id (the envelope id): the key of its result. */
    readonly id: string,
    readonly command: string,
    /** The backend's message id (null for immediate mode). */
    readonly messageId: string | null,
    queue: BaseQueue | null,
    local: LocalOutcome | null = null,
    /** True when enqueuing found this job already waiting, delayed or running under its unique key: nothing was written. */
    readonly duplicate: boolean = false,
  ) {
    this.#queue = queue;
    this.#local = local;
  }

  /** 'pending' until a consumer records an outcome: 'completed', 'failed', 'retrying', 'revoked', 'expired' or 'cancelled'. */
  async status(): Promise<JobStatus> {
    if (this.#local) return this.#local.ok ? 'completed' : 'failed';
    const text = await this.#queue!.getResult(this.id);
    return text === null ? 'pending' : parseResultRecord(text).status;
  }

  /**
   * The latest progress the command reported with `this.progress(value)` (a number from 0 to 100 or
   * a JSON value), or undefined when it reported none (yet) or the record expired. Kept as long as
   * the job's result; a retry's reports replace the earlier attempt's.
   */
  async progress(): Promise<unknown> {
    const text = this.#local ? this.#local.progress : ((await this.#queue!.getResult(progressKey(this.id))) ?? undefined);
    return text === undefined ? undefined : progressValue(text);
  }

  /**
   * Waits for the command's return value (default up to 30 s). Throws
   * JobFailedError (with the remote error's name, message and stack) when it
   * failed for good, JobRevokedError / JobExpiredError / JobCancelledError, or
   * JobResultTimeoutError when `timeout` passes first.
   */
  async result({ timeout = 30_000, interval = 25 }: { timeout?: number; interval?: number } = {}): Promise<R> {
    if (this.#local) {
      if (this.#local.ok) return this.#local.value as R;
      throw this.#local.error;
    }
    const deadline = Date.now() + timeout;
    let wait = interval;
    for (;;) {
      const text = await this.#queue!.getResult(this.id);
      if (text !== null) {
        const record = parseResultRecord(text);
        if (record.status !== 'retrying') return settle(this.id, record) as R;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new JobResultTimeoutError(this.id, timeout);
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, left)));
      wait = Math.min(1_000, wait * 1.5);
    }
  }

  /**
   * Cancels the job from any process. Not started yet (waiting, delayed): removed and recorded as
   * 'revoked'. Running: its consumer aborts `this.signal` within about a second and ends the attempt
   * with JobCancelledError, not retried, recorded as 'cancelled'. False when it has finished, or
   * no queue knows it.
   */
  async cancel({ ttl = settings.resultTtlMs }: { ttl?: number } = {}): Promise<'revoked' | 'cancelled' | false> {
    if (!this.#queue || this.messageId === null) return false;
    const outcome = await this.#queue.cancel(this.messageId, this.id);
    if (outcome === 'signalled') return 'cancelled';
    if (outcome === false) return false;
    await this.#recordRevoked(ttl);
    return 'revoked';
  }

  async #recordRevoked(ttl: number): Promise<void> {
    await this.#queue!.setResults([{ jobId: this.id, record: resultRecord({ status: 'revoked', attempt: 0, at: Date.now() }), ttlMs: ttl }]);
    if (jobEvents.has('revoked')) jobEvents.emit('revoked', { jobId: this.id, command: this.command, messageId: this.messageId! });
  }

  /** Removes the job if it has not started; true when revoked (recorded as 'revoked'), false when too late. */
  async revoke({ ttl = settings.resultTtlMs }: { ttl?: number } = {}): Promise<boolean> {
    if (!this.#queue || this.messageId === null) return false;
    if (!(await this.#queue.remove(this.messageId))) return false;
    await this.#recordRevoked(ttl);
    return true;
  }
}

/** When a scheduled job may start: after `delay` ms, or at `eta`. */
