/**
 * The retry rule as a pure function: the command's retries, delay and
 * backoff with ±20 % jitter, a thrown Retry (its own delay; a limit of
 * DEFAULT_RETRY_REQUEST_LIMIT on a command without `retries`), and a lost
 * worker that is never retried.
 */
import { describe, expect, it } from 'vitest';
import { decideRetry, isRetryRequest, retryDelayMs } from '../../src/actors/retry-decision.js';
import { DEFAULT_RETRY_REQUEST_LIMIT, Retry } from '../../src/producer/results.js';

const NOW = 1_700_000_000_000;
const mid = () => 0.5; // no jitter: 0.8 + 0.4 × 0.5 = 1

describe('retryDelayMs', () => {
  it('is retryDelay × retryBackoff^(n−1)', () => {
    const options = { retryDelay: 1_000, retryBackoff: 2 };
    expect([1, 2, 3, 4].map((n) => retryDelayMs(options, n, mid))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(retryDelayMs({ retryDelay: 250 }, 5, mid)).toBe(250); // backoff 1 by default: constant
    expect(retryDelayMs({}, 3, mid)).toBe(0);
  });

  it('jitters by ±20 %, rounded to the ms', () => {
    const options = { retryDelay: 1_000 };
    expect(retryDelayMs(options, 1, () => 0)).toBe(800);
    expect(retryDelayMs(options, 1, () => 0.999_999)).toBe(1_200);
    expect(retryDelayMs({ retryDelay: 3 }, 1, () => 0.5)).toBe(3);
    for (let i = 0; i < 200; i++) {
      const ms = retryDelayMs(options, 1);
      expect(ms).toBeGreaterThanOrEqual(800);
      expect(ms).toBeLessThanOrEqual(1_200);
    }
  });
});

describe('decideRetry', () => {
  const error = new Error('boom');

  it('fails for good on a command without retries', () => {
    expect(decideRetry({}, 1, error, false, NOW, mid)).toBeNull();
    expect(decideRetry({ retries: 0, retryDelay: 100 }, 1, error, false, NOW, mid)).toBeNull();
  });

  it('retries attempts 1…retries, then fails for good', () => {
    const options = { retries: 2, retryDelay: 100, retryBackoff: 3 };
    expect(decideRetry(options, 1, error, false, NOW, mid)).toEqual({ attempt: 2, runAt: NOW + 100, delayMs: 100 });
    expect(decideRetry(options, 2, error, false, NOW, mid)).toEqual({ attempt: 3, runAt: NOW + 300, delayMs: 300 });
    expect(decideRetry(options, 3, error, false, NOW, mid)).toBeNull();
  });

  it('applies the jitter through the random source it is given', () => {
    const options = { retries: 1, retryDelay: 1_000 };
    expect(decideRetry(options, 1, error, false, NOW, () => 0)).toEqual({ attempt: 2, runAt: NOW + 800, delayMs: 800 });
    expect(decideRetry(options, 1, error, false, NOW, () => 0.999_999)).toEqual({ attempt: 2, runAt: NOW + 1_200, delayMs: 1_200 });
  });

  it(`a thrown Retry on a command without retries runs again up to DEFAULT_RETRY_REQUEST_LIMIT (${DEFAULT_RETRY_REQUEST_LIMIT}) times`, () => {
    const retry = new Retry();
    for (let attempt = 1; attempt <= DEFAULT_RETRY_REQUEST_LIMIT; attempt++) {
      expect(decideRetry({}, attempt, retry, false, NOW, mid)).toEqual({ attempt: attempt + 1, runAt: NOW, delayMs: 0 });
    }
    expect(decideRetry({}, DEFAULT_RETRY_REQUEST_LIMIT + 1, retry, false, NOW, mid)).toBeNull();
  });

  it("a thrown Retry counts against the command's own retries, even 0", () => {
    expect(decideRetry({ retries: 5 }, 5, new Retry(), false, NOW, mid)).not.toBeNull();
    expect(decideRetry({ retries: 5 }, 6, new Retry(), false, NOW, mid)).toBeNull();
    expect(decideRetry({ retries: 0 }, 1, new Retry(), false, NOW, mid)).toBeNull();
  });

  it("a thrown Retry's own delay wins over retryDelay, without jitter; without one the command's delay applies", () => {
    const options = { retries: 3, retryDelay: 1_000, retryBackoff: 2 };
    expect(decideRetry(options, 2, new Retry({ delay: 50 }), false, NOW, () => 0)).toEqual({ attempt: 3, runAt: NOW + 50, delayMs: 50 });
    expect(decideRetry(options, 2, new Retry({ delay: 0 }), false, NOW, () => 0)).toEqual({ attempt: 3, runAt: NOW, delayMs: 0 });
    expect(decideRetry(options, 2, new Retry(), false, NOW, mid)).toEqual({ attempt: 3, runAt: NOW + 2_000, delayMs: 2_000 });
  });

  it('a lost worker is never retried, whatever the options or the thrown value', () => {
    expect(decideRetry({ retries: 10 }, 1, error, true, NOW, mid)).toBeNull();
    expect(decideRetry({}, 1, new Retry({ delay: 5 }), true, NOW, mid)).toBeNull();
  });

  it('a value whose instanceof check throws is just not a Retry', () => {
    const hostile = new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error('trap');
        },
      },
    );
    expect(isRetryRequest(hostile)).toBe(false);
    expect(decideRetry({}, 1, hostile, false, NOW, mid)).toBeNull();
    expect(decideRetry({ retries: 1 }, 1, hostile, false, NOW, mid)).toEqual({ attempt: 2, runAt: NOW, delayMs: 0 });
  });
});
