import { afterEach, describe, expect, it } from 'vitest';
import { MemoryQueue, resetMemoryStores } from '../../src/backends/memory.js';
import { ConfigError, QueueConnectionError } from '../../src/errors.js';
import { runContractSuite } from './contract.js';

runContractSuite('MemoryQueue', { create: (options) => new MemoryQueue('contract', options) });

describe('MemoryQueue', () => {
  afterEach(() => resetMemoryStores());

  it('isolates stores: the same queue name in two stores is two queues', async () => {
    const a = new MemoryQueue('store-a', { name: 'jobs' });
    const b = new MemoryQueue('store-b', { name: 'jobs' });
    await a.write('x');
    expect(await a.length()).toBe(1);
    expect(await b.length()).toBe(0);
    expect(await new MemoryQueue('store-a', { name: 'jobs' }).length()).toBe(1);
  });

  it('resetMemoryStores() gives new instances an empty queue', async () => {
    await new MemoryQueue('s', { name: 'q' }).write('x');
    resetMemoryStores();
    expect(await new MemoryQueue('s', { name: 'q' }).length()).toBe(0);
  });

  it('writeBatch writes in order and returns the ids', async () => {
    const queue = new MemoryQueue();
    expect(await queue.writeBatch([])).toEqual([]);
    const ids = await queue.writeBatch(['a', 'b', 'c']);
    expect(new Set(ids).size).toBe(3);
    expect((await queue.readBatch(5)).map((m) => [m.id, m.data])).toEqual([
      [ids[0], 'a'],
      [ids[1], 'b'],
      [ids[2], 'c'],
    ]);
  });

  it('rejects non-string data, bad batch sizes and bad ttls with ConfigError', async () => {
    const queue = new MemoryQueue();
    await expect(queue.write(42 as unknown as string)).rejects.toBeInstanceOf(ConfigError);
    await expect(queue.writeBatch(['ok', null as unknown as string])).rejects.toBeInstanceOf(ConfigError);
    expect(await queue.length()).toBe(0);
    await expect(queue.readBatch(-1)).rejects.toBeInstanceOf(ConfigError);
    await expect(queue.readBatch(1.5)).rejects.toBeInstanceOf(ConfigError);
    await expect(queue.writeUnique('k', 'x', 0)).rejects.toBeInstanceOf(ConfigError);
    await expect(queue.writeUnique('', 'x', 1000)).rejects.toBeInstanceOf(ConfigError);
  });

  it('refuses use after close with QueueConnectionError', async () => {
    const queue = new MemoryQueue();
    await queue.close();
    await expect(queue.write('x')).rejects.toBeInstanceOf(QueueConnectionError);
    await expect(queue.read()).rejects.toBeInstanceOf(QueueConnectionError);
  });

  it('keeps FIFO order across many reads, releases and compaction', async () => {
    const queue = new MemoryQueue('fifo', { name: 'big' });
    const ids = await queue.writeBatch(Array.from({ length: 5000 }, (_, i) => `m${i}`));
    const seen: string[] = [];
    for (;;) {
      const batch = await queue.readBatch(64);
      if (batch.length === 0) break;
      // Give the last one back each round: it must come out first next round.
      const last = batch[batch.length - 1]!;
      await queue.release([last.id]);
      const again = await queue.readBatch(1);
      expect(again[0]?.id).toBe(last.id);
      seen.push(...batch.map((m) => m.id));
      await queue.ackBatch(batch.map((m) => m.id));
    }
    expect(seen).toEqual(ids);
  });

  describe('waitForMessages', () => {
    it('is blocking and resolves early when another instance writes', async () => {
      const consumer = new MemoryQueue('wait', { name: 'w' });
      const producer = new MemoryQueue('wait', { name: 'w' });
      expect(consumer.blocking).toBe(true);
      const started = Date.now();
      const waiting = consumer.waitForMessages(10_000, new AbortController().signal);
      setTimeout(() => void producer.write('wake'), 20);
      await waiting;
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await consumer.read())?.data).toBe('wake');
    });

    it('resolves at once when a message is ready, and on abort or close', async () => {
      const queue = new MemoryQueue('wait', { name: 'w2' });
      await queue.write('x');
      await queue.waitForMessages(10_000, new AbortController().signal);
      await queue.read();

      const controller = new AbortController();
      const aborted = queue.waitForMessages(10_000, controller.signal);
      controller.abort();
      await aborted;

      const closing = queue.waitForMessages(10_000, new AbortController().signal);
      await queue.close();
      await closing;
    });

    it('does not wake for leases that were acked', async () => {
      const queue = new MemoryQueue('wait', { name: 'w4', leaseMs: 100 });
      await queue.write('x');
      const [m] = await queue.readBatch(1);
      await queue.ackBatch([m!.id]);
      const started = Date.now();
      await queue.waitForMessages(400, new AbortController().signal);
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    });

    it('wakes when a lease expires', async () => {
      const a = new MemoryQueue('wait', { name: 'w3', leaseMs: 150 });
      const b = new MemoryQueue('wait', { name: 'w3', leaseMs: 150 });
      await a.write('x');
      await a.read();
      await b.waitForMessages(10_000, new AbortController().signal);
      expect((await b.read())?.attempt).toBe(2);
    });
  });
});
