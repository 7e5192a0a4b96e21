/**
 * Contract: writeUnique, the slot claims periodic commands use to enqueue a
 * tick once however many schedulers run.
 */
import { describe, expect, it } from 'vitest';
import { type ContractHarness, sleep } from './kit.js';

export function describeSlots(harness: ContractHarness): void {
  const { instances, one } = harness;
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
}
