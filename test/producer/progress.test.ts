/**
 * `this.progress(value)` in a command and `job.progress()` on its handle:
 * a consumer in this process on the memory backend (the latest value wins,
 * bad values refused naming them, reports after the attempt ended dropped,
 * a busy loop coalesced, the result's TTL), immediate mode, and the same
 * round trip through a separate producer queue on SQLite, PostgreSQL and
 * Redis (polling and blocking) on real servers. The coalescing itself is
 * unit-tested in test/actors/progress-writer.test.ts.
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configure, createConsumer, createQueue, type BaseQueue, type Consumer, type JobContext } from '../../src/index.js';
import type { ResultRecord } from '../../src/backends/base.js';
import { progressKey } from '../../src/producer/progress.js';
import { uniqueName } from '../helpers/services.js';
import { define, forgetCommands } from '../helpers/commands.js';
import { backendServers } from '../helpers/servers.js';
import { freshMemoryQueue } from '../fixtures/cli-consumer-kit.js';

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const poll = { timeout: 10_000, interval: 20 };

/** A promise the test opens by hand, to hold a command between its reports. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

let consumer: Consumer | undefined;
afterEach(async () => {
  await consumer?.stop();
  consumer = undefined;
  forgetCommands();
  configure({ immediate: false });
  vi.restoreAllMocks();
});

async function startConsumer(queue: BaseQueue | string): Promise<Consumer> {
  consumer = createConsumer({ queue, workers: 2, periodic: false, logger: silent, pollDelayMs: 10, maxPollDelayMs: 50 });
  await consumer.start();
  return consumer;
}

/** A command that reports 10, then 50 and { stage: 'upload' }, held by two gates so the test sees each. */
function staged(queue: BaseQueue) {
  const first = gate();
  const second = gate();
  const cmd = define({ name: uniqueName('upload'), queue }, async function (this: JobContext) {
    this.progress(10);
    await first.opened;
    this.progress(50);
    this.progress({ stage: 'upload' });
    await second.opened;
    return 'uploaded';
  });
  return { cmd, first, second };
}

/** The progress records of `spy`'s setResults calls, in call order. */
function progressWrites(spy: { mock: { calls: unknown[][] } }): ResultRecord[][] {
  return spy.mock.calls.map((call) => (call[0] as ResultRecord[]).filter((r) => r.jobId.endsWith('#progress'))).filter((records) => records.length > 0);
}

