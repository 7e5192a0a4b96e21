/**
 * Why this exists: a backend that is down when the consumer starts (a
 * database still booting, a container not yet up) gets until a deadline to
 * come up, retried with exponential backoff; one that refuses us for good (a
 * wrong password, no such database) does not, so the error is seen at once.
 * The decision is `openRetryDelay`, a pure function; `OpenWithRetry` only
 * calls open() and keeps the timer.
 */
import type { BaseQueue } from '../backends/base.js';
import { ConfigError, QueueConnectionError } from '../shared/errors.js';

const FIRST_DELAY_MS = 200;
const MAX_DELAY_MS = 5_000;

/** A failure to open that retrying cannot mend: bad configuration, or the server refusing us for good. */
export const isPermanent = (error: unknown): boolean => error instanceof ConfigError || (error instanceof QueueConnectionError && error.permanent);

/**
 * After failed attempt `attempt` (0-based) at `now`: the ms to wait before the
 * next one (200 × 2^attempt, at most 5 s), or undefined to give up — the error
 * is permanent, or the next attempt would start after `deadline`.
 */
export function openRetryDelay(attempt: number, error: unknown, now: number, deadline: number): number | undefined {
  const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
  return isPermanent(error) || now + delay > deadline ? undefined : delay;
}

export interface OpenWithRetryDeps {
  queue: Pick<BaseQueue, 'open'>;
  /** How long to keep retrying, from `start()`. */
  timeoutMs: number;
  /** Called with every open()'s promise (the adapter waits for them on close). */
  track: <T>(promise: Promise<T>) => Promise<T>;
  /** open() resolved (also after `cancel()`: the caller decides what that means). */
  onOpen: () => void;
  /** Given up: permanent, past the deadline, or cancelled. */
  onFailed: (error: unknown) => void;
  /** open() failed and will be tried again. */
  onRetry: (error: unknown) => void;
}

export class OpenWithRetry {
  private deadline = 0;
  private cancelled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: OpenWithRetryDeps) {}

  start(): void {
    this.deadline = Date.now() + this.deps.timeoutMs;
    this.attempt(0);
  }

  /** No further attempt; one in flight still reports, its failure as `onFailed`. */
  cancel(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
  }

  private attempt(n: number): void {
    this.deps.track(this.deps.queue.open()).then(
      () => this.deps.onOpen(),
      (error: unknown) => {
        const delay = this.cancelled ? undefined : openRetryDelay(n, error, Date.now(), this.deadline);
        if (delay === undefined) {
          this.deps.onFailed(error);
          return;
        }
        this.deps.onRetry(error);
        // Referenced on purpose: a host awaiting start() must not exit while the backend is still coming up.
        this.timer = setTimeout(() => this.attempt(n + 1), delay);
      },
    );
  }
}
