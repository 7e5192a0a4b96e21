/**
 * Running a command in this process, bypassing the queue: `cmd.local()`, a
 * periodic command called directly, and every enqueue under
 * `configure({ immediate: true })`. Its `this` is never aborted, always
 * attempt 1, and keeps the latest progress it reports in memory: there is
 * no results store to write it to, and an immediate job's handle answers
 * `job.progress()` with it (for `cmd.local()`, which returns no handle, the
 * value is only checked).
 */
import type { JobContext, RegisteredCommand } from './commands.js';
import { progressRecord } from './progress.js';

const neverAborted = new AbortController().signal;

class LocalJob implements JobContext {
  readonly attempt = 1;
  readonly signal = neverAborted;
  /** The record of the latest progress reported, if any. */
  latest: string | undefined = undefined;
  constructor(
    readonly jobId: string,
    readonly command: string,
  ) {}

  progress(value: unknown): void {
    this.latest = progressRecord(value, this.attempt);
  }
}

export interface LocalRun {
  value: unknown;
  /** The record of the latest progress the command reported. */
  progress: string | undefined;
}

export async function runLocally(command: RegisteredCommand, jobId: string, args: unknown[]): Promise<LocalRun> {
  const job = new LocalJob(jobId, command.name);
  const value = await command.fn.apply(job, args);
  return { value, progress: job.latest };
}
