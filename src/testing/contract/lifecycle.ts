/**
 * Contract: opening and closing a queue, refused names and leases, and
 * isolation between queue names.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/errors.js';
import { type ContractHarness, freshName, sleep, writeAll } from './kit.js';

export function describeLifecycleAndIsolation(harness: ContractHarness): void {
  const { one, opened, target } = harness;
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

    it.each([['a*'], ['{x}'], ['x"; DROP TABLE t;--'], ['x'.repeat(200)], [''], ['has space']])('refuses the queue name %j with ConfigError', async (name) => {
      const attempt = (async () => {
        const queue = await target.create({ name });
        opened.push(queue);
        return queue;
      })();
      await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    });

    it('refuses a lease shorter than 100 ms with ConfigError', async () => {
      const attempt = (async () => {
        const queue = await target.create({ name: freshName(), leaseMs: 10 });
        opened.push(queue);
        return queue;
      })();
      await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    });
  });
}
