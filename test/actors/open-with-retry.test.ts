/**
 * Opening the queue: the backoff and give-up rule as a pure function, and
 * the runner with fake timers — retries until the deadline, gives up at once
 * on a permanent error, stops on cancel, and keeps its timer referenced (a
 * host awaiting start() must not exit while the backend comes up).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OpenWithRetry, isPermanent, openRetryDelay } from '../../src/actors/open-with-retry.js';
import { ConfigError, QueueConnectionError } from '../../src/shared/errors.js';

const down = () => new QueueConnectionError('ECONNREFUSED');

describe('openRetryDelay', () => {
  it('backs off 200 ms × 2^attempt, at most 5 s', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 20].map((attempt) => openRetryDelay(attempt, down(), 0, Infinity));
    expect(delays).toEqual([200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]);
  });

  it('gives up when the next attempt would start after the deadline', () => {
    expect(openRetryDelay(2, down(), 1_000, 1_800)).toBe(800);
    expect(openRetryDelay(2, down(), 1_001, 1_800)).toBeUndefined();
  });

  it('gives up at once on a permanent error: a ConfigError or a QueueConnectionError marked permanent', () => {
    expect(openRetryDelay(0, new ConfigError('bad url'), 0, Infinity)).toBeUndefined();
    expect(openRetryDelay(0, new QueueConnectionError('password authentication failed', { permanent: true }), 0, Infinity)).toBeUndefined();
    expect(openRetryDelay(0, new Error('anything else'), 0, Infinity)).toBe(200);
    expect(openRetryDelay(0, 'not even an Error', 0, Infinity)).toBe(200);
  });

  it('isPermanent', () => {
    expect(isPermanent(new ConfigError('x'))).toBe(true);
    expect(isPermanent(new QueueConnectionError('x', { permanent: true }))).toBe(true);
    expect(isPermanent(down())).toBe(false);
    expect(isPermanent(undefined)).toBe(false);
  });
});

describe('OpenWithRetry', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.restoreAllMocks(); // before useRealTimers: a spy on a fake timer would put the fake back
    vi.useRealTimers();
  });

  /** A queue whose open() fails with each of `failures` in turn, then succeeds. */
  function opener(failures: unknown[], timeoutMs = 30_000) {
    const t0 = Date.now();
    const opens: number[] = [];
    const outcome: { opened: number; failed: unknown[]; retried: unknown[] } = { opened: 0, failed: [], retried: [] };
    const queue = {
      open(): Promise<void> {
        opens.push(Date.now() - t0);
        const error = failures.shift();
        return error === undefined ? Promise.resolve() : Promise.reject(error);
      },
    };
    const tracked: Promise<unknown>[] = [];
    const open = new OpenWithRetry({
      queue,
      timeoutMs,
      track: (promise) => (tracked.push(promise), promise),
      onOpen: () => (outcome.opened += 1),
      onFailed: (error) => outcome.failed.push(error),
      onRetry: (error) => outcome.retried.push(error),
    });
    return { open, opens, outcome, tracked };
  }

  it('retries with backoff until open() succeeds', async () => {
    const first = down();
    const second = down();
    const { open, opens, outcome, tracked } = opener([first, second]);
    open.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(opens).toEqual([0, 200, 600]);
    expect(outcome).toEqual({ opened: 1, failed: [], retried: [first, second] });
    expect(tracked).toHaveLength(3);
  });

  it('gives up at the deadline with the last error', async () => {
    const errors = [down(), down(), down(), down()];
    const { open, opens, outcome } = opener([...errors], 1_000);
    open.start();
    await vi.advanceTimersByTimeAsync(10_000);
    // 0 → +200 → +400 (at 600) → +800 would be 1 400 > 1 000: give up.
    expect(opens).toEqual([0, 200, 600]);
    expect(outcome.failed).toEqual([errors[2]]);
    expect(outcome.retried).toEqual([errors[0], errors[1]]);
    expect(outcome.opened).toBe(0);
  });

  it('gives up at once on a permanent error', async () => {
    const refused = new QueueConnectionError('password authentication failed', { permanent: true });
    const { open, opens, outcome } = opener([refused]);
    open.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(opens).toEqual([0]);
    expect(outcome).toEqual({ opened: 0, failed: [refused], retried: [] });
  });

  it('cancel() clears the timer: no further attempt', async () => {
    const { open, opens, outcome } = opener([down(), down()]);
    open.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.retried).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(1);
    open.cancel();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(opens).toEqual([0]);
    expect(outcome.failed).toEqual([]);
  });

  it('an attempt that fails after cancel() reports failure instead of retrying', async () => {
    const error = down();
    const { open, opens, outcome } = opener([error]);
    open.start();
    open.cancel();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(opens).toEqual([0]);
    expect(outcome).toEqual({ opened: 0, failed: [error], retried: [] });
  });

  it('keeps its retry timer referenced, so a host awaiting start() does not exit meanwhile', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const { open } = opener([down()]);
    open.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.results[0]?.value.hasRef()).toBe(true);
    open.cancel();
  });
});
