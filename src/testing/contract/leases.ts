/**
 * Contract: leases (deadlines, attempts, fencing of ack/extend/fail by owner and
 * deadline, release, reclaim), and owners racing each other on one queue.
 */
import { describe, expect, it } from 'vitest';
import { LeaseLostError } from '../../shared/errors.js';
import { type ContractHarness, freshName, PAST_SHORT_LEASE, SHORT_LEASE, sleep, UNKNOWN_ID, writeAll, ANY_DELIVERY } from './kit.js';

export function describeLeases(harness: ContractHarness): void {
  const { open, instances, shortAndLong, one } = harness;
  describe('leases', () => {
    it('a leased message is not readable by another owner before its deadline, and is after it', async () => {
      const name = freshName();
      const a = await open(name, { leaseMs: 700 });
      const b = await open(name);
      const id = await a.write('job');
      expect((await a.read())?.id).toBe(id);
      expect(await b.read()).toBeNull();
      await sleep(200);
      expect(await b.read()).toBeNull();
      await sleep(700);
      expect(await b.read()).toEqual({ id, data: 'job', attempt: 2, delivery: ANY_DELIVERY });
    });

    it('attempt grows by one on each re-lease after expiry', async () => {
      const [a, b] = await instances(2, { leaseMs: SHORT_LEASE });
      await a!.write('retry me');
      expect((await a!.read())?.attempt).toBe(1);
      await sleep(PAST_SHORT_LEASE);
      expect((await b!.read())?.attempt).toBe(2);
      await sleep(PAST_SHORT_LEASE);
      const third = await a!.read();
      expect(third?.attempt).toBe(3);
      await a!.ack(third!.id);
    });

    it('an expired lease is read back in age order, before younger messages', async () => {
      const [a, b] = await shortAndLong();
      const [old, young] = await writeAll(a, ['old', 'young']);
      expect((await a.read())?.id).toBe(old);
      await sleep(PAST_SHORT_LEASE);
      const batch = await b.readBatch(5);
      expect(batch.map((m) => [m.id, m.attempt])).toEqual([
        [old, 2],
        [young, 1],
      ]);
    });

    it('fences the old owner after another owner re-leased the message', async () => {
      const [a, b] = await shortAndLong();
      const id = await a.write('fenced');
      await a.read();
      await sleep(PAST_SHORT_LEASE);
      const again = await b.read();
      expect(again).toEqual({ id, data: 'fenced', attempt: 2, delivery: ANY_DELIVERY });

      await expect(a.ack(id)).rejects.toBeInstanceOf(LeaseLostError);
      expect(await a.ackBatch([id])).toEqual([id]);
      expect(await a.fail(id, 'late failure')).toBe(false);
      expect(await a.extend([id])).toEqual([id]);
      await a.release([id]);

      // b's lease is intact: still leased, not failed, not ready, attempt unchanged.
      expect(await b.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
      expect(await b.failed()).toEqual([]);
      expect(await a.read()).toBeNull();
      expect(await b.extend([id])).toEqual([]);
      await b.release([id]);
      expect((await b.read())?.attempt).toBe(2);
    });

    it('refuses ack/extend/fail on an expired lease even when nobody re-leased it', async () => {
      const queue = await one({ leaseMs: SHORT_LEASE });
      const id = await queue.write('slow');
      await queue.read();
      await sleep(PAST_SHORT_LEASE);
      expect(await queue.ackBatch([id])).toEqual([id]);
      expect(await queue.extend([id])).toEqual([id]);
      expect(await queue.fail(id, 'too late')).toBe(false);
      // Still there, readable again.
      expect((await queue.read())?.id).toBe(id);
    });

    it('extend pushes the deadline: not re-readable until the extended deadline', async () => {
      const [a, b] = await instances(2, { leaseMs: 600 });
      const id = await a!.write('long job');
      await a!.read();
      await sleep(300);
      expect(await a!.extend([id])).toEqual([]);
      await sleep(400); // past the original deadline (600), before the extended one (≥ 900)
      expect(await b!.read()).toBeNull();
      await sleep(500);
      expect(await b!.read()).toEqual({ id, data: 'long job', attempt: 2, delivery: ANY_DELIVERY });
    });

    it('extend refuses ids this owner does not hold', async () => {
      const [a, b] = await instances(2);
      const id = await a!.write('x');
      expect([...(await a!.extend([id, UNKNOWN_ID]))].sort()).toEqual([id, UNKNOWN_ID].sort());
      await b!.read();
      expect(await a!.extend([id])).toEqual([id]);
      expect(await b!.extend([id])).toEqual([]);
    });

    it('ackBatch deletes the held ones and returns exactly the refused ones', async () => {
      const [a, b] = await instances(2);
      const ids = await writeAll(a!, ['1', '2', '3', '4', '5']);
      const mine = await a!.readBatch(3);
      const theirs = await b!.readBatch(1);
      expect(mine.map((m) => m.id)).toEqual(ids.slice(0, 3));
      expect(theirs.map((m) => m.id)).toEqual([ids[3]]);

      const refused = await a!.ackBatch([ids[0]!, ids[3]!, UNKNOWN_ID, ids[2]!, ids[4]!]);
      expect([...refused].sort()).toEqual([ids[3]!, UNKNOWN_ID, ids[4]!].sort());
      expect(await a!.stats()).toEqual({ ready: 1, leased: 2, failed: 0, delayed: 0 });
      expect(await a!.ackBatch([ids[1]!])).toEqual([]);
      expect(await a!.ackBatch([ids[0]!])).toEqual([ids[0]]); // already acked
      expect(await a!.ackBatch([])).toEqual([]);
    });

    it('release returns unstarted messages to the front with attempt decremented', async () => {
      const [a, b] = await instances(2);
      const ids = await writeAll(a!, ['first', 'second', 'third']);
      const leased = await a!.readBatch(2);
      expect(leased.map((m) => m.id)).toEqual(ids.slice(0, 2));
      await a!.release([ids[0]!]);
      expect(await a!.stats()).toEqual({ ready: 2, leased: 1, failed: 0, delayed: 0 });

      const next = await b!.readBatch(5);
      expect(next.map((m) => [m.id, m.data, m.attempt])).toEqual([
        [ids[0], 'first', 1],
        [ids[2], 'third', 1],
      ]);
    });

    it('release ignores ids held by another owner or unknown', async () => {
      const [a, b] = await instances(2);
      const id = await a!.write('x');
      await b!.read();
      await a!.release([id, UNKNOWN_ID]);
      expect(await a!.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
      expect(await a!.read()).toBeNull();
      await b!.ack(id);
    });

    it('release after a re-lease keeps the count of real deliveries', async () => {
      const [a, b] = await shortAndLong();
      const id = await a.write('x');
      await a.read();
      await sleep(PAST_SHORT_LEASE);
      expect((await b.read())?.attempt).toBe(2);
      await b.release([id]);
      expect(await b.read()).toEqual({ id, data: 'x', attempt: 2, delivery: ANY_DELIVERY });
    });

    it('reclaim() makes expired leases ready and returns how many', async () => {
      const [a, b] = await instances(2, { leaseMs: 500 });
      await writeAll(a!, ['1', '2', '3']);
      await a!.readBatch(2);
      expect(await b!.reclaim()).toBe(0);
      expect(await b!.stats()).toEqual({ ready: 1, leased: 2, failed: 0, delayed: 0 });
      await sleep(650);
      expect(await b!.reclaim()).toBe(2);
      expect(await b!.stats()).toEqual({ ready: 3, leased: 0, failed: 0, delayed: 0 });
      expect(await b!.length()).toBe(3);
      expect(await b!.reclaim()).toBe(0);
      const again = await b!.readBatch(3);
      expect(again.map((m) => m.attempt)).toEqual([2, 2, 1]);
    });
  });
}

export function describeConcurrency(harness: ContractHarness): void {
  const { instances } = harness;
  describe('concurrency', () => {
    it('owners reading concurrently never get the same message, and together get all', async () => {
      const consumers = await instances(4);
      const total = 200;
      const written = new Set(
        await writeAll(
          consumers[0]!,
          Array.from({ length: total }, (_, i) => `m${i}`),
        ),
      );
      const got = await Promise.all(
        consumers.map(async (consumer) => {
          const mine: string[] = [];
          for (;;) {
            const batch = await consumer.readBatch(7);
            if (batch.length === 0) return mine;
            for (const m of batch) expect(m.attempt).toBe(1);
            mine.push(...batch.map((m) => m.id));
            expect(await consumer.ackBatch(batch.map((m) => m.id))).toEqual([]);
          }
        }),
      );
      const all = got.flat();
      expect(all.length).toBe(total);
      expect(new Set(all)).toEqual(written);
      expect(await consumers[0]!.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    });

    it('concurrent writers get distinct ids and lose nothing', async () => {
      const producers = await instances(4);
      const ids = (await Promise.all(producers.map((producer, p) => Promise.all(Array.from({ length: 50 }, (_, i) => producer.write(`p${p}-${i}`)))))).flat();
      expect(new Set(ids).size).toBe(200);
      expect(await producers[0]!.length()).toBe(200);
      const read = await producers[1]!.readBatch(500);
      expect(new Set(read.map((m) => m.id))).toEqual(new Set(ids));
    });

    it('concurrent writeUnique of one key from many instances writes exactly one message', async () => {
      const queues = await instances(5);
      const results = await Promise.all(queues.flatMap((queue) => [1, 2, 3].map(() => queue.writeUnique('cmd:tick:2024-01-01T00:00', 'tick', 60_000))));
      const won = results.filter((r) => r !== null);
      expect(won).toHaveLength(1);
      expect(typeof won[0]).toBe('string');
      expect(await queues[0]!.length()).toBe(1);
    });
  });
}
