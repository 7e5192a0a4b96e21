/**
 * OrderedQueues: several named queues read as one, in strict order. The
 * whole BaseQueue contract holds for it (writes go to the first queue; the
 * second is there to be skipped over), and what only it does is tested
 * below: strict order across queues, ids routed to their own queue, results
 * stored where their message came from. Real consumer processes reading
 * `-Q critical,default` run in test/e2e (backends-e2e.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryQueue, resetMemoryStores } from '../../src/backends/memory/queue.js';
import { OrderedQueues } from '../../src/consumer/ordered-queues.js';
import { ConfigError } from '../../src/shared/errors.js';
import { runContractSuite } from '../../src/testing/index.js';
import { createConsumer, queueCommand, registry } from '../../src/index.js';
import { waitFor } from '../helpers/processes.js';

runContractSuite('OrderedQueues (memory, two queues)', {
  create: (options) => {
    const name = options.name ?? 'default';
    return new OrderedQueues([new MemoryQueue('ordered-contract', options), new MemoryQueue('ordered-contract', { ...options, name: `${name}-2` })]);
  },
});

afterEach(() => resetMemoryStores());

function pair(store = 'ordered') {
  const critical = new MemoryQueue(store, { name: 'critical' });
  const normal = new MemoryQueue(store, { name: 'default' });
  return { critical, normal, both: new OrderedQueues([critical, normal]) };
}

describe('OrderedQueues', () => {
  it('reads the first queue before the second, and fills a batch from the second only when the first runs dry', async () => {
    const { critical, normal, both } = pair();
    await normal.write('n1');
    await normal.write('n2');
    await critical.write('c1');
    expect((await both.readBatch(1)).map((m) => m.data)).toEqual(['c1']);
    await critical.write('c2');
    expect((await both.readBatch(2)).map((m) => m.data)).toEqual(['c2', 'n1']);
    expect((await both.readBatch(5)).map((m) => m.data)).toEqual(['n2']);
    expect(await both.readBatch(5)).toEqual([]);
  });

  it('routes ack, release, extend, fail, retry and the failed store to the queue each id came from', async () => {
    const { critical, normal, both } = pair();
    await critical.write('c');
    await normal.write('n');
    const [c, n] = await both.readBatch(2);
    expect(c!.id).not.toBe(n!.id);
    expect(await both.extend([c!.id, n!.id, 'nobody', '9:1'])).toEqual(['nobody', '9:1']);
    expect(await both.fail(n!.id, 'boom')).toBe(true);
    expect(await normal.stats()).toMatchObject({ failed: 1, leased: 0 });
    expect(await critical.stats()).toMatchObject({ failed: 0, leased: 1 });
    const failed = await both.failed();
    expect(failed.map((f) => [f.id, f.data])).toEqual([[n!.id, 'n']]);
    expect(await both.requeueFailed([failed[0]!.id])).toBe(1);
    expect(await normal.length()).toBe(1);
    expect(await both.ackBatch([c!.id])).toEqual([]);
    expect(await critical.stats()).toMatchObject({ ready: 0, leased: 0 });
    const [again] = await both.readBatch(1);
    expect(again!.data).toBe('n');
    expect(await both.retry(again!.id, 'n, again', Date.now())).toBe(true);
    expect(await normal.length()).toBe(1);
    const [last] = await both.readBatch(1);
    await both.release([last!.id]);
    expect(await normal.length()).toBe(1);
  });

  it('stores each result record in the queue its message came from', async () => {
    const { critical, normal, both } = pair();
    await critical.write('c');
    await normal.write('n');
    const [c, n] = await both.readBatch(2);
    await both.setResults(
      [
        { jobId: 'job-n', record: 'rn', ttlMs: 60_000 },
        { jobId: 'job-c', record: 'rc', ttlMs: 60_000 },
      ],
      [n!.id, c!.id],
    );
    expect(await normal.getResult('job-n')).toBe('rn');
    expect(await critical.getResult('job-c')).toBe('rc');
    expect(await normal.getResult('job-c')).toBeNull();
    expect(await both.getResult('job-n')).toBe('rn');
  });

  it('refuses no queues, and a queue listed twice', () => {
    expect(() => new OrderedQueues([])).toThrow(ConfigError);
    const q = new MemoryQueue('x', { name: 'a' });
    expect(() => new OrderedQueues([q, new MemoryQueue('x', { name: 'a' })])).toThrow(/"a" is listed twice/);
  });
});

describe('createConsumer({ queues })', () => {
  it('runs a job of the second queue only while the first has none ready; results reach the producer', async () => {
    const ran: string[] = [];
    const url = 'memory://consumer-queues';
    const low = queueCommand({ name: 'low-q', queue: new MemoryQueue('consumer-queues', { name: 'default' }) }, (x: string) => void ran.push(x));
    const high = queueCommand({ name: 'high-q', queue: new MemoryQueue('consumer-queues', { name: 'critical' }) }, (x: string) => {
      ran.push(x);
      return x.toUpperCase();
    });
    try {
      await low('l1');
      await low('l2');
      await high('h1');
      const job = await high('h2');
      const consumer = createConsumer({ queue: url, queues: ['critical', 'default'], workers: 1 });
      await consumer.start();
      try {
        await waitFor('four runs', () => ran.length === 4);
        expect(await job.result({ timeout: 5_000 })).toBe('H2');
      } finally {
        await consumer.stop();
      }
      expect(ran).toEqual(['h1', 'h2', 'l1', 'l2']);
    } finally {
      registry.unregister('low-q');
      registry.unregister('high-q');
    }
  });

  it('refuses queues that are not a non-empty list of names, and queues with a BaseQueue', () => {
    expect(() => createConsumer({ queue: 'memory://x', queues: [] })).toThrow(/createConsumer: invalid queues \[\]: must be a non-empty list of queue names/);
    expect(() => createConsumer({ queue: 'memory://x', queues: ['ok', 'not ok'] })).toThrow(/createConsumer: invalid queues\[1\] "not ok"/);
    expect(() => createConsumer({ queue: new MemoryQueue(), queues: ['a'] })).toThrow(/needs queue as a URL/);
  });
});
