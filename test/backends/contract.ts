/**
 * The shared BaseQueue contract suite. Every backend's test file calls
 * `runContractSuite(label, target)`; this file is not a test file itself.
 *
 * Every test uses its own queue name (suites for shared Redis/PostgreSQL
 * servers run in parallel) and every queue opened here is closed afterwards.
 * Lease tests use short leases (≥ 100 ms, the BaseQueue minimum) and wait
 * past them: they assert what happens before and after a deadline, never
 * how fast anything is.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BaseQueue, type QueueOptions } from '../../src/backends/base.js';
import { ConfigError, LeaseLostError } from '../../src/errors.js';

export interface ContractTarget {
  /** A new BaseQueue instance. Instances created with the same options.name must share the same stored queue
   *  (a second consumer / a producer in another "process"). Different names must be isolated from each other. */
  create(options: QueueOptions): BaseQueue | Promise<BaseQueue>;
  /** Called once after the suite (drop temp files etc.). */
  cleanup?(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A lease short enough to wait out; checks that need it still held use a long lease instead. */
const SHORT_LEASE = 150;
/** Comfortably past SHORT_LEASE. */
const PAST_SHORT_LEASE = 300;

let nameCounter = 0;
function freshName(): string {
  return `c-${process.pid}-${++nameCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A message id no backend hands out in a fresh queue. */
const UNKNOWN_ID = '987654321';

export function runContractSuite(label: string, target: ContractTarget): void {
  describe(`${label}: BaseQueue contract`, () => {
    const opened: BaseQueue[] = [];

    /** Opens an instance on `name` (another "process" on the same queue when the name repeats). */
    async function open(name: string, options: Omit<QueueOptions, 'name'> = {}): Promise<BaseQueue> {
      const queue = await target.create({ ...options, name });
      opened.push(queue);
      await queue.open();
      return queue;
    }

    /** One queue name, and `count` instances (distinct owners) on it. */
    async function instances(count: number, options: Omit<QueueOptions, 'name'> = {}): Promise<BaseQueue[]> {
      const name = freshName();
      const out: BaseQueue[] = [];
      for (let i = 0; i < count; i++) out.push(await open(name, options));
      return out;
    }

    /** Two owners on one name: `a` with a short lease, `b` with the default (long) one. */
    async function shortAndLong(): Promise<[BaseQueue, BaseQueue]> {
      const name = freshName();
      return [await open(name, { leaseMs: SHORT_LEASE }), await open(name)];
    }

    async function one(options: Omit<QueueOptions, 'name'> = {}): Promise<BaseQueue> {
      const [queue] = await instances(1, options);
      return queue!;
    }

    async function writeAll(queue: BaseQueue, datas: string[]): Promise<string[]> {
      const ids: string[] = [];
      for (const data of datas) ids.push(await queue.write(data));
      return ids;
    }

    afterEach(async () => {
      const queues = opened.splice(0);
      await Promise.all(queues.map((queue) => queue.close()));
    });

    afterAll(async () => {
      await target.cleanup?.();
    });

    describe('write, read, ack', () => {
      it('writes a message, leases it with attempt 1, and ack deletes it', async () => {
        const queue = await one();
        const id = await queue.write('hello');
        expect(typeof id).toBe('string');
        expect(id.length).toBeGreaterThan(0);
        expect(await queue.length()).toBe(1);

        const message = await queue.read();
        expect(message).toEqual({ id, data: 'hello', attempt: 1 });
        expect(await queue.length()).toBe(0);

        await queue.ack(id);
        expect(await queue.read()).toBeNull();
        expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0 });
      });

      it('read on an empty queue resolves null and readBatch resolves []', async () => {
        const queue = await one();
        expect(await queue.read()).toBeNull();
        expect(await queue.readBatch(10)).toEqual([]);
        expect(await queue.length()).toBe(0);
      });

      it('hands messages out first in, first out, with distinct string ids', async () => {
        const queue = await one();
        const datas = ['m0', 'm1', 'm2', 'm3', 'm4'];
        const ids = await writeAll(queue, datas);
        expect(new Set(ids).size).toBe(ids.length);
        for (const id of ids) expect(typeof id).toBe('string');
        for (let i = 0; i < datas.length; i++) {
          const message = await queue.read();
          expect(message).toEqual({ id: ids[i], data: datas[i], attempt: 1 });
        }
        expect(await queue.read()).toBeNull();
      });

      it('readBatch(n) returns at most n distinct messages, oldest first', async () => {
        const queue = await one();
        const ids = await writeAll(queue, ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
        const first = await queue.readBatch(3);
        expect(first.map((m) => m.id)).toEqual(ids.slice(0, 3));
        expect(first.map((m) => m.data)).toEqual(['a', 'b', 'c']);
        const rest = await queue.readBatch(10);
        expect(rest.map((m) => m.id)).toEqual(ids.slice(3));
        expect(rest.every((m) => m.attempt === 1)).toBe(true);
        expect(await queue.readBatch(10)).toEqual([]);
        expect(await queue.readBatch(0)).toEqual([]);
      });

      it('a producer instance and a consumer instance on one name share the queue', async () => {
        const [producer, consumer] = await instances(2);
        const id = await producer!.write('shared');
        expect(await consumer!.length()).toBe(1);
        expect(await consumer!.read()).toEqual({ id, data: 'shared', attempt: 1 });
        await consumer!.ack(id);
        expect(await producer!.length()).toBe(0);
        expect(await producer!.stats()).toEqual({ ready: 0, leased: 0, failed: 0 });
      });

      it('ack of an unknown id, or of a message this owner never leased, throws LeaseLostError', async () => {
        const [a, b] = await instances(2);
        await expect(a!.ack(UNKNOWN_ID)).rejects.toBeInstanceOf(LeaseLostError);
        const id = await a!.write('x');
        await expect(a!.ack(id)).rejects.toBeInstanceOf(LeaseLostError); // ready, not leased
        await b!.read();
        await expect(a!.ack(id)).rejects.toBeInstanceOf(LeaseLostError); // leased by b
        expect(await a!.stats()).toEqual({ ready: 0, leased: 1, failed: 0 });
        await b!.ack(id);
      });

      it('length() counts only ready messages', async () => {
        const queue = await one();
        await writeAll(queue, ['1', '2', '3', '4']);
        const [first] = await queue.readBatch(1);
        expect(await queue.length()).toBe(3);
        const [second] = await queue.readBatch(1);
        expect(await queue.fail(second!.id, 'boom')).toBe(true);
        expect(await queue.length()).toBe(2);
        await queue.ack(first!.id);
        expect(await queue.length()).toBe(2);
      });

      it('round-trips data exactly: empty, unicode, NUL, lone surrogates, 1 MiB', async () => {
        const queue = await one();
        const big = Array.from({ length: 1024 * 1024 }, (_, i) => String.fromCharCode(33 + (i % 90))).join('');
        const datas = [
          '',
          'plain ascii',
          'héllo wörld — ✓ 日本語 🎉👩‍👩‍👧',
          'nul\u0000inside\u0000',
          'lone high \ud800 end',
          '\udc00 lone low first',
          '\ud83d',
          '{"json":[1,2,3],"quote":"\\"","nl":"\n"}',
          "x'; DROP TABLE taskmill_messages;--",
          big,
        ];
        const ids = await writeAll(queue, datas);
        const messages = await queue.readBatch(datas.length);
        expect(messages.map((m) => m.id)).toEqual(ids);
        for (let i = 0; i < datas.length; i++) {
          const got = messages[i]!.data;
          expect(got.length).toBe(datas[i]!.length);
          expect(got === datas[i], `data #${i} differs`).toBe(true);
        }
        expect(await queue.ackBatch(ids)).toEqual([]);
      });
    });

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
        expect(await b.read()).toEqual({ id, data: 'job', attempt: 2 });
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
        const [old, young] = await writeAll(a!, ['old', 'young']);
        expect((await a!.read())?.id).toBe(old);
        await sleep(PAST_SHORT_LEASE);
        const batch = await b!.readBatch(5);
        expect(batch.map((m) => [m.id, m.attempt])).toEqual([
          [old, 2],
          [young, 1],
        ]);
      });

      it('fences the old owner after another owner re-leased the message', async () => {
        const [a, b] = await shortAndLong();
        const id = await a!.write('fenced');
        await a!.read();
        await sleep(PAST_SHORT_LEASE);
        const again = await b!.read();
        expect(again).toEqual({ id, data: 'fenced', attempt: 2 });

        await expect(a!.ack(id)).rejects.toBeInstanceOf(LeaseLostError);
        expect(await a!.ackBatch([id])).toEqual([id]);
        expect(await a!.fail(id, 'late failure')).toBe(false);
        expect(await a!.extend([id])).toEqual([id]);
        await a!.release([id]);

        // b's lease is intact: still leased, not failed, not ready, attempt unchanged.
        expect(await b!.stats()).toEqual({ ready: 0, leased: 1, failed: 0 });
        expect(await b!.failed()).toEqual([]);
        expect(await a!.read()).toBeNull();
        expect(await b!.extend([id])).toEqual([]);
        await b!.release([id]);
        expect((await b!.read())?.attempt).toBe(2);
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
        expect(await b!.read()).toEqual({ id, data: 'long job', attempt: 2 });
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
        expect(await a!.stats()).toEqual({ ready: 1, leased: 2, failed: 0 });
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
        expect(await a!.stats()).toEqual({ ready: 2, leased: 1, failed: 0 });

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
        expect(await a!.stats()).toEqual({ ready: 0, leased: 1, failed: 0 });
        expect(await a!.read()).toBeNull();
        await b!.ack(id);
      });

      it('release after a re-lease keeps the count of real deliveries', async () => {
        const [a, b] = await shortAndLong();
        const id = await a!.write('x');
        await a!.read();
        await sleep(PAST_SHORT_LEASE);
        expect((await b!.read())?.attempt).toBe(2);
        await b!.release([id]);
        expect(await b!.read()).toEqual({ id, data: 'x', attempt: 2 });
      });

      it('reclaim() makes expired leases ready and returns how many', async () => {
        const [a, b] = await instances(2, { leaseMs: 500 });
        await writeAll(a!, ['1', '2', '3']);
        await a!.readBatch(2);
        expect(await b!.reclaim()).toBe(0);
        expect(await b!.stats()).toEqual({ ready: 1, leased: 2, failed: 0 });
        await sleep(650);
        expect(await b!.reclaim()).toBe(2);
        expect(await b!.stats()).toEqual({ ready: 3, leased: 0, failed: 0 });
        expect(await b!.length()).toBe(3);
        expect(await b!.reclaim()).toBe(0);
        const again = await b!.readBatch(3);
        expect(again.map((m) => m.attempt)).toEqual([2, 2, 1]);
      });
    });

    describe('concurrency', () => {
      it('owners reading concurrently never get the same message, and together get all', async () => {
        const consumers = await instances(4);
        const total = 200;
        const written = new Set(await writeAll(consumers[0]!, Array.from({ length: total }, (_, i) => `m${i}`)));
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
        expect(await consumers[0]!.stats()).toEqual({ ready: 0, leased: 0, failed: 0 });
      });

      it('concurrent writers get distinct ids and lose nothing', async () => {
        const producers = await instances(4);
        const ids = (
          await Promise.all(
            producers.map((producer, p) => Promise.all(Array.from({ length: 50 }, (_, i) => producer.write(`p${p}-${i}`)))),
          )
        ).flat();
        expect(new Set(ids).size).toBe(200);
        expect(await producers[0]!.length()).toBe(200);
        const read = await producers[1]!.readBatch(500);
        expect(new Set(read.map((m) => m.id))).toEqual(new Set(ids));
      });

      it('concurrent writeUnique of one key from many instances writes exactly one message', async () => {
        const queues = await instances(5);
        const results = await Promise.all(
          queues.flatMap((queue) => [1, 2, 3].map(() => queue.writeUnique('cmd:tick:2024-01-01T00:00', 'tick', 60_000))),
        );
        const won = results.filter((r) => r !== null);
        expect(won).toHaveLength(1);
        expect(typeof won[0]).toBe('string');
        expect(await queues[0]!.length()).toBe(1);
      });
    });

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
        expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 1 });
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
        await writeAll(a!, ['a', 'b']);
        await a!.readBatch(2);
        await sleep(PAST_SHORT_LEASE);
        const [m1, m2] = await b!.readBatch(2);
        expect(m1!.attempt).toBe(2);
        await b!.fail(m1!.id, 'x');
        await b!.fail(m2!.id, 'y');
        expect(await a!.requeueFailed([m1!.id, UNKNOWN_ID])).toBe(1);
        expect(await a!.stats()).toEqual({ ready: 1, leased: 0, failed: 1 });
        expect((await a!.failed()).map((f) => f.id)).toEqual([m2!.id]);
        expect(await a!.read()).toEqual({ id: m1!.id, data: 'a', attempt: 1 });
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
        expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0 });
        expect(await queue.requeueFailed()).toBe(0);
      });
    });

    describe('stats, length, flush', () => {
      it('stats() counts ready, leased and failed', async () => {
        const queue = await one();
        await writeAll(queue, ['1', '2', '3', '4', '5']);
        const [m1, m2] = await queue.readBatch(2);
        await queue.fail(m1!.id, 'x');
        expect(await queue.stats()).toEqual({ ready: 3, leased: 1, failed: 1 });
        await queue.ack(m2!.id);
        expect(await queue.stats()).toEqual({ ready: 3, leased: 0, failed: 1 });
        expect(await queue.length()).toBe(3);
      });

      it('flush() empties ready, leased, failed and slot claims', async () => {
        const [a, b] = await instances(2);
        await writeAll(a!, ['1', '2', '3', '4']);
        const [m1, m2] = await a!.readBatch(2);
        await a!.fail(m1!.id, 'x');
        expect(await a!.writeUnique('slot', 'periodic', 60_000)).not.toBeNull();
        await b!.flush();
        expect(await a!.stats()).toEqual({ ready: 0, leased: 0, failed: 0 });
        expect(await a!.length()).toBe(0);
        expect(await a!.failed()).toEqual([]);
        expect(await a!.read()).toBeNull();
        expect(await a!.ackBatch([m2!.id])).toEqual([m2!.id]);
        expect(await a!.writeUnique('slot', 'periodic', 60_000)).not.toBeNull();
        // Ids are not reused after a flush.
        const id = await a!.write('after flush');
        expect([m1!.id, m2!.id]).not.toContain(id);
      });
    });

    describe('writeUnique (slot claims)', () => {
      it('the first claim writes, a second claim of the key does not, another key does', async () => {
        const [a, b] = await instances(2);
        const id = await a!.writeUnique('tick@2024-05-01T10:00', 'first', 60_000);
        expect(typeof id).toBe('string');
        expect(await b!.writeUnique('tick@2024-05-01T10:00', 'second', 60_000)).toBeNull();
        expect(await a!.length()).toBe(1);
        const other = await b!.writeUnique('tick@2024-05-01T10:01', 'third', 60_000);
        expect(typeof other).toBe('string');
        expect(other).not.toBe(id);
        const messages = await a!.readBatch(5);
        expect(messages.map((m) => [m.id, m.data])).toEqual([
          [id, 'first'],
          [other, 'third'],
        ]);
      });

      it('the claim outlives its message: still refused after the message is acked', async () => {
        const queue = await one();
        const id = await queue.writeUnique('k', 'x', 60_000);
        await queue.read();
        await queue.ack(id!);
        expect(await queue.writeUnique('k', 'x', 60_000)).toBeNull();
        expect(await queue.length()).toBe(0);
      });

      it('after the ttl expires the key can be claimed again', async () => {
        const queue = await one();
        expect(await queue.writeUnique('short', 'a', 500)).not.toBeNull();
        expect(await queue.writeUnique('short', 'b', 500)).toBeNull();
        await sleep(650);
        expect(await queue.writeUnique('short', 'c', 500)).not.toBeNull();
        expect((await queue.readBatch(5)).map((m) => m.data)).toEqual(['a', 'c']);
      });

      it('accepts keys with punctuation and unicode, and keeps them apart', async () => {
        const queue = await one();
        const keys = ['{x}', 'a:b:c', "k'; DROP TABLE t;--", 'ключ ✓', 'a*'];
        for (const key of keys) expect(await queue.writeUnique(key, key, 60_000)).not.toBeNull();
        for (const key of keys) expect(await queue.writeUnique(key, key, 60_000)).toBeNull();
        expect(await queue.length()).toBe(keys.length);
      });
    });

    describe('lifecycle and isolation', () => {
      it('ids are strings and close() is idempotent', async () => {
        const queue = await one();
        expect(typeof (await queue.write('x'))).toBe('string');
        await queue.close();
        await queue.close();
        const unused = await target.create({ name: freshName() });
        await unused.close();
        await unused.close();
      });

      it('open() is idempotent', async () => {
        const queue = await one();
        await queue.open();
        await queue.open();
        await queue.write('x');
        expect(await queue.length()).toBe(1);
      });

      it('queues with different names are isolated', async () => {
        const a = await one({ leaseMs: 500 });
        const b = await one({ leaseMs: 500 });
        expect(a.name).not.toBe(b.name);
        await writeAll(a, ['a1', 'a2']);
        await b.write('b1');
        const [leased] = await a.readBatch(1);
        await a.fail(leased!.id, 'x');
        expect(await a.writeUnique('same-key', 'a', 60_000)).not.toBeNull();
        expect(await b.writeUnique('same-key', 'b', 60_000)).not.toBeNull();

        expect(await a.stats()).toEqual({ ready: 2, leased: 0, failed: 1 });
        expect(await b.stats()).toEqual({ ready: 2, leased: 0, failed: 0 });
        expect(await b.failed()).toEqual([]);
        expect(await b.requeueFailed()).toBe(0);
        expect(await b.purgeFailed()).toBe(0);
        const fromB = await b.readBatch(10);
        expect(fromB.map((m) => m.data)).toEqual(['b1', 'b']);
        await b.flush();
        expect(await a.stats()).toEqual({ ready: 2, leased: 0, failed: 1 });

        const [aMessage] = await a.readBatch(1);
        await sleep(650);
        expect(await b.reclaim()).toBe(0);
        expect(await b.ackBatch([aMessage!.id])).toEqual([aMessage!.id]);
        expect(await a.reclaim()).toBe(1);
      });

      it.each([['a*'], ['{x}'], ['x"; DROP TABLE t;--'], ['x'.repeat(200)], [''], ['has space']])(
        'refuses the queue name %j with ConfigError',
        async (name) => {
          const attempt = (async () => {
            const queue = await target.create({ name });
            opened.push(queue);
            return queue;
          })();
          await expect(attempt).rejects.toBeInstanceOf(ConfigError);
        },
      );

      it('refuses a lease shorter than 100 ms with ConfigError', async () => {
        const attempt = (async () => {
          const queue = await target.create({ name: freshName(), leaseMs: 10 });
          opened.push(queue);
          return queue;
        })();
        await expect(attempt).rejects.toBeInstanceOf(ConfigError);
      });
    });
  });
}
