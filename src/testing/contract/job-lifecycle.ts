/**
 * Contract: the job lifecycle beyond read/ack: delays (delays.ts), retry,
 * remove, result records, and flush of all of them.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  awkwardTexts,
  type ContractHarness,
  DUE_SOON,
  far,
  FAR_AHEAD,
  PAST_DUE,
  PAST_SHORT_LEASE,
  sleep,
  soon,
  UNKNOWN_ID,
  writeAll,
  ANY_DELIVERY,
} from './kit.js';
import { describeDelays } from './delays.js';

export function describeJobLifecycle(harness: ContractHarness): void {
  const { instances, shortAndLong, one } = harness;
  describe('job lifecycle', () => {
    describeDelays(harness);

    describe('retry', () => {
      it('is fenced like ack: false after the lease expired or was taken, and nothing changes', async () => {
        const [a, b] = await shortAndLong();
        const id = await a.write('original');
        expect(await a.retry(id, 'not leased', Date.now())).toBe(false);
        await a.read();
        await sleep(PAST_SHORT_LEASE);
        expect(await a.retry(id, 'expired', Date.now())).toBe(false);
        expect(await b.read()).toEqual({ id, data: 'original', attempt: 2, delivery: ANY_DELIVERY });
        expect(await a.retry(id, 'taken', Date.now() + FAR_AHEAD)).toBe(false);
        expect(await a.retry(UNKNOWN_ID, 'unknown', Date.now())).toBe(false);

        expect(await b.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
        expect(await b.extend([id])).toEqual([]);
        await b.release([id]);
        expect(await b.read()).toEqual({ id, data: 'original', attempt: 2, delivery: ANY_DELIVERY });
      });

      it('with runAt ≤ now: replaces the data, resets attempt, ready at once in its id order, and ends the lease', async () => {
        const [a, b] = await shortAndLong();
        const [id, younger] = await writeAll(a, ['v1', 'younger']);
        await a.readBatch(1);
        await sleep(PAST_SHORT_LEASE);
        expect((await b.readBatch(1))[0]).toEqual({ id, data: 'v1', attempt: 2, delivery: ANY_DELIVERY });
        expect(await b.retry(id!, 'v2 \ud800 ✓', Date.now() - 1)).toBe(true);
        expect(await b.stats()).toEqual({ ready: 2, leased: 0, failed: 0, delayed: 0 });
        expect(await b.ackBatch([id!])).toEqual([id]);
        expect(await b.retry(id!, 'twice', Date.now())).toBe(false);
        expect(await b.readBatch(5)).toEqual([
          { id, data: 'v2 \ud800 ✓', attempt: 1, delivery: ANY_DELIVERY },
          { id: younger, data: 'younger', attempt: 1, delivery: ANY_DELIVERY },
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
        expect(await queue.read()).toEqual({ id: other, data: 'fourth', attempt: 1, delivery: ANY_DELIVERY });
      });
    });

    describe('remove', () => {
      it('deletes a ready, a delayed and an expired-lease message', async () => {
        const [a, b] = await shortAndLong();
        const expired = await a.write('expired');
        await a.read();
        const ready = await a.write('ready');
        const delayed = await a.write('delayed', far());
        await sleep(PAST_SHORT_LEASE);
        expect(await b.remove(ready)).toBe(true);
        expect(await b.remove(delayed)).toBe(true);
        expect(await b.remove(expired)).toBe(true);
        expect(await b.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
        expect(await b.readBatch(5)).toEqual([]);
        expect(await a.ackBatch([expired])).toEqual([expired]);
        for (const id of [ready, delayed, expired]) expect(await b.remove(id)).toBe(false);
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
}
