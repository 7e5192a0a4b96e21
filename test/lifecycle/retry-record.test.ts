/**
 * Issue 13, item 5: the 'retrying' record of attempt n must be stored before
 * attempt n + 1 can start — else, when that write is slow (a busy pool, a
 * loaded box), attempt n + 1 can finish first and the stale 'retrying'
 * record overwrites its final one: `job.result()` then waits for ever and
 * `status()` says 'retrying' for a finished job. Seen on PostgreSQL under
 * load as "no result within 10 s" for a job that had retried.
 *
 * Here every 'retrying' write of the consumer's queue is held back by
 * HOLD_MS, far longer than an immediate retry needs to run on any backend,
 * and each test checks the records reached the store in attempt order and
 * that the final one is what result() and status() report.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CommandRegistry,
  JobFailedError,
  Retry,
  createConsumer,
  createQueue,
  queueCommand,
  registry as globalRegistry,
  type BaseQueue,
  type Consumer,
} from '../../src/index.js';
import type { ResultRecord } from '../../src/backends/base.js';
import { resolveQueue } from '../../src/producer/settings.js';
import { BACKENDS, sleep } from '../fixtures/lifecycle-kit.js';

const HOLD_MS = 400;

interface Written {
  status: string;
  attempt: number;
}

/**
 * Holds back every setResults call carrying a 'retrying' record, and logs what was stored per job id in store
 * order. A finished job's record goes with its ack (ackWithResults): a backend that stores it in the same call
 * (Redis: one script) never calls setResults for it, so those are logged once that call has landed.
 */
function holdRetryingRecords(queue: BaseQueue): Map<string, Written[]> {
  const stored = new Map<string, Written[]>();
  const logged = new WeakSet<ResultRecord>();
  const log = (records: readonly ResultRecord[]) => {
    for (const record of records) {
      if (logged.has(record)) continue;
      logged.add(record);
      const { status, attempt } = JSON.parse(record.record) as Written;
      stored.set(record.jobId, [...(stored.get(record.jobId) ?? []), { status, attempt }]);
    }
  };
  const setResults = queue.setResults.bind(queue);
  queue.setResults = async (records) => {
    if (records.some((r) => (JSON.parse(r.record) as Written).status === 'retrying')) await sleep(HOLD_MS);
    await setResults(records);
    log(records);
  };
  const ackWithResults = queue.ackWithResults.bind(queue);
  queue.ackWithResults = async (ids, deliveries, results, resultIds, resultDeliveries) => {
    const refused = await ackWithResults(ids, deliveries, results, resultIds, resultDeliveries);
    log(results);
    return refused;
  };
  return stored;
}

for (const backend of BACKENDS) {
  const { kind } = backend;

  (backend.available ? describe.concurrent : describe.skip)(`a slow 'retrying' record write on ${kind}`, () => {
    const url = backend.freshUrl();
    const name = (base: string) => `${kind}-record-order-${base}`;
    const recovers = queueCommand({ name: name('recovers'), queue: url, retries: 1 }, function () {
      if (this.attempt === 1) throw new Error('attempt 1 fails');
      return 'recovered';
    });
    const givesUp = queueCommand({ name: name('givesUp'), queue: url, retries: 1 }, function () {
      throw new Retry({ message: `attempt ${this.attempt} asks again` });
    });
    const registry = new CommandRegistry();
    for (const command of [recovers, givesUp]) registry.register(globalRegistry.get(command.commandName)!);

    let queue: BaseQueue;
    let stored: Map<string, Written[]>;
    let consumer: Consumer;
    beforeAll(async () => {
      queue = createQueue(url, { onWarning: () => {} });
      stored = holdRetryingRecords(queue);
      consumer = createConsumer({ queue, registry, logger: pino({ level: 'silent' }), workers: 2, periodic: false, pollDelayMs: 5, maxPollDelayMs: 50 });
      await consumer.start();
    });
    afterAll(async () => {
      await consumer?.stop({ timeout: 2_000 });
      await queue?.close();
      await resolveQueue(url).close();
      await backend.dispose(url);
    });

    it.sequential('an immediate retry that succeeds: result() gives the value, status completed, records stored in attempt order', async () => {
      const job = await recovers();
      expect(await job.result({ timeout: 5_000 })).toBe('recovered');
      await sleep(2 * HOLD_MS); // a 'retrying' write still held back would have landed by now
      expect(await job.status()).toBe('completed');
      expect(await job.result({ timeout: 1_000 })).toBe('recovered');
      expect(stored.get(job.id)).toEqual([
        { status: 'retrying', attempt: 1 },
        { status: 'completed', attempt: 2 },
      ]);
    });

    it.sequential('an immediate retry that fails for good: result() throws JobFailedError, status failed, records stored in attempt order', async () => {
      const job = await givesUp();
      const failure = (timeout: number) =>
        job.result({ timeout }).then(
          () => null,
          (e: unknown) => e,
        );
      const error = await failure(5_000);
      expect(error).toBeInstanceOf(JobFailedError);
      expect((error as JobFailedError).attempt).toBe(2);
      await sleep(2 * HOLD_MS);
      expect(await job.status()).toBe('failed');
      expect(await failure(1_000)).toBeInstanceOf(JobFailedError);
      expect(stored.get(job.id)).toEqual([
        { status: 'retrying', attempt: 1 },
        { status: 'failed', attempt: 2 },
      ]);
    });
  });
}
