/**
 * RedisQueue.ackWithResults: a consumer's flush of results and acks is one
 * tmAck script, one round trip. What must hold: the result exists once the
 * message is gone, a failed script changes nothing (the batch stays leased
 * and is tried again whole), and the cases the one script does not take
 * (results over one call's size, acks that free a concurrency slot) still
 * land through the two-call way. A read issued in the same turn rides along
 * (tmAckRead, read-coalescer.ts), and fails with the flush when it fails.
 * The fences themselves are the contract's (src/testing/contract/fencing.ts).
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisQueue } from '../../src/backends/redis/queue.js';
import { KEY_ANCHOR } from '../../src/backends/redis/scripts.js';
import type { RedisConnection } from '../../src/backends/redis/connection.js';
import { QueueConnectionError } from '../../src/shared/errors.js';
import { REDIS_URL, hasRedis, uniqueName } from '../helpers/services.js';

const PREFIX = uniqueName('tmackres');

describe.skipIf(!hasRedis)('RedisQueue.ackWithResults', () => {
  const made: RedisQueue[] = [];
  let raw: Redis;

  function queue(): RedisQueue {
    const q = new RedisQueue(REDIS_URL, { prefix: PREFIX, name: uniqueName('q') });
    made.push(q);
    return q;
  }
  const key = (q: RedisQueue, role: string) => `${PREFIX}:{${q.name}}:${role}`;

  /** Counts the calls `q` makes to the server (each `run` is one command: one round trip). */
  function countCalls(q: RedisQueue): { calls: number } {
    const connection = (q as unknown as { connection: RedisConnection }).connection;
    const counter = { calls: 0 };
    const run = connection.run.bind(connection);
    connection.run = (what, fn) => {
      counter.calls++;
      return run(what, fn);
    };
    return counter;
  }

  async function leased(q: RedisQueue, n: number) {
    await q.writeBatch(Array.from({ length: n }, (_, i) => `job ${i}`));
    const messages = await q.readBatch(n);
    const ids = messages.map((m) => m.id);
    const deliveries = messages.map((m) => m.delivery);
    const records = ids.map((id) => ({ jobId: `job-${id}`, record: `result of ${id}`, ttlMs: 60_000 }));
    return { ids, deliveries, records };
  }

  /** Nothing of the acked messages is left behind: the lease keys hold their anchor alone (lua/prelude.lua). */
  async function nothingLeftOf(q: RedisQueue) {
    expect(await raw.exists(key(q, 'msg')), 'msg').toBe(0);
    expect(await raw.zrange(key(q, 'leases'), '0', '-1')).toEqual([KEY_ANCHOR]);
    for (const role of ['attempt', 'owner']) expect(await raw.hkeys(key(q, role)), role).toEqual([KEY_ANCHOR]);
  }

  beforeAll(() => {
    raw = new Redis(REDIS_URL, { lazyConnect: true });
  });

  afterEach(async () => {
    await Promise.all(made.splice(0).map((q) => q.close()));
  });

  afterAll(async () => {
    const keys = await raw.keys(`${PREFIX}:*`);
    if (keys.length > 0) await raw.del(...keys);
    raw.disconnect();
  });

  it('stores every result and acks every message in one call to the server', async () => {
    const q = queue();
    const { ids, deliveries, records } = await leased(q, 100);
    const counter = countCalls(q);
    expect(await q.ackWithResults(ids, deliveries, records, ids, deliveries)).toEqual([]);
    expect(counter.calls).toBe(1);
    expect(await q.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    for (const id of ids) expect(await q.getResult(`job-${id}`)).toBe(`result of ${id}`);
    await nothingLeftOf(q);
  });

  it('an ack of more ids than one command takes (1000) checks every fence and deletes every acked message', async () => {
    const q = queue();
    const { ids, deliveries } = await leased(q, 1200);
    const stranger = '987654321';
    expect(await q.ackBatch([...ids, stranger], [...deliveries, deliveries[0]!])).toEqual([stranger]);
    expect(await q.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    await nothingLeftOf(q);
  });

  it('a script that fails changes nothing: the batch stays leased, and the same call lands once the fault is gone', async () => {
    const q = queue();
    const { ids, deliveries, records } = await leased(q, 5);
    // A key of the wrong type makes the script's first write fail.
    await raw.set(key(q, 'results'), 'not a hash');
    await expect(q.ackWithResults(ids, deliveries, records, ids, deliveries)).rejects.toBeInstanceOf(QueueConnectionError);
    expect(await q.stats()).toEqual({ ready: 0, leased: 5, failed: 0, delayed: 0 });
    expect(await raw.hlen(key(q, 'msg'))).toBe(5);
    await raw.del(key(q, 'results'));
    expect(await q.ackWithResults(ids, deliveries, records, ids, deliveries)).toEqual([]);
    expect(await q.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    for (const id of ids) expect(await q.getResult(`job-${id}`)).toBe(`result of ${id}`);
  });

  it('purges expired records as setResults does', async () => {
    const q = queue();
    await q.setResults(Array.from({ length: 3 }, (_, i) => ({ jobId: `old-${i}`, record: 'r', ttlMs: 50 })));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { ids, deliveries, records } = await leased(q, 2);
    await q.ackWithResults(ids, deliveries, records, ids, deliveries);
    expect((await raw.hkeys(key(q, 'results'))).sort()).toEqual(records.map((r) => r.jobId).sort());
    expect(await raw.zcard(key(q, 'resexp'))).toBe(2);
  });

  it('results over one script call (8 MiB) go the two-call way, and still land whole', async () => {
    const q = queue();
    const { ids, deliveries } = await leased(q, 2);
    const body = 'x'.repeat(3 * 1024 * 1024);
    // A lone surrogate doubles the stored size (UTF-16): 6 MiB + 3 MiB does not fit one call.
    const records = [
      { jobId: 'a', record: `\ud800 ${body}`, ttlMs: 60_000 },
      { jobId: 'b', record: `plain ${body}`, ttlMs: 60_000 },
    ];
    const counter = countCalls(q);
    expect(await q.ackWithResults(ids, deliveries, records, ids, deliveries)).toEqual([]);
    expect(counter.calls).toBe(3);
    expect(await q.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    for (const { jobId, record } of records) expect((await q.getResult(jobId)) === record, jobId).toBe(true);
  });

  it('an ack that frees a concurrency slot goes the gated way: the result lands and the parked message wakes', async () => {
    const q = queue();
    const gates = { concurrency: { key: 'k', limit: 1 } };
    await q.writeBatch(['first', 'second']);
    const [first, second] = await q.readBatch(2);
    expect((await q.startGated(first!.id, gates, first!.delivery)).decision).toBe('started');
    expect((await q.startGated(second!.id, gates, second!.delivery)).decision).toBe('deferred'); // parked on the key
    const record = { jobId: 'gated', record: 'done', ttlMs: 60_000 };
    expect(await q.ackWithResults([first!.id], [first!.delivery], [record], [first!.id], [first!.delivery])).toEqual([]);
    expect(await q.getResult('gated')).toBe('done');
    const again = (await q.read())!;
    expect(again.id).toBe(second!.id);
    expect((await q.startGated(again.id, gates, again.delivery)).decision).toBe('started');
  });

  describe('a read issued in the same turn as the flush goes with it (tmAckRead)', () => {
    it('one call acks, stores the results and reads the next batch', async () => {
      const q = queue();
      const { ids, deliveries, records } = await leased(q, 3);
      await q.writeBatch(['next 1', 'next 2']);
      const counter = countCalls(q);
      const read = q.readBatch(10);
      const acked = q.ackWithResults(ids, deliveries, records, ids, deliveries);
      expect(await acked).toEqual([]);
      const next = await read;
      expect(counter.calls).toBe(1);
      expect(next.map((m) => m.data)).toEqual(['next 1', 'next 2']);
      expect(next.every((m) => m.attempt === 1 && Number.isSafeInteger(m.delivery))).toBe(true);
      for (const id of ids) expect(await q.getResult(`job-${id}`)).toBe(`result of ${id}`);
      expect(await q.stats()).toEqual({ ready: 0, leased: 2, failed: 0, delayed: 0 });
      // The read's delivery fences its messages like any read's.
      expect(
        await q.ackBatch(
          next.map((m) => m.id),
          next.map((m) => m.delivery + 1),
        ),
      ).toEqual(next.map((m) => m.id));
      expect(
        await q.ackBatch(
          next.map((m) => m.id),
          next.map((m) => m.delivery),
        ),
      ).toEqual([]);
    });

    it('a plain ack takes the read too, and refuses a stale pair as tmAck does', async () => {
      const q = queue();
      const { ids, deliveries } = await leased(q, 2);
      await q.write('next');
      const counter = countCalls(q);
      const read = q.readBatch(5);
      expect(await q.ackBatch(ids, [deliveries[0]!, deliveries[1]! + 1])).toEqual([ids[1]]);
      expect((await read).map((m) => m.data)).toEqual(['next']);
      expect(counter.calls).toBe(1);
      expect(await q.stats()).toEqual({ ready: 0, leased: 2, failed: 0, delayed: 0 });
    });

    it('a read that no flush takes goes out alone at the end of its turn; a second read meanwhile goes alone too', async () => {
      const q = queue();
      await q.writeBatch(['a', 'b', 'c']);
      const counter = countCalls(q);
      const [first, second] = await Promise.all([q.readBatch(1), q.readBatch(1)]);
      expect([...first, ...second].map((m) => m.data).sort()).toEqual(['a', 'b']);
      expect(counter.calls).toBe(2);
    });

    it('a combined call that fails rejects the read and the flush, and changes nothing', async () => {
      const q = queue();
      const { ids, deliveries, records } = await leased(q, 2);
      await q.write('waiting');
      await raw.set(key(q, 'results'), 'not a hash');
      const read = q.readBatch(5);
      const acked = q.ackWithResults(ids, deliveries, records, ids, deliveries);
      await expect(acked).rejects.toBeInstanceOf(QueueConnectionError);
      await expect(read).rejects.toBeInstanceOf(QueueConnectionError);
      expect(await q.stats()).toEqual({ ready: 1, leased: 2, failed: 0, delayed: 0 });
      await raw.del(key(q, 'results'));
      const again = q.readBatch(5);
      expect(await q.ackWithResults(ids, deliveries, records, ids, deliveries)).toEqual([]);
      expect((await again).map((m) => m.data)).toEqual(['waiting']);
      for (const id of ids) expect(await q.getResult(`job-${id}`)).toBe(`result of ${id}`);
    });
  });
});
