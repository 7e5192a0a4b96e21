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
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BaseQueue, type QueueOptions, type WriteOptions } from '../../src/backends/base.js';
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

/** A runAt this far ahead is due soon enough to wait for, yet far enough that a slow write still lands before it. */
const DUE_SOON = 300;
/** Comfortably past DUE_SOON (counted from before the write). */
const PAST_DUE = 600;
/** A runAt that no test waits for. */
const FAR_AHEAD = 3_600_000;

/** writeBatch is not on BaseQueue, but every backend has it; the contract checks it with and without runAt. */
type BatchWriter = BaseQueue & { writeBatch(datas: readonly string[], options?: WriteOptions): Promise<string[]> };

function batchWriter(queue: BaseQueue): BatchWriter {
  const candidate = queue as Partial<BatchWriter>;
  if (typeof candidate.writeBatch !== 'function') throw new Error(`${queue.constructor.name} has no writeBatch()`);
  return queue as BatchWriter;
}

/** The data the round-trip tests send: empty, unicode, NUL, lone surrogates, ~1 MiB. */
function awkwardTexts(): string[] {
  const cycle = Array.from({ length: 90 }, (_, i) => String.fromCharCode(33 + i)).join('');
  const big = cycle.repeat(Math.ceil((1024 * 1024) / cycle.length)).slice(0, 1024 * 1024);
  return [
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
}

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
        expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
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
        expect(await producer!.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
      });

      it('ack of an unknown id, or of a message this owner never leased, throws LeaseLostError', async () => {
        const [a, b] = await instances(2);
        await expect(a!.ack(UNKNOWN_ID)).rejects.toBeInstanceOf(LeaseLostError);
        const id = await a!.write('x');
        await expect(a!.ack(id)).rejects.toBeInstanceOf(LeaseLostError); // ready, not leased
        await b!.read();
        await expect(a!.ack(id)).rejects.toBeInstanceOf(LeaseLostError); // leased by b
        expect(await a!.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
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
        const datas = awkwardTexts();
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
        expect(await b!.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
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
        expect(await consumers[0]!.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
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
        await writeAll(a!, ['a', 'b']);
        await a!.readBatch(2);
        await sleep(PAST_SHORT_LEASE);
        const [m1, m2] = await b!.readBatch(2);
        expect(m1!.attempt).toBe(2);
        await b!.fail(m1!.id, 'x');
        await b!.fail(m2!.id, 'y');
        expect(await a!.requeueFailed([m1!.id, UNKNOWN_ID])).toBe(1);
        expect(await a!.stats()).toEqual({ ready: 1, leased: 0, failed: 1, delayed: 0 });
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
        expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
        expect(await queue.requeueFailed()).toBe(0);
      });
    });

    describe('stats, length, flush', () => {
      it('stats() counts ready, leased and failed', async () => {
        const queue = await one();
        await writeAll(queue, ['1', '2', '3', '4', '5']);
        const [m1, m2] = await queue.readBatch(2);
        await queue.fail(m1!.id, 'x');
        expect(await queue.stats()).toEqual({ ready: 3, leased: 1, failed: 1, delayed: 0 });
        await queue.ack(m2!.id);
        expect(await queue.stats()).toEqual({ ready: 3, leased: 0, failed: 1, delayed: 0 });
        expect(await queue.length()).toBe(3);
      });

      it('flush() empties ready, leased, failed and slot claims', async () => {
        const [a, b] = await instances(2);
        await writeAll(a!, ['1', '2', '3', '4']);
        const [m1, m2] = await a!.readBatch(2);
        await a!.fail(m1!.id, 'x');
        expect(await a!.writeUnique('slot', 'periodic', 60_000)).not.toBeNull();
        await b!.flush();
        expect(await a!.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
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

        expect(await a.stats()).toEqual({ ready: 2, leased: 0, failed: 1, delayed: 0 });
        expect(await b.stats()).toEqual({ ready: 2, leased: 0, failed: 0, delayed: 0 });
        expect(await b.failed()).toEqual([]);
        expect(await b.requeueFailed()).toBe(0);
        expect(await b.purgeFailed()).toBe(0);
        const fromB = await b.readBatch(10);
        expect(fromB.map((m) => m.data)).toEqual(['b1', 'b']);
        await b.flush();
        expect(await a.stats()).toEqual({ ready: 2, leased: 0, failed: 1, delayed: 0 });

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

    describe('job lifecycle', () => {
      const soon = () => ({ runAt: Date.now() + DUE_SOON });
      const far = () => ({ runAt: Date.now() + FAR_AHEAD });

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

      describe('retry', () => {
        it('is fenced like ack: false after the lease expired or was taken, and nothing changes', async () => {
          const [a, b] = await shortAndLong();
          const id = await a!.write('original');
          expect(await a!.retry(id, 'not leased', Date.now())).toBe(false);
          await a!.read();
          await sleep(PAST_SHORT_LEASE);
          expect(await a!.retry(id, 'expired', Date.now())).toBe(false);
          expect(await b!.read()).toEqual({ id, data: 'original', attempt: 2 });
          expect(await a!.retry(id, 'taken', Date.now() + FAR_AHEAD)).toBe(false);
          expect(await a!.retry(UNKNOWN_ID, 'unknown', Date.now())).toBe(false);

          expect(await b!.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
          expect(await b!.extend([id])).toEqual([]);
          await b!.release([id]);
          expect(await b!.read()).toEqual({ id, data: 'original', attempt: 2 });
        });

        it('with runAt ≤ now: replaces the data, resets attempt, ready at once in its id order, and ends the lease', async () => {
          const [a, b] = await shortAndLong();
          const [id, younger] = await writeAll(a!, ['v1', 'younger']);
          await a!.readBatch(1);
          await sleep(PAST_SHORT_LEASE);
          expect((await b!.readBatch(1))[0]).toEqual({ id, data: 'v1', attempt: 2 });
          expect(await b!.retry(id!, 'v2 \ud800 ✓', Date.now() - 1)).toBe(true);
          expect(await b!.stats()).toEqual({ ready: 2, leased: 0, failed: 0, delayed: 0 });
          expect(await b!.ackBatch([id!])).toEqual([id]);
          expect(await b!.retry(id!, 'twice', Date.now())).toBe(false);
          expect(await b!.readBatch(5)).toEqual([
            { id, data: 'v2 \ud800 ✓', attempt: 1 },
            { id: younger, data: 'younger', attempt: 1 },
          ]);
        });

        it('with a future runAt: delayed until due and promoted, then read with the new data and attempt 1', async () => {
          const queue = await one();
          const id = await queue.write('first try');
          await queue.read();
          expect(await queue.retry(id, 'second try', Date.now() + DUE_SOON)).toBe(true);
          expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 1 });
          expect(await queue.length()).toBe(0);
          expect(await queue.readBatch(5)).toEqual([]);
          expect(await queue.remove(id)).toBe(true); // a delayed retry can be revoked …
          expect(await queue.promoteDue()).toBe(0);

          const other = await queue.write('third');
          await queue.read();
          expect(await queue.retry(other, 'fourth', Date.now() + DUE_SOON)).toBe(true);
          await sleep(PAST_DUE);
          expect(await queue.readBatch(5)).toEqual([]); // … and stays unreadable, though due, until promoted
          expect(await queue.promoteDue()).toBe(1);
          expect(await queue.read()).toEqual({ id: other, data: 'fourth', attempt: 1 });
        });
      });

      describe('remove', () => {
        it('deletes a ready, a delayed and an expired-lease message', async () => {
          const [a, b] = await shortAndLong();
          const expired = await a!.write('expired');
          await a!.read();
          const ready = await a!.write('ready');
          const delayed = await a!.write('delayed', far());
          await sleep(PAST_SHORT_LEASE);
          expect(await b!.remove(ready)).toBe(true);
          expect(await b!.remove(delayed)).toBe(true);
          expect(await b!.remove(expired)).toBe(true);
          expect(await b!.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
          expect(await b!.readBatch(5)).toEqual([]);
          expect(await a!.ackBatch([expired])).toEqual([expired]);
          for (const id of [ready, delayed, expired]) expect(await b!.remove(id)).toBe(false);
        });

        it('refuses a live lease (any owner), a failed message and an unknown id, changing nothing', async () => {
          const [a, b] = await instances(2);
          const [live, failed] = await writeAll(a!, ['live', 'failed']);
          await a!.readBatch(2);
          expect(await a!.fail(failed!, 'boom')).toBe(true);
          expect(await b!.remove(live!)).toBe(false);
          expect(await a!.remove(live!)).toBe(false);
          expect(await a!.remove(failed!)).toBe(false);
          expect(await a!.remove(UNKNOWN_ID)).toBe(false);
          expect(await a!.stats()).toEqual({ ready: 0, leased: 1, failed: 1, delayed: 0 });
          expect((await a!.failed()).map((f) => [f.id, f.data])).toEqual([[failed, 'failed']]);
          expect(await a!.ackBatch([live!])).toEqual([]);
        });
      });

      describe('results', () => {
        it('setResults/getResult round-trip records exactly; unknown job ids give null', async () => {
          const [writer, reader] = await instances(2);
          const texts = awkwardTexts();
          const jobIds = texts.map(() => randomUUID());
          await writer!.setResults(texts.map((record, i) => ({ jobId: jobIds[i]!, record, ttlMs: 60_000 })));
          for (let i = 0; i < texts.length; i++) {
            const got = await reader!.getResult(jobIds[i]!);
            expect(got?.length, `record #${i}`).toBe(texts[i]!.length);
            expect(got === texts[i], `record #${i} differs`).toBe(true);
          }
          expect(await reader!.getResult(randomUUID())).toBeNull();
          await writer!.setResults([]);
        });

        it('setResults overwrites the record of a job id and leaves the others alone', async () => {
          const queue = await one();
          const [x, y] = [randomUUID(), randomUUID()];
          await queue.setResults([
            { jobId: x, record: 'x1', ttlMs: 60_000 },
            { jobId: y, record: 'y1', ttlMs: 60_000 },
          ]);
          await queue.setResults([{ jobId: x, record: 'x2', ttlMs: 60_000 }]);
          expect(await queue.getResult(x)).toBe('x2');
          expect(await queue.getResult(y)).toBe('y1');
        });

        it('keeps the results of queues with different names apart', async () => {
          const a = await one();
          const b = await one();
          const jobId = randomUUID();
          await a.setResults([{ jobId, record: 'from a', ttlMs: 60_000 }]);
          expect(await b.getResult(jobId)).toBeNull();
          await b.setResults([{ jobId, record: 'from b', ttlMs: 60_000 }]);
          expect(await a.getResult(jobId)).toBe('from a');
          expect(await b.getResult(jobId)).toBe('from b');
          await b.flush();
          expect(await b.getResult(jobId)).toBeNull();
          expect(await a.getResult(jobId)).toBe('from a');
        });

        it('a record expires ttlMs after it was set', async () => {
          const queue = await one();
          const [short, renewed, long] = [randomUUID(), randomUUID(), randomUUID()];
          await queue.setResults([
            { jobId: short, record: 'short', ttlMs: 300 },
            { jobId: renewed, record: 'old', ttlMs: 300 },
            { jobId: long, record: 'long', ttlMs: 60_000 },
          ]);
          expect(await queue.getResult(short)).toBe('short');
          await queue.setResults([{ jobId: renewed, record: 'new', ttlMs: 60_000 }]);
          await sleep(600);
          expect(await queue.getResult(short)).toBeNull();
          expect(await queue.getResult(renewed)).toBe('new');
          expect(await queue.getResult(long)).toBe('long');
        });
      });

      it('flush() also deletes delayed messages and result records', async () => {
        const [a, b] = await instances(2);
        await a!.write('ready');
        await a!.write('delayed', far());
        await a!.write('due soon', soon());
        const jobId = randomUUID();
        await a!.setResults([{ jobId, record: 'result', ttlMs: 60_000 }]);
        await b!.flush();
        expect(await a!.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
        expect(await a!.getResult(jobId)).toBeNull();
        await sleep(PAST_DUE);
        expect(await a!.promoteDue()).toBe(0);
        expect(await a!.readBatch(5)).toEqual([]);
      });
    });
  });
}
