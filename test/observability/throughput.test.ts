/**
 * The consumer's throughput tally (actors/throughput-tally.ts): counts per
 * queue and minute until a heartbeat takes them; a minute that ends is kept
 * apart; counts a failed heartbeat gives back go with the next one, merged;
 * minutes older than the backend's window are dropped, not sent. And end to
 * end: a heartbeat that fails loses no count; a consumer of several queues
 * counts each job under its own queue.
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ThroughputTally } from '../../src/actors/throughput-tally.js';
import { THROUGHPUT_WINDOW_MS, type ThroughputCount } from '../../src/backends/control.js';
import { OrderedQueues } from '../../src/consumer/ordered-queues.js';
import { createConsumer, MemoryQueue, queueCommand, registry } from '../../src/index.js';
import { uniqueName } from '../helpers/services.js';

const T0 = Date.UTC(2026, 11, 7, 6, 0, 0);
afterEach(() => vi.useRealTimers());

describe('ThroughputTally', () => {
  it('counts per queue and minute, keeps a finished minute apart, and starts from zero after take()', () => {
    vi.useFakeTimers({ now: T0 + 10_000 });
    const ordered = new OrderedQueues([new MemoryQueue(uniqueName('t'), { name: 'a' }), new MemoryQueue(uniqueName('t'), { name: 'b' })]);
    const tally = new ThroughputTally(['a', 'b'], (id) => ordered.memberIndex(id));
    expect(tally.empty).toBe(true);
    tally.settled('0:1', false);
    tally.settled('0:2', true);
    tally.settled('1:7', false);
    tally.settled('junk', false); // nobody's: the first queue
    vi.setSystemTime(T0 + 70_000);
    tally.settled('1:8', false);
    expect(sorted(tally.take())).toEqual([
      { queue: 'a', minute: T0, completed: 2, failed: 1 },
      { queue: 'b', minute: T0, completed: 1, failed: 0 },
      { queue: 'b', minute: T0 + 60_000, completed: 1, failed: 0 },
    ]);
    expect(tally.empty).toBe(true);
    expect(tally.take()).toEqual([]);
  });

  it('sends given-back counts with the next take, merged per minute; drops minutes past the window', () => {
    vi.useFakeTimers({ now: T0 });
    const tally = new ThroughputTally(['q']);
    tally.settled('1', false);
    const lost = tally.take();
    tally.settled('2', false);
    tally.giveBack(lost); // the heartbeat failed
    tally.giveBack([{ queue: 'q', minute: T0 - THROUGHPUT_WINDOW_MS, completed: 5, failed: 0 }]); // an hour old
    expect(tally.empty).toBe(false);
    expect(tally.take()).toEqual([{ queue: 'q', minute: T0, completed: 2, failed: 0 }]);
  });
});

describe('the heartbeat carries the counts', () => {
  it('a heartbeat that fails loses no count: the next one carries it', { timeout: 30_000 }, async () => {
    const queue = new MemoryQueue(uniqueName('tally'), { name: 'tally' });
    const sent: ThroughputCount[][] = [];
    let failNext = true;
    const beat = queue.heartbeat.bind(queue);
    queue.heartbeat = async (id, state, counts = []) => {
      if (counts.length > 0 && failNext) {
        failNext = false;
        throw new Error('backend away');
      }
      sent.push([...counts]);
      return beat(id, state, counts);
    };
    const cmd = queueCommand({ name: uniqueName('cmd'), queue }, () => 'ok');
    const consumer = createConsumer({ queue, workers: 1, periodic: false, logger: pino({ level: 'silent' }), pollDelayMs: 10, maxPollDelayMs: 20 });
    try {
      await consumer.start();
      const jobs = await Promise.all([1, 2, 3].map(() => cmd()));
      await Promise.all(jobs.map((j) => j.result({ timeout: 10_000 })));
      // The first beat with counts fails; the next (5 s later) carries them.
      await expect.poll(() => sent.flat().reduce((n, c) => n + c.completed, 0), { timeout: 15_000, interval: 100 }).toBe(3);
      expect(failNext).toBe(false);
      expect((await queue.throughput()).reduce((n, b) => n + b.completed, 0)).toBe(3);
    } finally {
      await consumer.stop();
      registry.unregister(cmd.commandName);
    }
  });
});

describe('a consumer of several queues', () => {
  it('counts each job under the queue it came from', { timeout: 30_000 }, async () => {
    const store = uniqueName('ordered-tally');
    const critical = new MemoryQueue(store, { name: 'critical' });
    const normal = new MemoryQueue(store, { name: 'default' });
    const urgent = queueCommand({ name: uniqueName('urgent'), queue: critical }, () => 'ok');
    const later = queueCommand({ name: uniqueName('later'), queue: normal, retries: 0 }, (fail: boolean) => {
      if (fail) throw new Error('no');
    });
    const consumer = createConsumer({
      queue: `memory://${store}`,
      queues: ['critical', 'default'],
      workers: 2,
      periodic: false,
      logger: pino({ level: 'silent' }),
    });
    try {
      const jobs = [await urgent(), await urgent(), await later(false), await later(true)];
      await consumer.start();
      await Promise.allSettled(jobs.map((j) => j.result({ timeout: 10_000 })));
      await consumer.stop(); // the last counts go with one beat
      const total = (buckets: Array<{ completed: number; failed: number }>) => buckets.reduce((t, b) => [t[0]! + b.completed, t[1]! + b.failed], [0, 0]);
      expect(total(await critical.throughput())).toEqual([2, 0]);
      expect(total(await normal.throughput())).toEqual([1, 1]);
    } finally {
      await consumer.stop();
      registry.unregister(urgent.commandName);
      registry.unregister(later.commandName);
    }
  });
});

function sorted(counts: ThroughputCount[]): ThroughputCount[] {
  return counts.sort((x, y) => x.queue.localeCompare(y.queue) || x.minute - y.minute);
}
