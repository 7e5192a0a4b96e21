/**
 * queueEvents() on every backend, the listener on a connection of its own
 * (another process, as far as the backend can tell): the events of jobs a
 * consumer runs after `ready` — started, progress, completed with its
 * result, failed for good with its error, cancelled — and what a listener
 * that fell behind the log is told it missed. Without a listener a consumer
 * publishes nothing (the log stays empty): the cost guarantee.
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigError,
  MemoryQueue,
  createConsumer,
  createQueue,
  queueEvents,
  type BaseQueue,
  type Consumer,
  type JobContext,
  type MissedEvents,
  type QueueEvent,
} from '../../src/index.js';
import { LISTENER_TTL_MS, MAX_EVENTS } from '../../src/backends/control.js';
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

/** Every event a listener gets, as `type:command-suffix` lines plus the events themselves. */
function record(events: ReturnType<typeof queueEvents>) {
  const seen: Array<{ type: string; event: QueueEvent }> = [];
  for (const type of ['started', 'completed', 'failed', 'progress', 'cancelled'] as const) events.on(type, (event) => seen.push({ type, event }));
  const missed: MissedEvents[] = [];
  events.on('missed', (m) => missed.push(m));
  return { seen, missed };
}

const SERVERS = backendServers('events');

describe.each(SERVERS)('queueEvents() on $kind', (server) => {
  it.skipIf(!server.available)('a listener in another connection sees each job’s events, with results, errors and progress, in order', async () => {
    const url = server.url();
    const producer = createQueue(url);
    const name = producer.name;
    try {
      // Nobody listens yet: jobs run, the log stays empty.
      const quiet = define({ name: uniqueName('quiet'), queue: producer }, () => 'unseen');
      consumer = createConsumer({ queue: url, workers: 2, periodic: false, logger: silent, pollDelayMs: 10, maxPollDelayMs: 50 });
      await consumer.start();
      await (await quiet()).result({ timeout: 10_000 });
      expect((await producer.readEvents(0, 10)).last).toBe(0);

      const events = queueEvents(url, { queue: name });
      const { seen, missed } = record(events);
      await events.ready;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const ok = define({ name: uniqueName('ok'), queue: producer }, function (this: JobContext, n: number) {
        this.progress(50);
        return { doubled: n * 2, at: new Date(0) };
      });
      const bad = define({ name: uniqueName('bad'), queue: producer, retries: 0 }, () => {
        throw new TypeError('no good');
      });
      const slow = define({ name: uniqueName('slow'), queue: producer }, () => held);
      const [a, b, c] = [await ok(21), await bad(), await slow()];
      await a.result({ timeout: 10_000 });
      await expect(b.result({ timeout: 10_000 })).rejects.toThrow(/no good/);
      await expect.poll(() => seen.some((s) => s.type === 'started' && s.event.jobId === c.id), poll).toBe(true);
      expect(await c.cancel()).toBe('cancelled');
      await expect.poll(() => seen.some((s) => s.type === 'cancelled'), poll).toBe(true);
      release();

      const of = (jobId: string) => seen.filter((s) => s.event.jobId === jobId);
      expect(of(a.id).map((s) => s.type)).toEqual(['started', 'progress', 'completed']);
      expect(of(a.id).at(-1)!.event).toMatchObject({ jobId: a.id, command: ok.commandName, attempt: 1, result: { doubled: 42, at: new Date(0) } });
      expect(of(a.id)[1]!.event.progress).toBe(50);
      expect(of(b.id).map((s) => s.type)).toEqual(['started', 'failed']);
      expect(of(b.id)[1]!.event.error).toMatchObject({ name: 'TypeError', message: 'no good' });
      expect(of(c.id).map((s) => s.type)).toEqual(['started', 'cancelled']);
      expect(of(c.id)[0]!.event.at).toBeInstanceOf(Date);
      expect(missed).toEqual([]);
      await events.close();
    } finally {
      await consumer?.stop();
      consumer = undefined;
      await producer.close();
      await server.dispose(url);
    }
  });

  it.skipIf(!server.available)(
    `a listener that falls more than ${MAX_EVENTS} events behind is told how many it missed`,
    async () => {
      const url = server.url();
      const queue = createQueue(url);
      try {
        // A slow reader: the log is filled past what it keeps before the listener's first read (about 11 s after `ready`: ample for 25 writes on a loaded box).
        const events = queueEvents(url, { queue: queue.name, pollMs: 12_000 });
        const { seen, missed } = record(events);
        const started = JSON.stringify({ type: 'started', jobId: 'j', command: 'c', attempt: 1, at: 0 });
        const total = MAX_EVENTS + 2_500;
        await events.ready;
        for (let i = 0; i < total / 500; i++) await queue.publishEvents(Array.from({ length: 500 }, () => started));
        await expect.poll(() => seen.length + (missed[0]?.count ?? 0), { timeout: 30_000, interval: 50 }).toBe(total);
        expect(missed).toHaveLength(1);
        expect(missed[0]!.count).toBeGreaterThanOrEqual(total - 2 * MAX_EVENTS);
        expect(missed[0]!.reason).toMatch(/trimmed/);
        expect(seen.length).toBeGreaterThanOrEqual(MAX_EVENTS);
        await events.close();
      } finally {
        await queue.close();
        await server.dispose(url);
      }
    },
    50_000,
  );
});

describe('queueEvents() arguments', () => {
  it('refuses a bad poll interval, another queue name than the queue given, or something not a queue', () => {
    const queue: BaseQueue = createQueue(`memory://${uniqueName('args')}`);
    expect(() => queueEvents(queue, { pollMs: 0 })).toThrow(/invalid pollMs 0/);
    expect(() => queueEvents(queue, { queue: 'other' })).toThrow(ConfigError);
    expect(() => queueEvents(42 as never)).toThrow(/expected a BaseQueue or a queue URL, got 42/);
  });
});

describe('queueEvents() when its registration lapses', () => {
  it('says it may have missed events (count unknown) once it is registered again, and reports the failures meanwhile', async () => {
    vi.useFakeTimers();
    try {
      let down = false;
      class Flaky extends MemoryQueue {
        override async registerListener(listenerId: string): Promise<number> {
          if (down) throw new Error('server unreachable');
          return super.registerListener(listenerId);
        }
      }
      const queue = new Flaky(uniqueName('lapse'));
      const events = queueEvents(queue);
      const { missed } = record(events);
      const errors: Error[] = [];
      events.on('error', (error) => errors.push(error));
      await vi.advanceTimersByTimeAsync(1_200);
      await events.ready;
      down = true;
      await vi.advanceTimersByTimeAsync(LISTENER_TTL_MS + 5_000);
      expect(errors.length).toBeGreaterThanOrEqual(3);
      expect(errors[0]!.message).toBe('server unreachable');
      expect(missed).toEqual([]);
      down = false;
      await vi.advanceTimersByTimeAsync(LISTENER_TTL_MS / 3);
      expect(missed).toHaveLength(1);
      expect(missed[0]).toMatchObject({ count: null, reason: expect.stringMatching(/not registered from .*consumers may not have published/) as string });
      await events.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
