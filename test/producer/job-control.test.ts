/**
 * `job.cancel()` from another queue connection (another process, as far as
 * the backend can tell) on every backend: a waiting or delayed job is
 * revoked; a running one has its `this.signal` aborted with
 * JobCancelledError within about a second (the consumer's control poll), its
 * attempt ends as 'cancelled' and is not retried — even when the command
 * ignores the signal; a finished or unknown job answers false. The memory
 * backend also covers a prefetched job cancelled before it started.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Job,
  JobCancelledError,
  JobRevokedError,
  createConsumer,
  createQueue,
  pipeline,
  type BaseQueue,
  type Consumer,
  type JobContext,
} from '../../src/index.js';
import { uniqueName } from '../helpers/services.js';
import { define, forgetCommands } from '../helpers/commands.js';
import { backendServers } from '../helpers/servers.js';

const silent = pino({ level: 'silent' });
const poll = { timeout: 10_000, interval: 20 };

let consumer: Consumer | undefined;
afterEach(async () => {
  await consumer?.stop();
  consumer = undefined;
  forgetCommands();
});

async function startConsumer(url: string, workers = 2): Promise<Consumer> {
  consumer = createConsumer({ queue: url, workers, periodic: false, logger: silent, pollDelayMs: 10, maxPollDelayMs: 50 });
  await consumer.start();
  return consumer;
}

/** A command that waits for its signal; `honours` false: it ignores it and returns later anyway. */
function waiter(queue: BaseQueue, honours: boolean) {
  const runs: Array<{ reason: unknown; at: number }> = [];
  let started = 0;
  const cmd = define({ name: uniqueName(honours ? 'waits' : 'ignores'), queue, retries: 3 }, function (this: JobContext) {
    started++;
    const signal = this.signal;
    return new Promise((resolve, reject) => {
      if (honours) {
        signal.addEventListener('abort', () => {
          runs.push({ reason: signal.reason, at: Date.now() });
          reject(signal.reason as Error);
        });
      } else {
        setTimeout(() => resolve('finished anyway'), 1_500);
      }
    });
  });
  return { cmd, runs, started: () => started };
}

const SERVERS = backendServers('cancel');

describe.each(SERVERS)('job.cancel() on $kind', (server) => {
  it.skipIf(!server.available)(
    'revokes a waiting or delayed job; aborts a running one within about a second, not retried; false once finished or unknown',
    async () => {
      const url = server.url();
      const producer = createQueue(url);
      try {
        const { cmd, runs, started } = waiter(producer, true);
        const waiting = await cmd();
        const delayed = await cmd.schedule({ delay: 60_000 });
        expect(await waiting.cancel()).toBe('revoked');
        expect(await delayed.cancel()).toBe('revoked');
        expect(await waiting.status()).toBe('revoked');
        await expect(waiting.result({ timeout: 1_000 })).rejects.toThrow(JobRevokedError);

        const running = await cmd();
        await startConsumer(url);
        await expect.poll(started, poll).toBe(1);
        const asked = Date.now();
        expect(await running.cancel()).toBe('cancelled');
        await expect(running.result({ timeout: 10_000 })).rejects.toThrow(JobCancelledError);
        expect(runs).toHaveLength(1);
        expect(runs[0]!.reason).toBeInstanceOf(JobCancelledError);
        expect(runs[0]!.at - asked).toBeLessThan(5_000); // the poll is 500 ms; generous for a loaded box
        expect(await running.status()).toBe('cancelled');
        // Not retried, though the command has retries left and rejected.
        expect(await producer.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
        expect(started()).toBe(1);

        expect(await running.cancel()).toBe(false);
        expect(await new Job('no-such-job', cmd.commandName, '987654321', producer).cancel()).toBe(false);
      } finally {
        await consumer?.stop();
        consumer = undefined;
        await producer.close();
        await server.dispose(url);
      }
    },
  );

  it.skipIf(!server.available)('a command that ignores its signal still ends as cancelled; its late return changes nothing', async () => {
    const url = server.url();
    const producer = createQueue(url);
    try {
      const { cmd, started } = waiter(producer, false);
      const job = await cmd();
      await startConsumer(url);
      await expect.poll(started, poll).toBe(1);
      expect(await job.cancel()).toBe('cancelled');
      await expect(job.result({ timeout: 10_000 })).rejects.toThrow(JobCancelledError);
      await new Promise((resolve) => setTimeout(resolve, 1_700)); // past the command's own return
      expect(await job.status()).toBe('cancelled');
      expect(started()).toBe(1);
    } finally {
      await consumer?.stop();
      consumer = undefined;
      await producer.close();
      await server.dispose(url);
    }
  });
});

describe('job.cancel() of a prefetched job (memory)', () => {
  it('a job handed to a busy worker but not started is cancelled without running', async () => {
    const url = `memory://${uniqueName('prefetch')}`;
    const producer = createQueue(url);
    const ran: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const cmd = define({ name: uniqueName('share'), queue: producer }, async (n: number) => {
      ran.push(n);
      if (n === 1) await gate;
    });
    const jobs = await cmd.map([[1], [2], [3]]);
    consumer = createConsumer({ queue: url, workers: 1, prefetch: 3, periodic: false, logger: silent });
    await consumer.start();
    await expect.poll(() => ran, poll).toEqual([1]);
    expect(await producer.stats()).toMatchObject({ leased: 3 }); // all three went to the one worker
    expect(await jobs[1]!.cancel()).toBe('cancelled');
    // The mark reaches the worker while job 1 still runs; then job 1 ends and 3 runs, 2 never does.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    release();
    await expect(jobs[2]!.result({ timeout: 10_000 })).resolves.toBeUndefined();
    await expect(jobs[1]!.result({ timeout: 1_000 })).rejects.toThrow(JobCancelledError);
    expect(ran).toEqual([1, 3]);
    await producer.close();
  });
});

describe('job.cancel() of a pipeline (memory)', () => {
  it('cancelling the pipeline while its first step runs ends it: result() rejects with JobCancelledError, later steps never run', async () => {
    const url = `memory://${uniqueName('pipeline')}`;
    const producer = createQueue(url);
    const { cmd: first, started } = waiter(producer, true);
    let later = 0;
    const second = define({ name: uniqueName('second'), queue: producer }, () => void later++);
    const job = await pipeline(first.with(), second.with());
    await startConsumer(url);
    await expect.poll(started, poll).toBe(1);
    expect(await job.cancel()).toBe('cancelled');
    await expect(job.result({ timeout: 10_000 })).rejects.toThrow(JobCancelledError);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(later).toBe(0);
    expect(await producer.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    await producer.close();
  });
});
