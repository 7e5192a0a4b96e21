/**
 * Why this exists: `this` inside a running command. Most commands never read
 * `this.signal`, so the AbortController is created only when one does; an
 * abort that came first is replayed onto it. The class keeps its name: a
 * command's stack frames read `RunningJob.<anonymous>`.
 */
import type { JobContext } from '../producer/commands.js';

export class RunningJob implements JobContext {
  #controller: AbortController | null = null;
  #abortReason: unknown = undefined;
  constructor(
    readonly jobId: string,
    readonly command: string,
    readonly attempt: number,
  ) {}

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /** The first reason wins; later calls do nothing. */
  abort(reason: unknown): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }
}
