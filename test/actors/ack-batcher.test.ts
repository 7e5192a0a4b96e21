/**
 * The ACK batcher against a fake queue: one flush per turn of the event loop,
 * results stored before the acks of the same flush, batches split above
 * maxAckBatch, a failed flush put back after ACK_RETRY_MS, refused ids reported.
 * Every call is checked to carry each id's own delivery (the fence), through
 * splits and retries too.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BaseQueue, type ResultRecord } from '../../src/backends/base.js';
import { ACK_RETRY_MS, AckBatcher } from '../../src/actors/ack-batcher.js';

type Call = ['setResults', string[]] | ['ackBatch', string[]];

/** Each message's delivery in these tests: derived from its id, so the fake can check every id travels with its own. */
const deliveryOf = (id: string): number => 1000 + [...id].reduce((sum, c) => sum * 31 + c.charCodeAt(0), 0);

/** Throws unless `deliveries` holds, for each id, that id's delivery (same order). */
function expectDeliveries(what: string, ids: readonly string[] | undefined, deliveries: readonly number[] | undefined): void {
  const expected = (ids ?? []).map(deliveryOf);
  if (JSON.stringify(deliveries) !== JSON.stringify(expected))
    throw new Error(`${what}: deliveries ${JSON.stringify(deliveries)}, expected ${JSON.stringify(expected)}`);
}

/**
 * The two BaseQueue methods the batcher's ackWithResults uses (BaseQueue's own, the two-call
 * default), logging each call; `next*` decide how the next one answers.
 */
function fakeQueue() {
  const calls: Call[] = [];
  const answers = { refused: [] as string[], ackError: null as Error | null, resultsGate: null as Promise<void> | null };
  const queue = {
    setResults(records: readonly ResultRecord[], messageIds?: readonly string[], deliveries?: readonly number[]): Promise<void> {
      expectDeliveries('setResults', messageIds, deliveries);
      if (messageIds?.length !== records.length) throw new Error('setResults: a message id per record expected');
      calls.push(['setResults', records.map((r) => r.jobId)]);
      return answers.resultsGate ?? Promise.resolve();
    },
    ackBatch(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
      expectDeliveries('ackBatch', ids, deliveries);
      calls.push(['ackBatch', [...ids]]);
      const error = answers.ackError;
      answers.ackError = null;
      return error ? Promise.reject(error) : Promise.resolve(answers.refused);
    },
    ackWithResults: BaseQueue.prototype.ackWithResults,
  };
  return { queue, calls, answers };
}

const record = (jobId: string): ResultRecord => ({ jobId, record: '{}', ttlMs: 1000 });
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function batcher(maxAckBatch = 500) {
  const fake = fakeQueue();
  const refused: string[][] = [];
  const failed: { error: unknown; ids: readonly string[]; closed: boolean }[] = [];
  const tracked: Promise<unknown>[] = [];
  const acks = new AckBatcher({
    queue: fake.queue,
    maxAckBatch,
    track: (promise) => (tracked.push(promise), promise),
    onRefused: (ids) => refused.push(ids),
    onFailed: (error, ids, closed) => failed.push({ error, ids: [...ids], closed }),
  });
  return { acks, ...fake, refused, failed, tracked };
}

afterEach(() => {
  vi.restoreAllMocks(); // before useRealTimers: a spy on a fake timer would put the fake back
  vi.useRealTimers();
});

