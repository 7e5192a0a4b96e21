/**
 * Contract: fencing per delivery. Every read hands out a delivery token
 * (QueueMessage.delivery); given it, ack, fail, retry, release, extend,
 * startGated and setResults act only while that very delivery holds the lease.
 * A consumer that let a lease lapse and read the message again (same owner)
 * holds a new delivery, and the old one's late calls are refused — its late
 * result too.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BaseQueue, QueueMessage } from '../../backends/base.js';
import { LeaseLostError } from '../../shared/errors.js';
import { type ContractHarness, freshName, PAST_SHORT_LEASE, SHORT_LEASE, sleep, ANY_DELIVERY } from './kit.js';

const record = (jobId: string, text: string) => ({ jobId, record: text, ttlMs: 60_000 });

/** Every call of the old delivery `old` of `id` is refused, and changes nothing. */
async function expectOldRefused(queue: BaseQueue, old: QueueMessage, jobId: string): Promise<void> {
  const { id, delivery } = old;
  await queue.setResults([record(jobId, 'late result of the old delivery')], [id], [delivery]);
  expect(await queue.getResult(jobId)).toBeNull();
  await expect(queue.ack(id, delivery)).rejects.toBeInstanceOf(LeaseLostError);
  expect(await queue.ackBatch([id], [delivery])).toEqual([id]);
  expect(await queue.extend([id], [delivery])).toEqual([id]);
  expect(await queue.fail(id, 'late failure', delivery)).toBe(false);
  expect(await queue.retry(id, 'late retry', Date.now(), delivery)).toBe(false);
  await queue.release([id], [delivery]);
  expect(await queue.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
}

export function describeFencing(harness: ContractHarness): void {
  const { open } = harness;

  /**
   * One owner holds two messages from one read: `stale`, whose first delivery `old` lapsed (read
   * through a short lease) and was read again as `again`, and `fresh`, delivered as `other`.
   */
  async function staleAndFresh() {
    const name = freshName();
    const owner = `fence-${randomUUID()}`;
    const short = await open(name, { owner, leaseMs: SHORT_LEASE });
    const long = await open(name, { owner });
    const stale = await short.write('stale');
    const old = (await short.read())!;
    await sleep(PAST_SHORT_LEASE);
    const fresh = await long.write('fresh');
    // One read: the lapsed message again and the new one, possibly under one token.
    const batch = await long.readBatch(2);
    expect(batch.map((m) => m.id).sort()).toEqual([stale, fresh].sort());
    return { long, stale, fresh, old, again: batch.find((m) => m.id === stale)!, other: batch.find((m) => m.id === fresh)! };
  }

  describe('fencing per delivery', () => {
    it('a re-read by the SAME owner after the lease lapsed is a new delivery: the old delivery’s ack, fail, retry, release, extend and result write are refused; the new one’s are accepted', async () => {
      const name = freshName();
      const owner = `fence-${randomUUID()}`;
      // One owner, two instances (a restart with a fixed owner): the short lease lapses, the long one holds.
      const short = await open(name, { owner, leaseMs: SHORT_LEASE });
      const long = await open(name, { owner });
      const id = await short.write('job');
      const first = (await short.read())!;
      expect(Number.isSafeInteger(first.delivery)).toBe(true);
      await sleep(PAST_SHORT_LEASE);
      const second = (await long.read())!;
      expect(second).toEqual({ id, data: 'job', attempt: 2, delivery: ANY_DELIVERY });
      expect(second.delivery).not.toBe(first.delivery);

      const jobId = randomUUID();
      await expectOldRefused(short, first, jobId);
      await expectOldRefused(long, first, jobId);

      await long.setResults([record(jobId, 'result of the new delivery')], [id], [second.delivery]);
      expect(await long.getResult(jobId)).toBe('result of the new delivery');
      await short.setResults([record(jobId, 'late result of the old delivery')], [id], [first.delivery]);
      expect(await long.getResult(jobId)).toBe('result of the new delivery');
      expect(await long.extend([id], [second.delivery])).toEqual([]);
      expect(await long.ackBatch([id], [second.delivery])).toEqual([]);
      expect(await long.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    });

    it('one instance re-reading its own lapsed lease: the old delivery’s ack is refused, the new one’s accepted', async () => {
      const queue = await open(freshName(), { leaseMs: 600 });
      const id = await queue.write('job');
      const first = (await queue.read())!;
      await sleep(700);
      const second = (await queue.read())!;
      expect(second.id).toBe(id);
      expect(second.delivery).not.toBe(first.delivery);
      expect(await queue.ackBatch([id], [first.delivery])).toEqual([id]);
      expect(await queue.ackBatch([id], [second.delivery])).toEqual([]);
      expect(await queue.length()).toBe(0);
    });

    it('after a DIFFERENT owner re-leased it: the old delivery is refused, the new owner’s delivery accepted, and a token of another delivery is refused even from the holder', async () => {
      const name = freshName();
      const a = await open(name, { leaseMs: SHORT_LEASE });
      const b = await open(name);
      const id = await a.write('job');
      const first = (await a.read())!;
      await sleep(PAST_SHORT_LEASE);
      const second = (await b.read())!;
      expect(second.id).toBe(id);

      const jobId = randomUUID();
      await expectOldRefused(a, first, jobId);
      // b holds the lease, but not under a's delivery.
      expect(await b.ackBatch([id], [first.delivery])).toEqual([id]);
      await b.setResults([record(jobId, 'under the wrong delivery')], [id], [first.delivery]);
      expect(await b.getResult(jobId)).toBeNull();

      await b.setResults([record(jobId, 'done')], [id], [second.delivery]);
      expect(await b.fail(id, 'it failed', second.delivery)).toBe(true);
      expect(await b.getResult(jobId)).toBe('done');
      expect((await b.failed()).map((f) => f.id)).toEqual([id]);
    });

    it('a batch pairs each id with its own delivery: one stale pair is refused, the others in the same call accepted', async () => {
      const { long, stale, fresh, old, again, other } = await staleAndFresh();
      const jobs = [randomUUID(), randomUUID()];
      await long.setResults([record(jobs[0]!, 'old'), record(jobs[1]!, 'fresh')], [stale, fresh], [old.delivery, other.delivery]);
      expect(await long.getResult(jobs[0]!)).toBeNull();
      expect(await long.getResult(jobs[1]!)).toBe('fresh');
      expect(await long.extend([stale, fresh], [old.delivery, other.delivery])).toEqual([stale]);
      expect(await long.ackBatch([stale, fresh], [old.delivery, other.delivery])).toEqual([stale]);
      expect(await long.ackBatch([stale], [again.delivery])).toEqual([]);
      expect(await long.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    });

    it('ackWithResults (how a consumer flushes its acks): each held delivery’s result is stored and its message acked; a stale pair’s result and ack are refused, the rest of the call lands', async () => {
      const { long, stale, fresh, old, again, other } = await staleAndFresh();
      const jobs = [randomUUID(), randomUUID()];
      const ids = [stale, fresh];
      const deliveries = [old.delivery, other.delivery];
      const refused = await long.ackWithResults(ids, deliveries, [record(jobs[0]!, 'old'), record(jobs[1]!, 'fresh')], ids, deliveries);
      expect(refused).toEqual([stale]);
      expect(await long.getResult(jobs[0]!)).toBeNull();
      expect(await long.getResult(jobs[1]!)).toBe('fresh');
      expect(await long.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
      // The current delivery of the stale message: its result and ack land, acks without results too.
      expect(await long.ackWithResults([stale], [again.delivery], [record(jobs[0]!, 'new')], [stale], [again.delivery])).toEqual([]);
      expect(await long.getResult(jobs[0]!)).toBe('new');
      const plain = await long.write('plain');
      const read = (await long.read())!;
      expect(await long.ackWithResults([plain], [read.delivery], [], [], [])).toEqual([]);
      expect(await long.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    });

    it('startGated of an old delivery is lost; the new delivery starts, and its gated ack frees the slot', async () => {
      const name = freshName();
      const owner = `fence-${randomUUID()}`;
      const short = await open(name, { owner, leaseMs: SHORT_LEASE });
      const long = await open(name, { owner });
      const gates = { concurrency: { key: 'fenced', limit: 1 } };
      const id = await short.write('gated');
      const first = (await short.read())!;
      await sleep(PAST_SHORT_LEASE);
      const second = (await long.read())!;
      expect((await long.startGated(id, gates, first.delivery)).decision).toBe('lost');
      expect((await long.startGated(id, gates, second.delivery)).decision).toBe('started');
      expect(await long.ackBatch([id], [first.delivery])).toEqual([id]);
      expect(await long.ackBatch([id], [second.delivery])).toEqual([]);
      // The slot is free again: the next message of the key starts at once.
      const next = await long.write('next');
      const leased = (await long.read())!;
      expect(leased.id).toBe(next);
      expect((await long.startGated(next, gates, leased.delivery)).decision).toBe('started');
    });

    it('without delivery tokens the fence is per owner, as before (the seed’s ack(id))', async () => {
      const name = freshName();
      const owner = `fence-${randomUUID()}`;
      const short = await open(name, { owner, leaseMs: SHORT_LEASE });
      const long = await open(name, { owner });
      const id = await short.write('job');
      await short.read();
      await sleep(PAST_SHORT_LEASE);
      await long.read();
      const jobId = randomUUID();
      await short.setResults([record(jobId, 'unfenced')], [id]);
      expect(await short.getResult(jobId)).toBe('unfenced');
      await long.ack(id);
      expect(await long.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    });
  });
}
