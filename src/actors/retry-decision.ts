/**
 * Why this exists: whether a failed attempt runs again, and when, is the one
 * rule of the runner that users tune (`retries`, `retryDelay`,
 * `retryBackoff`, a thrown `Retry`). Here it is a pure function of its
 * inputs — the clock and the random source passed in — so each case is
 * tested without running a command.
 */
import { COMMAND_DEFAULTS, type CommandOptions } from '../producer/commands.js';
import { DEFAULT_RETRY_REQUEST_LIMIT, Retry } from '../producer/results.js';

export type RetryOptions = Pick<CommandOptions, 'retries' | 'retryDelay' | 'retryBackoff'>;

/** Another attempt: its number, when it may run (ms since the epoch), and the delay that gives. */
export interface RetryDecision {
  readonly attempt: number;
  readonly runAt: number;
  readonly delayMs: number;
}

/** `instanceof` itself can throw (a Proxy whose getPrototypeOf trap throws): a hostile value is just not a Retry. */
export function isRetryRequest(thrown: unknown): thrown is Retry {
  try {
    return thrown instanceof Retry;
  } catch {
    return false;
  }
}

/** Delay before retry n (1-based): retryDelay × retryBackoff^(n−1), with ±20 % jitter so a burst of failures spreads out. */
export function retryDelayMs(options: Readonly<RetryOptions>, retryNumber: number, random: () => number = Math.random): number {
  const base = (options.retryDelay ?? COMMAND_DEFAULTS.retryDelay) * (options.retryBackoff ?? COMMAND_DEFAULTS.retryBackoff) ** (retryNumber - 1);
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * Attempt `attempt` (1-based) threw `thrown`: the next attempt, or null to fail
 * for good. A thrown Retry may run again even on a command without `retries`
 * (up to DEFAULT_RETRY_REQUEST_LIMIT times) and brings its own delay if it
 * has one. A lost worker (`lost`) is never retried: every delivery was already
 * a try, and one more could take another process down.
 */
export function decideRetry(
  options: Readonly<RetryOptions>,
  attempt: number,
  thrown: unknown,
  lost: boolean,
  now: number,
  random: () => number = Math.random,
): RetryDecision | null {
  if (lost) return null;
  const requested = isRetryRequest(thrown);
  const retries = options.retries ?? (requested ? DEFAULT_RETRY_REQUEST_LIMIT : COMMAND_DEFAULTS.retries);
  if (attempt > retries) return null;
  const delayMs = requested && thrown.delay !== undefined ? thrown.delay : retryDelayMs(options, attempt, random);
  return { attempt: attempt + 1, runAt: now + delayMs, delayMs };
}
