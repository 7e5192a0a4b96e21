import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryQueue, resetMemoryStores } from '../../src/backends/memory/queue.js';
import { ConfigError, QueueConnectionError } from '../../src/shared/errors.js';
import { runContractSuite } from '../../src/testing/index.js';

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

  it('skips removed ready messages in reads and counts, across compaction and the returned heap', async () => {
    const queue = new MemoryQueue('remove', { name: 'many' });
    const ids = await queue.writeBatch(Array.from({ length: 3000 }, (_, i) => `m${i}`));
    // Some come back through the sequence heap (released), the rest stay in the FIFO.
    await queue.readBatch(10);
    await queue.release(ids.slice(0, 10));
    const removed = new Set(ids.filter((_, i) => i % 3 === 0));
    for (const id of removed) expect(await queue.remove(id)).toBe(true);
    expect(await queue.length()).toBe(ids.length - removed.size);
    const seen: string[] = [];
    for (let batch = await queue.readBatch(97); batch.length > 0; batch = await queue.readBatch(97)) seen.push(...batch.map((m) => m.id));
    expect(seen).toEqual(ids.filter((id) => !removed.has(id)));
    expect(await queue.stats()).toEqual({ ready: 0, leased: seen.length, failed: 0, delayed: 0 });
  });

  it('promotes in id order after many delayed messages were removed', async () => {
    const queue = new MemoryQueue('remove', { name: 'delayed' });
    vi.useFakeTimers({ toFake: ['Date'], now: 1_000_000 });
    try {
      // Later ids come due first: promotion must still give id order.
      const ids: string[] = [];
      for (let i = 0; i < 3000; i++) ids.push(await queue.write(`d${i}`, { runAt: 1_000_000 + 3000 - i }));
      const removed = new Set(ids.filter((_, i) => i % 30 !== 0));
      for (const id of removed) expect(await queue.remove(id)).toBe(true);
      // The heap now holds mostly dead records: the next delayed write compacts it.
      const extra = await queue.write('extra', { runAt: 1_000_001 });
      expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 101 });
      vi.setSystemTime(1_000_000 + 1500);
      expect(await queue.promoteDue()).toBe(51);
      vi.setSystemTime(1_000_000 + 3000);
      expect(await queue.promoteDue()).toBe(50);
      const read = await queue.readBatch(5000);
      expect(read.map((m) => m.id)).toEqual([...ids.filter((id) => !removed.has(id)), extra]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('purges expired result records while storing new ones', async () => {
    const queue = new MemoryQueue('results', { name: 'purge' });
    const stored = () => (queue as unknown as { state: { results: Map<string, unknown> } }).state.results.size;
    await queue.setResults([{ jobId: 'kept', record: 'kept', ttlMs: 60_000 }]);
    // 300 ms, not 1: on a loaded machine the next setResults could come after a 1 ms expiry and purge early.
    await queue.setResults(Array.from({ length: 50 }, (_, i) => ({ jobId: `short-${i}`, record: 'x', ttlMs: 300 })));
    // Overwrites leave no stale expiry behind that could delete the new record.
    await queue.setResults([{ jobId: 'short-0', record: 'renewed', ttlMs: 60_000 }]);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(stored()).toBe(51);
    await queue.setResults([{ jobId: 'other', record: 'y', ttlMs: 60_000 }]);
    expect(stored()).toBe(3);
    expect(await queue.getResult('short-0')).toBe('renewed');
    expect(await queue.getResult('short-1')).toBeNull();
  });

  it('a delayed write does not wake a blocked reader; promoteDue does', async () => {
    const consumer = new MemoryQueue('wait', { name: 'delayed-wake' });
    const producer = new MemoryQueue('wait', { name: 'delayed-wake' });
    const controller = new AbortController();
    let woke = false;
    const waiting = consumer.waitForMessages(10_000, controller.signal).then(() => {
      woke = true;
    });
    await producer.writeBatch(['a', 'b'], { runAt: Date.now() + 100 });
    await producer.write('c', { runAt: Date.now() + 100 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(woke).toBe(false);
    expect(await producer.promoteDue()).toBe(3);
    await waiting;
    expect(woke).toBe(true);
    controller.abort();
  });

  it('refuses a bad runAt, a retry without runAt and bad result records with ConfigError, writing nothing', async () => {
    const queue = new MemoryQueue('bad', { name: 'lifecycle' });
    for (const runAt of [Number.NaN, Infinity, '1000' as unknown as number]) {
      await expect(queue.write('x', { runAt })).rejects.toBeInstanceOf(ConfigError);
      await expect(queue.writeBatch(['x'], { runAt })).rejects.toBeInstanceOf(ConfigError);
    }
    const id = await queue.write('x');
    await queue.read();
    await expect(queue.retry(id, 'y', undefined as unknown as number)).rejects.toBeInstanceOf(ConfigError);
    await expect(queue.retry(id, 7 as unknown as string, Date.now())).rejects.toBeInstanceOf(ConfigError);
    const good = { jobId: 'ok', record: 'r', ttlMs: 1000 };
    for (const bad of [
      { jobId: '', record: 'r', ttlMs: 1000 },
      { jobId: 'j', record: 5 as unknown as string, ttlMs: 1000 },
      { jobId: 'j', record: 'r', ttlMs: 0 },
      { jobId: 'j', record: 'r', ttlMs: Number.NaN },
    ]) {
      await expect(queue.setResults([good, bad])).rejects.toBeInstanceOf(ConfigError);
    }
    expect(await queue.getResult('ok')).toBeNull();
    expect(await queue.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
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
