/**
 * Contract: priorities. Higher is read first, FIFO within one priority, and a
 * message keeps its priority wherever it goes: released, lease expired,
 * delayed and promoted, retried, failed and requeued.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/errors.js';
import { MAX_PRIORITY, MIN_PRIORITY } from '../../backends/base.js';
import { type ContractHarness, PAST_DUE, PAST_SHORT_LEASE, sleep, soon } from './kit.js';

export function describePriorities(harness: ContractHarness): void {
  const { instances, shortAndLong, one } = harness;
  describe('priorities', () => {
    it('reads higher priorities first and each priority oldest first, across writers', async () => {
      const [a, b] = await instances(2);
      const written: [string, string][] = [];
      const plan: [string, number | undefined][] = [
        ['low-1', -5],
        ['zero-1', undefined],
        ['high-1', 7],
        ['zero-2', 0],
        ['top', MAX_PRIORITY],
        ['high-2', 7],
        ['bottom', MIN_PRIORITY],
        ['low-2', -5],
      ];
      for (const [i, [data, priority]] of plan.entries()) {
        const writer = i % 2 === 0 ? a! : b!;
        written.push([await writer.write(data, priority === undefined ? {} : { priority }), data]);
      }
      const read = [...(await b!.readBatch(3)), ...(await a!.readBatch(10))];
      expect(read.map((m) => m.data)).toEqual(['top', 'high-1', 'high-2', 'zero-1', 'zero-2', 'low-1', 'low-2', 'bottom']);
      const idOf = new Map(written.map(([id, data]) => [data, id]));
      expect(read.map((m) => m.id)).toEqual(read.map((m) => idOf.get(m.data)));
    });

    it('writeBatch gives every message of the batch its priority, in order', async () => {
      const queue = await one();
      await queue.write('plain');
      const ids = await queue.writeBatch(['b1', 'b2', 'b3'], { priority: 3 });
      const read = await queue.readBatch(10);
      expect(read.map((m) => m.data)).toEqual(['b1', 'b2', 'b3', 'plain']);
      expect(read.slice(0, 3).map((m) => m.id)).toEqual(ids);
    });

    it('a released or lease-expired message goes back to its place within its priority', async () => {
      const [a, b] = await shortAndLong();
      await a.write('p0-old');
      await a.write('p2-old', { priority: 2 });
      const [p2] = await a.readBatch(1);
      expect(p2!.data).toBe('p2-old');
      await a.write('p2-new', { priority: 2 });
      await a.release([p2!.id]);
      expect((await b.readBatch(1)).map((m) => m.data)).toEqual(['p2-old']);
      // b's lease is the long one; a's short lease on p2-new lapses and it comes back ahead of p0.
      const [p2new] = await a.readBatch(1);
      expect(p2new!.data).toBe('p2-new');
      await sleep(PAST_SHORT_LEASE);
      expect((await b.readBatch(10)).map((m) => [m.data, m.attempt])).toEqual([
        ['p2-new', 2],
        ['p0-old', 1],
      ]);
    });

    it('a delayed message keeps its priority when promoted, and a retry keeps it too', async () => {
      const queue = await one();
      await queue.write('p0');
      await queue.write('p4-delayed', { ...soon(), priority: 4 });
      await queue.write('p1', { priority: 1 });
      await sleep(PAST_DUE);
      expect(await queue.promoteDue()).toBe(1);
      const first = await queue.readBatch(1);
      expect(first.map((m) => m.data)).toEqual(['p4-delayed']);
      expect(await queue.retry(first[0]!.id, 'p4-retried', Date.now())).toBe(true);
      await queue.promoteDue();
      expect((await queue.readBatch(10)).map((m) => m.data)).toEqual(['p4-retried', 'p1', 'p0']);
    });

    it('a failed message requeued by requeueFailed keeps its priority', async () => {
      const queue = await one();
      await queue.write('p9', { priority: 9 });
      const [m] = await queue.readBatch(1);
      expect(await queue.fail(m!.id, 'boom')).toBe(true);
      await queue.write('p0');
      await queue.write('p5', { priority: 5 });
      expect(await queue.requeueFailed()).toBe(1);
      expect((await queue.readBatch(10)).map((r) => r.data)).toEqual(['p9', 'p5', 'p0']);
    });

    it('refuses a priority that is no integer in range, naming it, and writes nothing', async () => {
      const queue = await one();
      for (const priority of [1.5, MAX_PRIORITY + 1, MIN_PRIORITY - 1, Number.NaN, '3' as unknown as number]) {
        await expect(queue.write('x', { priority })).rejects.toThrow(ConfigError);
        await expect(queue.write('x', { priority })).rejects.toThrow(/invalid priority/);
        await expect(queue.writeBatch(['x', 'y'], { priority })).rejects.toThrow(/invalid priority/);
      }
      expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    });
  });
}
