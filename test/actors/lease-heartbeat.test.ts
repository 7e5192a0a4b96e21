/**
 * The lease heartbeat with fake timers: every leaseMs/3 it extends the leases
 * of what is still outstanding, in one call; it reports refused ids and
 * errors, stays quiet with nothing outstanding, and never holds the process.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaseHeartbeat, heartbeatIntervalMs } from '../../src/actors/lease-heartbeat.js';

function heartbeat(leaseMs = 300) {
  const extended: string[][] = [];
  const deliveries: number[][] = [];
  const answers = { refused: [] as string[], error: null as Error | null };
  const refused: string[][] = [];
  const errors: unknown[] = [];
  const tracked: Promise<unknown>[] = [];
  const queue = {
    leaseMs,
    extend(ids: readonly string[], tokens?: readonly number[]): Promise<string[]> {
      extended.push([...ids]);
      deliveries.push([...(tokens ?? [])]);
      return answers.error ? Promise.reject(answers.error) : Promise.resolve(answers.refused);
    },
  };
  const leases = new LeaseHeartbeat({
    queue,
    track: (promise) => (tracked.push(promise), promise),
    onRefused: (ids) => refused.push(ids),
    onError: (error) => errors.push(error),
  });
  return { leases, extended, deliveries, answers, refused, errors, tracked };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.restoreAllMocks(); // before useRealTimers: a spy on a fake timer would put the fake back
  vi.useRealTimers();
});

describe('heartbeatIntervalMs', () => {
  it('is a third of the lease, rounded down, and never under 50 ms', () => {
    expect(heartbeatIntervalMs(30_000)).toBe(10_000);
    expect(heartbeatIntervalMs(1_000)).toBe(333);
    expect(heartbeatIntervalMs(150)).toBe(50);
    expect(heartbeatIntervalMs(100)).toBe(50);
  });
});

describe('LeaseHeartbeat', () => {
  it('extends every outstanding lease in one call each leaseMs/3', async () => {
    const { leases, extended, tracked } = heartbeat(300);
    leases.lease('a', 1);
    leases.lease('b', 1);
    await vi.advanceTimersByTimeAsync(99);
    expect(extended).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(extended).toEqual([['a', 'b']]);
    expect(tracked).toHaveLength(1);
    leases.settle('a', 1);
    await vi.advanceTimersByTimeAsync(100);
    expect(extended).toEqual([['a', 'b'], ['b']]);
    leases.stop();
  });

  it('extends each message by the delivery it holds: a newer delivery replaces the older, whose settle leaves it alone', async () => {
    const { leases, extended, deliveries } = heartbeat(300);
    leases.lease('a', 1);
    leases.lease('b', 1);
    leases.lease('a', 2); // 'a' read again: its lease had lapsed, this is a new delivery
    await vi.advanceTimersByTimeAsync(100);
    expect(extended).toEqual([['a', 'b']]);
    expect(deliveries).toEqual([[2, 1]]);
    leases.settle('a', 1); // the old delivery's run ends late: the new one is still kept alive
    await vi.advanceTimersByTimeAsync(100);
    expect(extended.at(-1)).toEqual(['a', 'b']);
    expect(deliveries.at(-1)).toEqual([2, 1]);
    leases.settle('a', 2);
    await vi.advanceTimersByTimeAsync(100);
    expect(extended.at(-1)).toEqual(['b']);
    leases.stop();
  });

  it('makes no call while nothing is outstanding', async () => {
    const { leases, extended } = heartbeat(300);
    await vi.advanceTimersByTimeAsync(1_000);
    leases.lease('a', 1);
    leases.settle('a', 1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(extended).toEqual([]);
    leases.stop();
  });

  it('reports the ids the backend refused, and a failed extend as an error', async () => {
    const { leases, answers, refused, errors } = heartbeat(300);
    leases.lease('a', 1);
    leases.lease('b', 1);
    answers.refused = ['b'];
    await vi.advanceTimersByTimeAsync(100);
    expect(refused).toEqual([['b']]);
    const down = new Error('connection reset');
    answers.error = down;
    await vi.advanceTimersByTimeAsync(100);
    expect(errors).toEqual([down]);
    expect(refused).toHaveLength(1);
    leases.stop();
  });

  it('stop() ends the beats; takeAll() hands back and forgets what was still leased', async () => {
    const { leases, extended } = heartbeat(300);
    leases.lease('a', 1);
    leases.lease('b', 1);
    expect(leases.size).toBe(2);
    expect(leases.takeAll()).toEqual({ ids: ['a', 'b'], deliveries: [1, 1] });
    expect(leases.size).toBe(0);
    leases.lease('c', 1);
    leases.stop();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(extended).toEqual([]);
  });

  it('its interval does not keep the process alive', () => {
    const spy = vi.spyOn(globalThis, 'setInterval');
    const { leases } = heartbeat(300);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.calls[0]?.[1]).toBe(100);
    expect(spy.mock.results[0]?.value.hasRef()).toBe(false);
    leases.stop();
  });
});