describe('AckBatcher', () => {
  it('writes nothing until the turn ends, then all ACKs of the turn in one ackBatch call', async () => {
    const { acks, calls, tracked } = batcher();
    for (let i = 0; i < 100; i++) acks.add(`m${i}`, deliveryOf(`m${i}`), undefined);
    expect(calls).toEqual([]);
    await nextTurn();
    expect(calls).toEqual([['ackBatch', Array.from({ length: 100 }, (_, i) => `m${i}`)]]);
    expect(tracked).toHaveLength(1);
  });

  it('stores the results of a flush before its acks, and acks only once they are stored', async () => {
    const { acks, calls, answers } = batcher();
    let storeResults!: () => void;
    answers.resultsGate = new Promise<void>((resolve) => (storeResults = resolve));
    acks.add('a', deliveryOf('a'), record('job-a'));
    acks.add('b', deliveryOf('b'), undefined);
    acks.add('c', deliveryOf('c'), record('job-c'));
    await nextTurn();
    expect(calls).toEqual([['setResults', ['job-a', 'job-c']]]);
    storeResults();
    await nextTurn();
    expect(calls).toEqual([
      ['setResults', ['job-a', 'job-c']],
      ['ackBatch', ['a', 'b', 'c']],
    ]);
  });

  it('splits above maxAckBatch: the rest go in the following turns, the results with the first', async () => {
    const { acks, calls } = batcher(2);
    for (const id of ['a', 'b', 'c', 'd', 'e']) acks.add(id, deliveryOf(id), record(`job-${id}`));
    await nextTurn();
    await nextTurn();
    await nextTurn();
    expect(calls).toEqual([
      ['setResults', ['job-a', 'job-b', 'job-c', 'job-d', 'job-e']],
      ['ackBatch', ['a', 'b']],
      ['ackBatch', ['c', 'd']],
      ['ackBatch', ['e']],
    ]);
  });

  it('does not call the queue for a turn with nothing pending', async () => {
    const { acks, calls } = batcher();
    acks.flush();
    await nextTurn();
    expect(calls).toEqual([]);
  });

  it('reports the ids the backend refused', async () => {
    const { acks, answers, refused } = batcher();
    answers.refused = ['b'];
    acks.add('a', deliveryOf('a'), undefined);
    acks.add('b', deliveryOf('b'), undefined);
    await nextTurn();
    await nextTurn();
    expect(refused).toEqual([['b']]);
  });

  it('puts a failed flush back, ids and results, and writes it again after ACK_RETRY_MS', async () => {
    vi.useFakeTimers();
    const { acks, calls, answers, failed } = batcher();
    const down = new Error('connection reset');
    answers.ackError = down;
    acks.add('a', deliveryOf('a'), record('job-a'));
    await vi.advanceTimersByTimeAsync(0);
    expect(failed).toEqual([{ error: down, ids: ['a'], closed: false }]);
    acks.add('b', deliveryOf('b'), undefined);
    await vi.advanceTimersByTimeAsync(ACK_RETRY_MS - 1);
    expect(calls).toEqual([
      ['setResults', ['job-a']],
      ['ackBatch', ['a']],
      ['ackBatch', ['b']],
    ]);
    // The retry timer puts them back and the turn after it writes them (an immediate
    // set while the clock is ticking needs the clock to move on to run).
    await vi.advanceTimersByTimeAsync(2);
    expect(calls.slice(3)).toEqual([
      ['setResults', ['job-a']],
      ['ackBatch', ['a']],
    ]);
  });

  it('the retry timer does not keep the process alive', async () => {
    vi.useFakeTimers();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const { acks, answers } = batcher();
    answers.ackError = new Error('down');
    acks.add('a', deliveryOf('a'), undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.results[0]?.value.hasRef()).toBe(false);
  });

  it('once closed, flush() drains at once and a failure is reported, not retried', async () => {
    vi.useFakeTimers();
    const { acks, calls, answers, failed } = batcher();
    acks.add('a', deliveryOf('a'), undefined);
    acks.close();
    answers.ackError = new Error('down');
    acks.flush();
    expect(calls).toEqual([['ackBatch', ['a']]]);
    await vi.advanceTimersByTimeAsync(10 * ACK_RETRY_MS);
    expect(failed).toMatchObject([{ ids: ['a'], closed: true }]);
    expect(calls).toHaveLength(1);
  });
});
