/**
 * The progress writer against a fake queue whose setResults calls the test
 * settles by hand: one write in flight at a time, what is reported meanwhile
 * coalesced to the latest value per job and written together next, message
 * ids passed along, a failed write put back (unless superseded) and retried
 * after PROGRESS_RETRY_MS, and after close no retry but one last write.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ResultRecord } from '../../src/backends/base.js';
import { PROGRESS_RETRY_MS, ProgressWriter } from '../../src/actors/progress-writer.js';

interface Call {
  records: { jobId: string; record: string }[];
  messageIds: readonly string[] | undefined;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function writer() {
  const calls: Call[] = [];
  const failed: { error: unknown; count: number; closed: boolean }[] = [];
  const tracked: Promise<unknown>[] = [];
  const queue = {
    setResults(records: readonly ResultRecord[], messageIds?: readonly string[], deliveries?: readonly number[]): Promise<void> {
      // Each record travels with its own message's delivery: the backend fences it by that.
      expect(deliveries).toEqual(messageIds?.map(deliveryOf));
      return new Promise<void>((resolve, reject) => {
        calls.push({ records: records.map(({ jobId, record }) => ({ jobId, record })), messageIds, resolve, reject });
      });
    },
  };
  const progress = new ProgressWriter({
    queue,
    track: (promise) => (tracked.push(promise), promise),
    onFailed: (error, count, closed) => failed.push({ error, count, closed }),
  });
  return { progress, queue, calls, failed, tracked };
}

/** Each message's delivery in these tests. */
const deliveryOf = (messageId: string): number => 100 + Number(messageId.slice(1));
const rec = (job: string, value: string): ResultRecord => ({ jobId: `${job}#progress`, record: value, ttlMs: 1000 });
/** Lets the settled write's callbacks run. */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe('ProgressWriter', () => {
  it('writes the first report at once and nothing when nobody reports', () => {
    const { progress, calls } = writer();
    expect(calls).toHaveLength(0);
    progress.write('m1', deliveryOf('m1'), rec('a', '10'));
    expect(calls.map((c) => c.records)).toEqual([[{ jobId: 'a#progress', record: '10' }]]);
    expect(calls[0]!.messageIds).toEqual(['m1']);
  });

  it('keeps one write in flight; reports meanwhile coalesce to the latest per job, written together next', async () => {
    const { progress, calls } = writer();
    progress.write('m1', deliveryOf('m1'), rec('a', '10'));
    for (let i = 11; i <= 50; i++) progress.write('m1', deliveryOf('m1'), rec('a', String(i)));
    progress.write('m2', deliveryOf('m2'), rec('b', '"upload"'));
    progress.write('m2', deliveryOf('m2'), rec('b', '"done"'));
    expect(calls).toHaveLength(1); // nothing more while the first is in flight
    expect(progress.pending).toBe(2);

    calls[0]!.resolve();
    await settled();
    expect(calls).toHaveLength(2);
    expect(calls[1]!.records).toEqual([
      { jobId: 'a#progress', record: '50' },
      { jobId: 'b#progress', record: '"done"' },
    ]);
    expect(calls[1]!.messageIds).toEqual(['m1', 'm2']);
    expect(progress.pending).toBe(0);

    calls[1]!.resolve();
    await settled();
    expect(calls).toHaveLength(2); // idle again: no write without a report
    progress.write('m1', deliveryOf('m1'), rec('a', '60'));
    expect(calls).toHaveLength(3);
  });

  it('puts a failed write back unless a newer value replaced it, and tries again after PROGRESS_RETRY_MS', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { progress, calls, failed } = writer();
    progress.write('m1', deliveryOf('m1'), rec('a', '10'));
    progress.write('m2', deliveryOf('m2'), rec('b', '20')); // waits behind the first
    progress.write('m1', deliveryOf('m1'), rec('a', '30'));
    calls[0]!.resolve();
    await settled();
    expect(calls[1]!.records.map((r) => r.record)).toEqual(['20', '30']);

    progress.write('m1', deliveryOf('m1'), rec('a', '40')); // newer than the '30' in flight
    const outage = new Error('connection refused');
    calls[1]!.reject(outage);
    await settled();
    expect(failed).toEqual([{ error: outage, count: 2, closed: false }]);
    progress.write('m2', deliveryOf('m2'), rec('c', '5')); // during the pause: waits for the retry too
    expect(calls).toHaveLength(2);

    vi.advanceTimersByTime(PROGRESS_RETRY_MS - 1);
    expect(calls).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(calls).toHaveLength(3);
    // a's newer 40 won over the failed 30; b's failed 20 came back.
    expect(Object.fromEntries(calls[2]!.records.map((r) => [r.jobId, r.record]))).toEqual({ 'a#progress': '40', 'b#progress': '20', 'c#progress': '5' });
  });

  it('a backend that throws instead of rejecting counts as a failed write', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const failed: unknown[] = [];
    let throwNext = true;
    const written: string[][] = [];
    const progress = new ProgressWriter({
      queue: {
        setResults: (records) => {
          if (throwNext) {
            throwNext = false;
            throw new TypeError('bad record');
          }
          written.push(records.map((r) => r.record));
          return Promise.resolve();
        },
      },
      track: (promise) => promise,
      onFailed: (error) => failed.push(error),
    });
    progress.write('m1', deliveryOf('m1'), rec('a', '1'));
    await settled();
    expect(failed).toHaveLength(1);
    vi.advanceTimersByTime(PROGRESS_RETRY_MS);
    expect(written).toEqual([['1']]);
  });

  it('after close: no retry timer, a failure is reported as closed, and flush() writes what is pending once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { progress, calls, failed, tracked } = writer();
    progress.write('m1', deliveryOf('m1'), rec('a', '10'));
    progress.write('m1', deliveryOf('m1'), rec('a', '20'));
    progress.close();
    progress.flush(); // in flight already: the pending 20 follows it
    expect(calls).toHaveLength(1);
    calls[0]!.reject(new Error('gone'));
    await settled();
    expect(failed.map((f) => f.closed)).toEqual([true]);
    expect(calls).toHaveLength(2); // the newer value still got its write, at once
    expect(calls[1]!.records.map((r) => r.record)).toEqual(['20']);
    calls[1]!.resolve();
    await settled();
    vi.advanceTimersByTime(10 * PROGRESS_RETRY_MS);
    expect(calls).toHaveLength(2); // the failed 10 was not retried
    expect(tracked).toHaveLength(2);
  });

  it('close() cancels a pending retry; flush() then writes the put-back value one last time', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { progress, calls } = writer();
    progress.write('m1', deliveryOf('m1'), rec('a', '10'));
    calls[0]!.reject(new Error('down'));
    await settled();
    progress.close();
    vi.advanceTimersByTime(PROGRESS_RETRY_MS);
    expect(calls).toHaveLength(1);
    progress.flush();
    expect(calls).toHaveLength(2);
    expect(calls[1]!.records.map((r) => r.record)).toEqual(['10']);
  });
});
