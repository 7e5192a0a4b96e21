/**
 * Contract: the failed store (fail, failed, requeueFailed, purgeFailed).
 */
import { describe, expect, it } from 'vitest';
import { type ContractHarness, PAST_SHORT_LEASE, sleep, UNKNOWN_ID, writeAll, ANY_DELIVERY } from './kit.js';

export function describeFailedStore(harness: ContractHarness): void {
  const { shortAndLong, one } = harness;
  describe('failed store', () => {
    it('fail moves the message to the failed store with error, attempt and failedAt', async () => {
      const queue = await one();
      const id = await queue.write('payload');
      await queue.read();
      const before = Date.now();
      expect(await queue.fail(id, 'TypeError: boom')).toBe(true);
      const failed = await queue.failed();
      expect(failed).toHaveLength(1);
      const [record] = failed;
      expect(record).toMatchObject({ id, data: 'payload', attempt: 1, error: 'TypeError: boom' });
      expect(record!.failedAt).toBeInstanceOf(Date);
      expect(record!.failedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(record!.failedAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
      expect(await queue.length()).toBe(0);
      expect(await queue.read()).toBeNull();
      expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 1, delayed: 0 });
      expect(await queue.ackBatch([id])).toEqual([id]);
      expect(await queue.fail(id, 'again')).toBe(false);
    });

    it('fail of an unknown or unleased id returns false', async () => {
      const queue = await one();
      expect(await queue.fail(UNKNOWN_ID, 'x')).toBe(false);
      const id = await queue.write('x');
      expect(await queue.fail(id, 'x')).toBe(false);
      expect(await queue.failed()).toEqual([]);
    });

    it('failed(limit) lists oldest failure first', async () => {
      const queue = await one();
      await writeAll(queue, ['a', 'b', 'c']);
      const [m1, m2, m3] = await queue.readBatch(3);
      await queue.fail(m2!.id, 'second');
      await queue.fail(m3!.id, 'third');
      await queue.fail(m1!.id, 'first');
      expect((await queue.failed()).map((f) => f.error)).toEqual(['second', 'third', 'first']);
      expect((await queue.failed(2)).map((f) => f.id)).toEqual([m2!.id, m3!.id]);
    });

    it('requeueFailed(ids) re-queues those only, with attempt reset', async () => {
      const [a, b] = await shortAndLong();
      await writeAll(a, ['a', 'b']);
      await a.readBatch(2);
      await sleep(PAST_SHORT_LEASE);
      const [m1, m2] = await b.readBatch(2);
      expect(m1!.attempt).toBe(2);
      await b.fail(m1!.id, 'x');
      await b.fail(m2!.id, 'y');
      expect(await a.requeueFailed([m1!.id, UNKNOWN_ID])).toBe(1);
      expect(await a.stats()).toEqual({ ready: 1, leased: 0, failed: 1, delayed: 0 });
      expect((await a.failed()).map((f) => f.id)).toEqual([m2!.id]);
      expect(await a.read()).toEqual({ id: m1!.id, data: 'a', attempt: 1, delivery: ANY_DELIVERY });
    });

    it('requeueFailed() re-queues all', async () => {
      const queue = await one();
      await writeAll(queue, ['a', 'b', 'c']);
      for (const m of await queue.readBatch(3)) await queue.fail(m.id, 'boom');
      expect(await queue.requeueFailed()).toBe(3);
      expect(await queue.failed()).toEqual([]);
      expect(await queue.length()).toBe(3);
      const again = await queue.readBatch(3);
      expect(again.map((m) => [m.data, m.attempt])).toEqual([
        ['a', 1],
        ['b', 1],
        ['c', 1],
      ]);
      expect(await queue.requeueFailed()).toBe(0);
    });

    it('purgeFailed(ids) and purgeFailed() delete from the failed store', async () => {
      const queue = await one();
      await writeAll(queue, ['a', 'b', 'c']);
      const messages = await queue.readBatch(3);
      for (const m of messages) await queue.fail(m.id, 'boom');
      expect(await queue.purgeFailed([messages[1]!.id, UNKNOWN_ID])).toBe(1);
      expect((await queue.failed()).map((f) => f.id)).toEqual([messages[0]!.id, messages[2]!.id]);
      expect(await queue.purgeFailed()).toBe(2);
      expect(await queue.failed()).toEqual([]);
      expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
      expect(await queue.requeueFailed()).toBe(0);
    });
  });
}