describe('job progress on the memory backend', () => {
  it('job.progress() is undefined until the command reports, then the latest value, and stays after it completes', async () => {
    const queue = freshMemoryQueue();
    const { cmd, first, second } = staged(queue);
    const job = await cmd();
    expect(await job.progress()).toBeUndefined();
    await startConsumer(queue);
    await expect.poll(() => job.progress(), poll).toBe(10);
    first.open();
    await expect.poll(() => job.progress(), poll).toEqual({ stage: 'upload' });
    second.open();
    expect(await job.result({ timeout: 10_000 })).toBe('uploaded');
    expect(await job.progress()).toEqual({ stage: 'upload' });
    expect(await job.status()).toBe('completed'); // the progress record is not the result
  });

  it('refuses a number outside 0–100, NaN, undefined and what tagged JSON cannot hold, with a TypeError naming the value', async () => {
    const queue = freshMemoryQueue();
    class Upload {}
    const bad: unknown[] = [150, -1, Number.NaN, Number.POSITIVE_INFINITY, undefined, () => {}, new Upload(), Symbol('s'), { at: { fn: Math.max } }];
    const cmd = define({ name: uniqueName('bad'), queue }, function (this: JobContext) {
      this.progress(42);
      return bad.map((value) => {
        try {
          this.progress(value);
          return 'accepted';
        } catch (error) {
          return `${(error as Error).name}: ${(error as Error).message}`;
        }
      });
    });
    const job = await cmd();
    await startConsumer(queue);
    const refusals = (await job.result({ timeout: 10_000 })) as string[];
    const expected = [
      /^TypeError: this\.progress\(\): invalid value 150: must be a number from 0 to 100, or a JSON value/,
      /invalid value -1: /,
      /invalid value NaN: /,
      /invalid value Infinity: /,
      /invalid value undefined: /,
      /invalid value a function: .*cannot serialize progress: /,
      /invalid value \{\}: .*cannot serialize progress: .*class Upload/,
      /invalid value Symbol\(s\): .*cannot serialize progress/,
      /invalid value \{"at":\{\}\}: .*cannot serialize progress\.at\.fn/,
    ];
    expect(refusals).toHaveLength(expected.length);
    refusals.forEach((message, i) => expect(message).toMatch(expected[i]!));
    expect(await job.progress()).toBe(42); // nothing refused was stored
  });

  it('a report after the attempt ended (here: timed out) is dropped; the last one made in time stays', async () => {
    const queue = freshMemoryQueue();
    let late: Promise<void> | undefined;
    const cmd = define({ name: uniqueName('slow'), queue, timeout: 100 }, function (this: JobContext) {
      this.progress(1);
      late = sleep(300).then(() => this.progress(99));
      return late;
    });
    const job = await cmd();
    await startConsumer(queue);
    await expect(job.result({ timeout: 10_000 })).rejects.toThrow(/timed out|timeout/i);
    await late;
    await sleep(100); // time for a write the late report would have caused
    expect(await job.progress()).toBe(1);
  });

  it('coalesces a busy loop: a handful of writes for 1 000 reports, the last value stored', async () => {
    const queue = freshMemoryQueue();
    const cmd = define({ name: uniqueName('loop'), queue }, function (this: JobContext) {
      for (let i = 1; i <= 1000; i++) this.progress(i / 10);
    });
    const setResults = vi.spyOn(queue, 'setResults');
    const job = await cmd();
    await startConsumer(queue);
    await job.result({ timeout: 10_000 });
    await expect.poll(() => job.progress(), poll).toBe(100);
    const writes = progressWrites(setResults);
    // The first report goes out at once; the 999 made while it is in flight become one write of the last.
    expect(writes.length).toBeGreaterThanOrEqual(1);
    expect(writes.length).toBeLessThanOrEqual(3);
    expect(writes.flat().every((r) => r.jobId === progressKey(job.id))).toBe(true);
  });

  it("keeps the record as long as the result: the command's resultTtl, else configure()'s resultTtlMs; also with results: false", async () => {
    const queue = freshMemoryQueue();
    const setResults = vi.spyOn(queue, 'setResults');
    const own = define({ name: uniqueName('own-ttl'), queue, resultTtl: 12_345 }, function (this: JobContext) {
      this.progress(5);
    });
    const quiet = define({ name: uniqueName('no-results'), queue, results: false }, function (this: JobContext) {
      this.progress({ step: 2 });
    });
    const jobs = [await own(), await quiet()];
    await startConsumer(queue);
    await expect.poll(() => jobs[1]!.progress(), poll).toEqual({ step: 2 });
    await expect.poll(() => jobs[0]!.progress(), poll).toBe(5);
    const ttls = Object.fromEntries(
      progressWrites(setResults)
        .flat()
        .map((r) => [r.jobId, r.ttlMs]),
    );
    expect(ttls).toEqual({ [progressKey(jobs[0]!.id)]: 12_345, [progressKey(jobs[1]!.id)]: 24 * 60 * 60 * 1000 });
    expect(await jobs[1]!.status()).toBe('pending'); // results: false still stores no result
  });

  it('a command that never reports writes no progress record', async () => {
    const queue = freshMemoryQueue();
    const setResults = vi.spyOn(queue, 'setResults');
    const cmd = define({ name: uniqueName('plain'), queue }, () => 7);
    const job = await cmd();
    await startConsumer(queue);
    expect(await job.result({ timeout: 10_000 })).toBe(7);
    expect(await job.progress()).toBeUndefined();
    expect(progressWrites(setResults)).toEqual([]);
  });
});

describe('job progress under configure({ immediate: true })', () => {
  it('the handle answers the latest value the local run reported; a bad value fails the call; cmd.local() checks only', async () => {
    configure({ immediate: true });
    const cmd = define({ name: uniqueName('now') }, function (this: JobContext, value: unknown) {
      this.progress(10);
      if (value !== 'none') this.progress(value);
      return 'ok';
    });
    const job = await cmd({ stage: 'upload', at: new Date(0) });
    expect(await job.progress()).toEqual({ stage: 'upload', at: new Date(0) });
    expect(await (await cmd('none')).progress()).toBe(10);
    await expect(cmd(101)).rejects.toThrow(/this\.progress\(\): invalid value 101/);
    expect(await cmd.local(55)).toBe('ok');
    await expect(cmd.local(-5)).rejects.toThrow(TypeError);
  });
});

// ── real servers ───────────────────────────────────────────────────────────

const SERVERS = backendServers('progress').filter((server) => server.kind !== 'memory');

describe.each(SERVERS)('job progress on $kind', (server) => {
  it.skipIf(!server.available)('a consumer stores each report, the producer reads the latest back through its own queue', async () => {
    const url = server.url();
    const producer = createQueue(url);
    try {
      const { cmd, first, second } = staged(producer);
      const silentCmd = define({ name: uniqueName('plain'), queue: producer }, () => 'plain');
      const job = await cmd();
      const other = await silentCmd();
      expect(await job.progress()).toBeUndefined();
      await startConsumer(url); // its own connection: what one process stores, another reads
      await expect.poll(() => job.progress(), poll).toBe(10);
      first.open();
      await expect.poll(() => job.progress(), poll).toEqual({ stage: 'upload' });
      second.open();
      expect(await job.result({ timeout: 10_000 })).toBe('uploaded');
      expect(await job.progress()).toEqual({ stage: 'upload' });
      expect(await other.result({ timeout: 10_000 })).toBe('plain');
      expect(await other.progress()).toBeUndefined();
    } finally {
      await consumer?.stop();
      consumer = undefined;
      await producer.close();
      await server.dispose(url);
    }
  });
});
