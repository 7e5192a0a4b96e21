/**
 * Contract: unique writes (writeOnce). A key is held from the write until its
 * message is done (acked, failed, removed) or the key's ttl lapses; while it
 * is held, writing under it writes nothing and answers with the holder.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/errors.js';
import { type ContractHarness, far, PAST_SHORT_LEASE, SHORT_LEASE, sleep } from './kit.js';

export function describeUnique(harness: ContractHarness): void {
  const { instances, one } = harness;
  describe('unique writes (writeOnce)', () => {
    it('a second write under a held key writes nothing and answers with the holder', async () => {
      const queue = await one();
      const first = await queue.writeOnce('k', 'first');
      expect(first.duplicate).toBe(false);
      const second = await queue.writeOnce('k', 'second');
      expect(second).toEqual({ id: first.id, duplicate: true, data: 'first' });
      const other = await queue.writeOnce('other', 'third');
      expect(other.duplicate).toBe(false);
      expect(await queue.stats()).toMatchObject({ ready: 2 });
      expect((await queue.readBatch(10)).map((m) => m.data)).toEqual(['first', 'third']);
    });

    it('the key is held while leased, released, retried and delayed; free once acked', async () => {
      const queue = await one();
      const { id } = await queue.writeOnce('k', 'v1');
      const [m] = await queue.readBatch(1);
      expect((await queue.writeOnce('k', 'x')).duplicate).toBe(true);
      await queue.release([m!.id]);
      expect((await queue.writeOnce('k', 'x')).duplicate).toBe(true);
      await queue.readBatch(1);
      expect(await queue.retry(id, 'v2', Date.now() + 3_600_000)).toBe(true);
      expect(await queue.writeOnce('k', 'x')).toEqual({ id, duplicate: true, data: 'v2' });
      expect(await queue.remove(id)).toBe(true);
      const next = await queue.writeOnce('k', 'v3', far());
      expect(next.duplicate).toBe(false);
      expect((await queue.writeOnce('k', 'x')).duplicate).toBe(true);
      await queue.promoteDue();
      expect(await queue.remove(next.id)).toBe(true);
      const last = await queue.writeOnce('k', 'v4');
      const [leased] = await queue.readBatch(1);
      expect(leased!.id).toBe(last.id);
      expect(await queue.ackBatch([leased!.id])).toEqual([]);
      expect((await queue.writeOnce('k', 'v5')).duplicate).toBe(false);
    });

    it('failing the message frees the key; requeueFailed does not take it back', async () => {
      const queue = await one();
      const { id } = await queue.writeOnce('k', 'doomed');
      await queue.readBatch(1);
      expect(await queue.fail(id, 'boom')).toBe(true);
      const fresh = await queue.writeOnce('k', 'fresh');
      expect(fresh.duplicate).toBe(false);
      await queue.ackBatch([]);
      expect(await queue.requeueFailed()).toBe(1);
      // 'fresh' still holds the key; the requeued message runs without one.
      expect(await queue.writeOnce('k', 'x')).toEqual({ id: fresh.id, duplicate: true, data: 'fresh' });
      expect((await queue.readBatch(10)).map((m) => m.data).sort()).toEqual(['doomed', 'fresh']);
    });

    it('a key held longer than keyTtlMs is free, though its message still waits', async () => {
      const queue = await one();
      const first = await queue.writeOnce('k', 'old', { keyTtlMs: SHORT_LEASE });
      expect((await queue.writeOnce('k', 'x', { keyTtlMs: SHORT_LEASE })).duplicate).toBe(true);
      await sleep(PAST_SHORT_LEASE);
      const second = await queue.writeOnce('k', 'new');
      expect(second.duplicate).toBe(false);
      expect(second.id).not.toBe(first.id);
      expect(await queue.length()).toBe(2);
    });

    it('honours priority and runAt, and flush() frees every key', async () => {
      const queue = await one();
      await queue.write('plain');
      await queue.writeOnce('p', 'urgent', { priority: 10 });
      await queue.writeOnce('d', 'later', far());
      expect(await queue.stats()).toMatchObject({ ready: 2, delayed: 1 });
      expect((await queue.readBatch(1)).map((m) => m.data)).toEqual(['urgent']);
      await queue.flush();
      expect((await queue.writeOnce('p', 'again')).duplicate).toBe(false);
      expect((await queue.writeOnce('d', 'again')).duplicate).toBe(false);
    });

    it('concurrent writes of one key from several instances write it once', async () => {
      const queues = await instances(3);
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => queues[i % 3]!.writeOnce('race', `w${i}`)));
      const written = results.filter((r) => !r.duplicate);
      expect(written).toHaveLength(1);
      expect(new Set(results.map((r) => r.id))).toEqual(new Set([written[0]!.id]));
      expect(await queues[0]!.length()).toBe(1);
    });

    it('refuses a bad key or ttl, naming it, and writes nothing', async () => {
      const queue = await one();
      for (const key of ['', 'x'.repeat(513), 'nul\u0000', 'lone \udc00', 7 as unknown as string]) {
        await expect(queue.writeOnce(key, 'x')).rejects.toThrow(ConfigError);
        await expect(queue.writeOnce(key, 'x')).rejects.toThrow(/invalid unique key/);
      }
      await expect(queue.writeOnce('k', 'x', { keyTtlMs: 0 })).rejects.toThrow(/invalid unique ttl/);
      await expect(queue.writeOnce('k', 'x', { priority: 0.5 })).rejects.toThrow(/invalid priority/);
      expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
      expect((await queue.writeOnce('k', 'x')).duplicate).toBe(false);
    });
  });
}
