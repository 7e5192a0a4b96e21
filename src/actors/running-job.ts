/**
 * Why this exists: `this` inside a running command. Most commands never read
 * `this.signal`, so the AbortController is created only when one does; an
 * abort that came first is replayed onto it. Most never report progress
 * either: `progress()` hands the checked record to the worker's sink (one
 * per run-command actor, not per job), so a job that does not report costs
 * nothing for it. The class keeps its name: a command's stack frames read
 * `RunningJob.<anonymous>`.
 */
import type { JobContext } from '../producer/commands.js';
import { progressRecord } from '../producer/progress.js';

/** Where a running job's progress records go (the run-command actor that runs it). */
export interface ProgressSink {
  progress(job: RunningJob, record: string): void;
}

export class RunningJob implements JobContext {
  #controller: AbortController | null = null;
  #abortReason: unknown = undefined;
  readonly #sink: ProgressSink | null;
  constructor(
    readonly jobId: string,
    readonly command: string,
    readonly attempt: number,
    sink: ProgressSink | null = null,
  ) {
    this.#sink = sink;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /** Checks the value (a TypeError naming it when it cannot be progress) and passes its record on; the latest wins. */
  progress(value: unknown): void {
    const record = progressRecord(value, this.attempt);
    this.#sink?.progress(this, record);
  }

  /** Passes on a record already checked elsewhere (a pool's thread or process ran the command). */
  report(record: string): void {
    this.#sink?.progress(this, record);
  }

  /** The first reason wins; later calls do nothing. */
  abort(reason: unknown): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }
}
