/**
 * What a thrown value becomes on its way back from a pool's thread or
 * process (src/pool/protocol.ts): the same failed-store text and the same
 * retry decision as inline.
 */
import { describe, expect, it } from 'vitest';
import { Retry } from '../../src/index.js';
import { isRetryRequest } from '../../src/actors/retry-decision.js';
import { describeError, toError } from '../../src/shared/errors.js';
import { fromWire, toWire } from '../../src/pool/protocol.js';

/** Through a structured clone, as postMessage sends it. */
const roundTrip = (thrown: unknown) => fromWire(structuredClone(toWire(thrown)));

describe('errors across the pool boundary', () => {
  it('an Error keeps its name, message, stack and primitive fields', () => {
    const error = Object.assign(new TypeError('bad input'), { code: 'E_BAD', status: 422, nested: { no: 1 } });
    const back = roundTrip(error);
    expect(back.name).toBe('TypeError');
    expect(back.message).toBe('bad input');
    expect(back.stack).toBe(error.stack);
    expect(back).toMatchObject({ code: 'E_BAD', status: 422 });
    expect((back as unknown as { nested?: unknown }).nested).toBeUndefined();
    expect(describeError(back)).toBe(describeError(error));
  });

  it('a non-Error is the NonError inline would record', () => {
    for (const thrown of ['x', undefined, null, 10n, { a: 1 }]) {
      expect(describeError(roundTrip(thrown)).split('\n')[0]).toBe(describeError(toError(thrown)).split('\n')[0]);
    }
  });

  it('a Retry stays a Retry, with its delay', () => {
    const back = roundTrip(new Retry({ delay: 250, message: 'later' }));
    expect(isRetryRequest(back)).toBe(true);
    expect(back).toMatchObject({ delay: 250, message: 'later' });
    expect((roundTrip(new Retry()) as Retry).delay).toBeUndefined();
  });

  it('a hostile value (a Proxy whose traps throw) still gives a readable error', () => {
    const hostile = new Proxy(
      {},
      {
        get: () => {
          throw new Error('trap');
        },
        getPrototypeOf: () => {
          throw new Error('trap');
        },
      },
    );
    expect(() => roundTrip(hostile)).not.toThrow();
    expect(roundTrip(hostile).name).toBe('NonError');
  });
});
