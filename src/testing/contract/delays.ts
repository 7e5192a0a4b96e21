/**
 * Contract: delayed messages (runAt) and promoteDue, including the wake-up
 * of a reader blocked in waitForMessages.
 */
import { describe, expect, it } from 'vitest';
import { batchWriter, type ContractHarness, DUE_SOON, far, PAST_DUE, sleep, soon } from './kit.js';

export function describeDelays(harness: ContractHarness): void {
  const { instances, one } = harness;
  describe('delayed messages and promoteDue', () => {
    it('a write with a future runAt is delayed: not read, not in length(), counted in stats().delayed', async () => {
      const queue = await one();
      const delayed = await queue.write('later', far());
      const ready = await queue.write('now');
      const past = await queue.write('overdue', { runAt: Date.now() - 60_000 });
      const absent = await queue.write('no runAt', {});
      expect(new Set([delayed, ready, past, absent]).size).toBe(4);
      expect(await queue.length()).toBe(3);
      expect(await queue.stats()).toEqual({ ready: 3, leased: 0, failed: 0, delayed: 1 });
      expect(await queue.promoteDue()).toBe(0);
      const read = await queue.readBatch(10);
      expect(read.map((m) => [m.id, m.data])).toEqual([
        [ready, 'now'],
        [past, 'overdue'],
        [absent, 'no runAt'],
      ]);
      expect(await queue.readBatch(10)).toEqual([]);
      expect(await queue.stats()).toEqual({ ready: 0, leased: 3, failed: 0, delayed: 1 });
    });

    it('a due message stays unreadable until promoteDue(), which counts it and puts it back in id order', async () => {
      const [producer, consumer] = await instances(2);
      // d1 comes due after d2, yet both are read in id order.
      const d1 = await producer!.write('d1', { runAt: Date.now() + DUE_SOON + 50 });
      const r1 = await producer!.write('r1');
      const d2 = await producer!.write('d2 \udc00', soon());
      const r2 = await producer!.write('r2');
      await producer!.write('not due', far());
      await sleep(PAST_DUE);
      // Due by now, but only promoteDue() makes them ready.
      expect(await consumer!.length()).toBe(2);
      expect(await consumer!.stats()).toEqual({ ready: 2, leased: 0, failed: 0, delayed: 3 });
      const early = await consumer!.readBatch(1);
      expect(early.map((m) => m.id)).toEqual([r1]);
      await consumer!.release([r1]);

      expect(await consumer!.promoteDue()).toBe(2);
      expect(await consumer!.stats()).toEqual({ ready: 4, leased: 0, failed: 0, delayed: 1 });
      expect(await consumer!.length()).toBe(4);
      expect(await producer!.promoteDue()).toBe(0);
      const read = await consumer!.readBatch(10);
      expect(read.map((m) => [m.id, m.data, m.attempt])).toEqual([
        [d1, 'd1', 1],
        [r1, 'r1', 1],
        [d2, 'd2 \udc00', 1],
        [r2, 'r2', 1],
      ]);
    });

    it('concurrent promoteDue() from three instances promotes each message once', async () => {
      const queues = await instances(3);
      const total = 24;
      // Each runAt counts from its own write, so a slow backend cannot make the last ones land already due.
      const written: string[] = [];
      for (let i = 0; i < total; i++) written.push(await queues[0]!.write(`p${i}`, soon()));
      await queues[0]!.write('not due', far());
      await sleep(PAST_DUE);
      const counts = await Promise.all(queues.flatMap((queue) => [queue.promoteDue(), queue.promoteDue()]));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(total);
      expect(await queues[1]!.stats()).toEqual({ ready: total, leased: 0, failed: 0, delayed: 1 });

      const got = await Promise.all(
        queues.map(async (queue) => {
          const mine: string[] = [];
          for (let batch = await queue.readBatch(5); batch.length > 0; batch = await queue.readBatch(5)) {
            mine.push(...batch.map((m) => m.id));
          }
          return mine;
        }),
      );
      const all = got.flat();
      expect(all).toHaveLength(total);
      expect(new Set(all)).toEqual(new Set(written));
      expect(await queues[2]!.promoteDue()).toBe(0);
    });

    it('writeBatch takes runAt too: future → delayed, past or absent → ready', async () => {
      const queue = batchWriter(await one());
      expect(await queue.writeBatch([], soon())).toEqual([]);
      const [a, b] = await queue.writeBatch(['a', 'b']);
      const [c, d] = await queue.writeBatch(['c', 'd \ud800'], soon());
      const [e] = await queue.writeBatch(['e'], { runAt: Date.now() - 1000 });
      expect(await queue.stats()).toEqual({ ready: 3, leased: 0, failed: 0, delayed: 2 });
      expect((await queue.readBatch(10)).map((m) => m.id)).toEqual([a, b, e]);
      await sleep(PAST_DUE);
      expect(await queue.readBatch(10)).toEqual([]);
      expect(await queue.promoteDue()).toBe(2);
      expect((await queue.readBatch(10)).map((m) => [m.id, m.data])).toEqual([
        [c, 'c'],
        [d, 'd \ud800'],
      ]);
    });

    it('promoteDue() wakes a reader blocked in waitForMessages (blocking backends)', async (context) => {
      const [producer, consumer] = await instances(2);
      if (!consumer!.blocking) {
        context.skip('polling backend: waitForMessages does not block');
        return;
      }
      const id = await producer!.write('wake me', soon());
      await sleep(PAST_DUE);
      // Swallow any wake-up the delayed write itself may have sent, so only promoteDue can end the next wait.
      await consumer!.waitForMessages(100, new AbortController().signal);
      const controller = new AbortController();
      const waiting = consumer!.waitForMessages(20_000, controller.signal);
      await sleep(50);
      expect(await producer!.promoteDue()).toBe(1);
      // Far less than the wait's own timeout (and any backend's internal cap), far more than a wake-up takes.
      const outcome = await Promise.race([waiting.then(() => 'woke'), sleep(1_000).then(() => 'still waiting')]);
      controller.abort();
      await waiting;
      expect(outcome).toBe('woke');
      expect((await consumer!.read())?.id).toBe(id);
    });
  });
}
