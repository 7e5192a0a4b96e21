/**
 * Contract: writing, reading and acking, data round-trips, and the counts
 * (stats, length) and flush.
 */
import { describe, expect, it } from 'vitest';
import { LeaseLostError } from '../../shared/errors.js';
import { awkwardTexts, type ContractHarness, UNKNOWN_ID, writeAll, ANY_DELIVERY } from './kit.js';

export function describeWriteReadAck(harness: ContractHarness): void {
  const { instances, one } = harness;
  describe('write, read, ack', () => {
    it('writes a message, leases it with attempt 1, and ack deletes it', async () => {
      const queue = await one();
      const id = await queue.write('hello');
      expect(typeof id).toBe('string');
      expect(id.length).toBeGreaterThan(0);
      expect(await queue.length()).toBe(1);

      const message = await queue.read();
      expect(message).toEqual({ id, data: 'hello', attempt: 1, delivery: ANY_DELIVERY });
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
        expect(message).toEqual({ id: ids[i], data: datas[i], attempt: 1, delivery: ANY_DELIVERY });
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
      expect(await consumer!.read()).toEqual({ id, data: 'shared', attempt: 1, delivery: ANY_DELIVERY });
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
}

export function describeStatsLengthFlush(harness: ContractHarness): void {
  const { instances, one } = harness;
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
}
