import { inspect } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisBlockingQueue, RedisQueue, type RedisQueueOptions } from '../../src/backends/redis/queue.js';
import { ConfigError, QueueConnectionError } from '../../src/shared/errors.js';
import { REDIS_URL, hasRedis, uniqueName } from '../helpers/services.js';
import { KEY_ANCHOR, PROMOTE_PER_CALL, RESULTS_PURGED_PER_SET } from '../../src/backends/redis/scripts.js';
import { RedisServer, freePort, hasRedisServer } from '../helpers/redis-server.js';
import { runContractSuite } from '../../src/testing/index.js';

/** Every key this file creates starts with PREFIX; afterAll deletes them from the shared server. */
const PREFIX = uniqueName('tmtest');
const SECRET = 's3cr3t-Pa55word';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe.skipIf(!hasRedis)('redis backends', () => {
  const made: RedisQueue[] = [];
  let raw: Redis;

  function queue(options: RedisQueueOptions = {}, url = REDIS_URL): RedisQueue {
    const q = new RedisQueue(url, { prefix: PREFIX, name: uniqueName('q'), ...options });
    made.push(q);
    return q;
  }

  function blockingQueue(options: RedisQueueOptions = {}): RedisBlockingQueue {
    const q = new RedisBlockingQueue(REDIS_URL, { prefix: PREFIX, name: uniqueName('q'), ...options });
    made.push(q);
    return q;
  }

  async function keysOf(prefix: string): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await raw.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found.sort();
  }

  beforeAll(() => {
    raw = new Redis(REDIS_URL, { lazyConnect: true });
  });

  afterEach(async () => {
    await Promise.all(made.splice(0).map((q) => q.close()));
  });

  afterAll(async () => {
    for (const db of [0, 3]) {
      await raw.select(db);
      const keys = await keysOf(PREFIX);
      if (keys.length > 0) await raw.del(...keys);
    }
    raw.disconnect();
  });

  runContractSuite('RedisQueue', { create: (options) => new RedisQueue(REDIS_URL, { prefix: PREFIX, ...options }) });
  runContractSuite('RedisBlockingQueue', { create: (options) => new RedisBlockingQueue(REDIS_URL, { prefix: PREFIX, ...options }) });

  describe('keys', () => {
    it('puts every key of a queue under one hash tag, and flush leaves only the id counter', async () => {
      const q = queue({ leaseMs: 60_000 });
      await q.writeBatch(['a', 'b', 'c']);
      const [m1] = await q.readBatch(2);
      await q.fail(m1!.id, 'boom');
      await q.writeUnique('slot', 'x', 60_000);
      await q.write('later', { runAt: Date.now() + 3_600_000 });
      await q.setResults([{ jobId: 'job-1', record: '{"ok":true}', ttlMs: 60_000 }]);
      const keys = await keysOf(`${PREFIX}:{${q.name}}`);
      for (const role of ['delayed', 'results', 'resexp']) expect(keys).toContain(`${PREFIX}:{${q.name}}:${role}`);
      expect(keys.length).toBeGreaterThanOrEqual(11);
      for (const key of keys) {
        // Cluster hashes the first {…} only: all keys of the queue land in one slot.
        expect(key.match(/\{[^}]*\}/)?.[0]).toBe(`{${q.name}}`);
        expect(key.startsWith(`${PREFIX}:{${q.name}}:`)).toBe(true);
      }
      await q.flush();
      expect(await keysOf(`${PREFIX}:{${q.name}}`)).toEqual([`${PREFIX}:{${q.name}}:seq`]);
    });

    it('keeps the lease keys of a batch out of the listpack encoding, and counts no anchor as a lease', async () => {
      // Small listpack keys made a batch's ZADD/HSET/ZMSCORE quadratic (lua/prelude.lua, anchor_batch_keys).
      const q = queue({ leaseMs: 60_000 });
      const role = (name: string) => `${PREFIX}:{${q.name}}:${name}`;
      expect(await q.readBatch(10)).toEqual([]);
      for (const name of ['leases', 'owner', 'attempt']) expect(await raw.exists(role(name)), `an empty read anchors nothing: ${name}`).toBe(0);
      await q.writeBatch(Array.from({ length: 100 }, (_, i) => `m${i}`));
      const batch = await q.readBatch(100);
      expect(batch).toHaveLength(100);
      expect(await raw.object('ENCODING', role('leases'))).toBe('skiplist');
      expect(await raw.object('ENCODING', role('owner'))).toBe('hashtable');
      expect(await raw.object('ENCODING', role('attempt'))).toBe('hashtable');
      expect(await q.stats()).toEqual({ ready: 0, leased: 100, failed: 0, delayed: 0 });
      expect(
        await q.ackBatch(
          batch.map((m) => m.id),
          batch.map((m) => m.delivery),
        ),
      ).toEqual([]);
      // The anchor stays, alone, so the next batch lands in the same encodings; it is no lease.
      expect(await raw.zrange(role('leases'), '0', '-1', 'WITHSCORES')).toEqual([KEY_ANCHOR, 'inf']);
      expect(await raw.hkeys(role('owner'))).toEqual([KEY_ANCHOR]);
      expect(await raw.hkeys(role('attempt'))).toEqual([KEY_ANCHOR]);
      expect(await q.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
      expect(await q.reclaim()).toBe(0);
      await q.write('next');
      const [next] = await q.readBatch(5);
      expect(next).toMatchObject({ data: 'next', attempt: 1 });
      expect(await q.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
      expect(await raw.object('ENCODING', role('leases'))).toBe('skiplist');
    });

    it('uses the default prefix "taskmill" and validates the prefix like a queue name', async () => {
      const q = new RedisQueue(REDIS_URL, { name: uniqueName('q') });
      made.push(q);
      expect(q.prefix).toBe('taskmill');
      await q.write('x');
      expect(await raw.exists(`taskmill:{${q.name}}:ready`)).toBe(1);
      await q.flush();
      await raw.del(`taskmill:{${q.name}}:seq`);
      expect(() => new RedisQueue(REDIS_URL, { prefix: 'a{b}' })).toThrow(ConfigError);
      expect(() => new RedisQueue(REDIS_URL, { prefix: '' })).toThrow(ConfigError);
    });

    it('writeBatch keeps order across chunks and signals one wake-up token at most', async () => {
      const q = queue();
      const datas = Array.from({ length: 2500 }, (_, i) => `m${i}`);
      const ids = await q.writeBatch(datas);
      expect(ids).toHaveLength(2500);
      expect(new Set(ids).size).toBe(2500);
      expect(ids.map(Number)).toEqual([...ids.map(Number)].sort((a, b) => a - b));
      expect(await q.writeBatch([])).toEqual([]);
      expect(await raw.llen(`${PREFIX}:{${q.name}}:wake`)).toBe(1);
      const read = await q.readBatch(2500);
      expect(read.map((m) => m.data)).toEqual(datas);
    });

    it('rejects bad arguments with ConfigError before touching the server', async () => {
      const q = queue();
      await expect(q.write(42 as unknown as string)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.writeBatch(['ok', null as unknown as string])).rejects.toBeInstanceOf(ConfigError);
      await expect(q.readBatch(1.5)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.writeUnique('k', 'x', 0)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.writeUnique('', 'x', 1000)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.ackBatch([1 as unknown as string])).rejects.toBeInstanceOf(ConfigError);
      expect(await q.length()).toBe(0);
    });

    it('refuses use after close with QueueConnectionError', async () => {
      const q = queue();
      await q.write('x');
      await q.close();
      await expect(q.write('y')).rejects.toBeInstanceOf(QueueConnectionError);
      await expect(q.readBatch(1)).rejects.toBeInstanceOf(QueueConnectionError);
    });
  });

  describe('server clock', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    it('sets lease deadlines and failure times from the Redis clock, not this process clock', async () => {
      const q = queue({ leaseMs: 30_000 });
      await q.writeBatch(['a', 'b']);
      const realNow = Date.now();
      vi.spyOn(Date, 'now').mockReturnValue(realNow + 3_600_000); // this host's clock is an hour fast
      const [m1] = await q.readBatch(2);
      const [seconds] = await raw.time();
      const deadline = Number(await raw.zscore(`${PREFIX}:{${q.name}}:leases`, m1!.id));
      expect(Math.abs(deadline - (Number(seconds) * 1000 + 30_000))).toBeLessThan(5_000);

      // A second "host" whose clock is an hour fast must not take the lease as expired.
      const other = new RedisQueue(REDIS_URL, { prefix: PREFIX, name: q.name });
      made.push(other);
      expect(await other.readBatch(5)).toEqual([]);

      expect(await q.fail(m1!.id, 'boom')).toBe(true);
      const [failed] = await q.failed();
      expect(Math.abs(failed!.failedAt.getTime() - realNow)).toBeLessThan(5_000);
    });
  });

  describe('blocking waits', () => {
    it('waitForMessages resolves soon after a write from another instance', async () => {
      const consumer = blockingQueue({ blockTimeoutMs: 20_000 });
      const producer = queue({ name: consumer.name });
      await consumer.open();
      expect(consumer.blocking).toBe(true);
      const started = Date.now();
      const waiting = consumer.waitForMessages(20_000, new AbortController().signal);
      await sleep(200);
      await producer.write('wake up');
      await waiting;
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await consumer.read())?.data).toBe('wake up');
    });

    it('waitForMessages resolves after the timeout when nothing is written', async () => {
      const consumer = blockingQueue();
      await consumer.open();
      const started = Date.now();
      await consumer.waitForMessages(300, new AbortController().signal);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(await consumer.read()).toBeNull();
    });

    it('never waits longer than blockTimeoutMs in one call', async () => {
      const consumer = blockingQueue({ blockTimeoutMs: 200 });
      await consumer.open();
      const started = Date.now();
      await consumer.waitForMessages(60_000, new AbortController().signal);
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it('an abort ends the wait at once, and the next wait still works', async () => {
      const consumer = blockingQueue({ blockTimeoutMs: 30_000 });
      const producer = queue({ name: consumer.name });
      await consumer.open();
      const controller = new AbortController();
      const started = Date.now();
      const waiting = consumer.waitForMessages(30_000, controller.signal);
      await sleep(100);
      controller.abort();
      await waiting;
      expect(Date.now() - started).toBeLessThan(1_500);

      const aborted = new AbortController();
      aborted.abort();
      await consumer.waitForMessages(30_000, aborted.signal); // already aborted: returns at once

      const next = consumer.waitForMessages(30_000, new AbortController().signal);
      await sleep(100);
      await producer.write('after abort');
      await next;
      expect((await consumer.read())?.data).toBe('after abort');
    });

    it('a reader that leaves messages behind passes the wake-up on to another blocked consumer', async () => {
      const first = blockingQueue({ blockTimeoutMs: 20_000 });
      const second = blockingQueue({ name: first.name, blockTimeoutMs: 20_000 });
      const producer = queue({ name: first.name });
      await Promise.all([first.open(), second.open()]);
      const woken: string[] = [];
      const waitFirst = first.waitForMessages(20_000, new AbortController().signal).then(() => woken.push('first'));
      const waitSecond = second.waitForMessages(20_000, new AbortController().signal).then(() => woken.push('second'));
      await sleep(200);
      await producer.writeBatch(['1', '2', '3', '4']);
      // Whoever wakes takes one message; the other must wake too without a new write.
      await Promise.race([waitFirst, waitSecond]);
      const winner = woken[0] === 'first' ? first : second;
      expect(await winner.readBatch(1)).toHaveLength(1);
      const started = Date.now();
      await Promise.all([waitFirst, waitSecond]);
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    it('close() during a wait settles it', async () => {
      const consumer = blockingQueue({ blockTimeoutMs: 1_000 });
      await consumer.open();
      const waiting = consumer.waitForMessages(1_000, new AbortController().signal);
      await sleep(50);
      await consumer.close();
      await expect(waiting).resolves.toBeUndefined();
      await consumer.waitForMessages(1_000, new AbortController().signal);
    });
  });

  describe('job lifecycle on Redis', () => {
    const key = (q: RedisQueue, role: string) => `${PREFIX}:{${q.name}}:${role}`;

    async function serverNow(): Promise<number> {
      const [seconds, micros] = await raw.time();
      return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    }

    afterEach(() => {
      vi.restoreAllMocks();
    });

    it('judges runAt and result expiry by the Redis clock, not this process clock', async () => {
      const q = queue();
      const realNow = Date.now();
      vi.spyOn(Date, 'now').mockReturnValue(realNow + 3_600_000); // this host is an hour fast
      await q.write('ten minutes ahead', { runAt: realNow + 600_000 });
      await q.setResults([{ jobId: 'j', record: 'r', ttlMs: 60_000 }]);
      vi.spyOn(Date, 'now').mockReturnValue(realNow - 3_600_000); // now an hour slow
      await q.write('ten minutes ago', { runAt: realNow - 600_000 });
      expect(await q.stats()).toEqual({ ready: 1, leased: 0, failed: 0, delayed: 1 });
      expect((await q.read())?.data).toBe('ten minutes ago');
      expect(await q.promoteDue()).toBe(0);
      expect(await q.getResult('j')).toBe('r');
      const expiry = Number(await raw.zscore(key(q, 'resexp'), 'j'));
      expect(Math.abs(expiry - ((await serverNow()) + 60_000))).toBeLessThan(5_000);
    });

    it('a delayed write sends no wake-up; promoteDue sends one only when it moved something', async () => {
      const q = queue();
      const runAt = (await serverNow()) + 300;
      await q.writeBatch(['a', 'b'], { runAt });
      expect(await raw.llen(key(q, 'wake'))).toBe(0);
      expect(await q.promoteDue()).toBe(0);
      expect(await raw.llen(key(q, 'wake'))).toBe(0);
      await sleep(500);
      expect(await q.promoteDue()).toBe(2);
      expect(await raw.llen(key(q, 'wake'))).toBe(1);
    });

    it(`promoteDue moves more than one script call's worth (${PROMOTE_PER_CALL}), in id order`, async () => {
      const q = queue();
      const count = PROMOTE_PER_CALL * 2 + 500;
      const datas = Array.from({ length: count }, (_, i) => `d${i}`);
      await q.writeBatch(datas, { runAt: (await serverNow()) + 300 });
      const readyId = await q.write('written last, ready at once');
      await sleep(500);
      expect(await q.promoteDue()).toBe(count);
      expect(await q.stats()).toEqual({ ready: count + 1, leased: 0, failed: 0, delayed: 0 });
      const read = await q.readBatch(count + 1);
      expect(read.map((m) => m.data)).toEqual([...datas, 'written last, ready at once']);
      expect(read.at(-1)?.id).toBe(readyId);
    });

    it('setResults purges expired records a bounded number at a time, and getResult never returns one', async () => {
      const q = queue();
      const stale = RESULTS_PURGED_PER_SET + 50;
      await q.setResults(Array.from({ length: stale }, (_, i) => ({ jobId: `old-${i}`, record: `r${i}`, ttlMs: 100 })));
      await sleep(300);
      expect(await q.getResult('old-0')).toBeNull();
      expect(await raw.hlen(key(q, 'results'))).toBe(stale); // not purged by reads
      await q.setResults([{ jobId: 'new-1', record: 'fresh', ttlMs: 60_000 }]);
      expect(await raw.hlen(key(q, 'results'))).toBe(stale - RESULTS_PURGED_PER_SET + 1);
      await q.setResults([{ jobId: 'new-2', record: 'fresh too', ttlMs: 60_000 }]);
      expect((await raw.hkeys(key(q, 'results'))).sort()).toEqual(['new-1', 'new-2']);
      expect(await raw.zcard(key(q, 'resexp'))).toBe(2);
      expect(await q.getResult('new-1')).toBe('fresh');
    });

    it('stores a batch of result records larger than one script call (8 MiB) byte-exact', async () => {
      const q = queue();
      const body = 'x'.repeat(3 * 1024 * 1024);
      // A lone surrogate doubles the stored size (UTF-16): 6 MiB + 3 MiB does not fit one call.
      const records = [
        { jobId: 'a', record: `\ud800 ${body}`, ttlMs: 60_000 },
        { jobId: 'b', record: `plain ${body}`, ttlMs: 60_000 },
      ];
      await q.setResults(records);
      for (const { jobId, record } of records) expect((await q.getResult(jobId)) === record, jobId).toBe(true);
      expect(await q.getResult('c')).toBeNull();
    });

    it('rejects bad lifecycle arguments with ConfigError before touching the server', async () => {
      const q = queue();
      const id = await q.write('x');
      await expect(q.write('y', { runAt: Number.NaN })).rejects.toBeInstanceOf(ConfigError);
      await expect(q.writeBatch(['y'], { runAt: '2030-01-01' as unknown as number })).rejects.toBeInstanceOf(ConfigError);
      await expect(q.retry(id, 'y', Number.POSITIVE_INFINITY)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.retry(id, 7 as unknown as string, 0)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.remove(5 as unknown as string)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.setResults([{ jobId: 'j', record: 'r', ttlMs: 0 }])).rejects.toBeInstanceOf(ConfigError);
      await expect(q.setResults([{ jobId: '', record: 'r', ttlMs: 1000 }])).rejects.toBeInstanceOf(ConfigError);
      await expect(q.setResults([{ jobId: 'j', record: null as unknown as string, ttlMs: 1000 }])).rejects.toBeInstanceOf(ConfigError);
      await expect(q.getResult('')).rejects.toBeInstanceOf(ConfigError);
      expect(await q.stats()).toEqual({ ready: 1, leased: 0, failed: 0, delayed: 0 });
      expect(await raw.exists(key(q, 'results'))).toBe(0);
    });
  });

  describe('flow control on Redis', () => {
    const conc = (limit: number, key = 'k') => ({ concurrency: { key, limit } });

    async function readStart(q: RedisQueue, gates: Parameters<RedisQueue['startGated']>[1]): Promise<string> {
      const [m] = await q.readBatch(1);
      return (await q.startGated(m!.id, gates)).decision;
    }

    it('keeps rate logs under the hash tag, lets an idle one expire, and flush deletes every gate key', async () => {
      const q = queue();
      await q.writeBatch(['a', 'b', 'c']);
      const [a, b, c] = await q.readBatch(3);
      expect((await q.startGated(a!.id, { rate: { key: 'r{x}', limit: 5, perMs: 60_000 } })).decision).toBe('started');
      expect((await q.startGated(b!.id, { rate: { key: '日本', limit: 5, perMs: 60_000 } })).decision).toBe('started');
      expect((await q.startGated(c!.id, conc(1))).decision).toBe('started');
      const [parked] = await (await q.write('p'), q.readBatch(1));
      expect((await q.startGated(parked!.id, conc(1))).decision).toBe('deferred');
      const log = `${PREFIX}:{${q.name}}:rate:r{x}`;
      expect(await raw.zcard(log)).toBe(1);
      const ttl = await raw.pttl(log);
      expect(ttl).toBeGreaterThan(50_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
      for (const key of await keysOf(`${PREFIX}:{${q.name}}`)) expect(key.match(/\{[^}]*\}/)?.[0]).toBe(`{${q.name}}`);
      await q.flush();
      expect(await keysOf(`${PREFIX}:{${q.name}}`)).toEqual([`${PREFIX}:{${q.name}}:seq`]);

      const short = queue();
      const [m] = await (await short.write('m'), short.readBatch(1));
      expect((await short.startGated(m!.id, { rate: { key: 'r', limit: 1, perMs: 100 } })).decision).toBe('started');
      await sleep(250);
      expect(await raw.exists(`${PREFIX}:{${short.name}}:rate:r`)).toBe(0);
    });

    it('a read or reclaim that requeues a lapsed holder wakes one parked message at once', async () => {
      const a = queue({ leaseMs: 600 });
      const b = queue({ name: a.name });
      await a.write('held');
      expect(await readStart(a, conc(1))).toBe('started');
      await b.writeBatch(['p1', 'p2']);
      const parked = await b.readBatch(2);
      expect((await Promise.all(parked.map((m) => b.startGated(m.id, conc(1))))).map((o) => o.decision)).toEqual(['deferred', 'deferred']);
      await sleep(800);
      expect(await b.reclaim()).toBe(1);
      expect(await b.stats()).toEqual({ ready: 2, leased: 0, failed: 0, delayed: 1 });
      expect((await b.readBatch(10)).map((m) => [m.data, m.attempt])).toEqual([
        ['held', 2],
        ['p1', 1],
      ]);
    });

    it('revoking a lapsed holder frees its slot and wakes a parked message', async () => {
      const a = queue({ leaseMs: 600 });
      const b = queue({ name: a.name });
      const id = await a.write('held');
      expect(await readStart(a, conc(1))).toBe('started');
      await b.write('parked');
      expect(await readStart(b, conc(1))).toBe('deferred');
      await sleep(800);
      expect(await b.remove(id)).toBe(true);
      expect((await b.readBatch(10)).map((m) => m.data)).toEqual(['parked']);
    });

    it('keeps keys that share a prefix apart, and wakes across the whole priority range in read order', async () => {
      const q = queue();
      let holder = '';
      // Under one key each: "k" must not count the holders of "k\u0001x" or "k0".
      for (const key of ['k\u0001x', 'k0', 'k']) {
        await q.write(key);
        const [m] = await q.readBatch(1);
        expect((await q.startGated(m!.id, conc(1, key))).decision).toBe('started');
        holder = m!.id;
      }
      await q.write('low', { priority: -1000 });
      await q.write('mid');
      await q.write('high', { priority: 1000 });
      for (const m of await q.readBatch(3)) expect((await q.startGated(m.id, conc(1))).decision).toBe('deferred');
      const order: string[] = [];
      for (let i = 0; i < 3; i++) {
        await q.ackBatch([holder]);
        const [next] = await q.readBatch(10);
        order.push(next!.data);
        expect((await q.startGated(next!.id, conc(1))).decision).toBe('started');
        holder = next!.id;
      }
      expect(order).toEqual(['high', 'mid', 'low']);
    });
  });

  describe('URLs and secrets', () => {
    it('accepts the seed form host:port:db and selects that database', async () => {
      const q = queue({}, '127.0.0.1:6379:3');
      await q.write('in db 3');
      await raw.select(3);
      expect(await raw.zcard(`${PREFIX}:{${q.name}}:ready`)).toBe(1);
      await raw.select(0);
      expect(await raw.exists(`${PREFIX}:{${q.name}}:ready`)).toBe(0);
      expect((await q.read())?.data).toBe('in db 3');
    });

    it('takes the key prefix from ?prefix= unless the options give one', async () => {
      const fromUrl = queue({ prefix: undefined }, `${REDIS_URL}?prefix=${PREFIX}`);
      expect(fromUrl.prefix).toBe(PREFIX);
      await fromUrl.write('x');
      expect(await raw.zcard(`${PREFIX}:{${fromUrl.name}}:ready`)).toBe(1);
      expect(queue({ prefix: 'code-wins' }, `${REDIS_URL}?prefix=url`).prefix).toBe('code-wins');
      expect(() => new RedisQueue(`${REDIS_URL}?prefix=a{b}`)).toThrow(ConfigError);
    });

    it('ignores ?blocking=… (it picks the class, not a connection option)', async () => {
      const q = queue({}, `${REDIS_URL}?blocking=true`);
      await q.write('x');
      expect(await q.length()).toBe(1);
    });

    it.each([
      ['redis://127.0.0.1:6379/zero', 'database number'],
      ['redis://127.0.0.1:6379/0?family=6', 'unsupported parameter'],
      [`redis://:${SECRET}@127.0.0.1:6379/0?timeout=1`, 'unsupported parameter'],
      ['postgres://127.0.0.1/test', 'not a Redis URL'],
      ['redis://127.0.0.1:6379/0?blocking=maybe', 'blocking'],
    ])('refuses %s with a ConfigError', (url, reason) => {
      let caught: unknown;
      try {
        new RedisQueue(url);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toContain(reason);
      expect((caught as Error).message).not.toContain(SECRET);
    });

    it('keeps the password out of errors, warnings, util.inspect and JSON', async () => {
      const warnings: string[] = [];
      // The shared server has no such user: the handshake fails with WRONGPASS.
      const q = queue({ onWarning: (m) => warnings.push(m) }, `redis://nobody:${SECRET}@127.0.0.1:6379/0`);
      const error = await q.open().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(QueueConnectionError);
      const shown = `${(error as Error).message} ${String((error as Error).cause)} ${(error as Error).stack}`;
      expect(shown).toMatch(/WRONGPASS|closed|connect/i);
      expect(shown).not.toContain(SECRET);
      expect(shown).toContain('nobody:***@');
      await expect(q.write('x')).rejects.toBeInstanceOf(QueueConnectionError);
      expect(warnings.length).toBeGreaterThan(0);
      for (const warning of warnings) expect(warning).not.toContain(SECRET);

      for (const text of [inspect(q), inspect(q, { showHidden: true, depth: 10 }), JSON.stringify(q), String(q)]) {
        expect(text).not.toContain(SECRET);
      }
      expect(inspect(q)).toContain('nobody:***@127.0.0.1:6379/0');
      expect(JSON.parse(JSON.stringify(q))).toMatchObject({ type: 'RedisQueue', name: q.name, url: 'redis://nobody:***@127.0.0.1:6379/0' });
    });

    it('keeps the password out of a refused-connection error, and fails fast', async () => {
      const port = await freePort();
      const warnings: string[] = [];
      const q = queue({ onWarning: (m) => warnings.push(m) }, `redis://:${SECRET}@127.0.0.1:${port}/0`);
      const started = Date.now();
      const error = await q.write('x').then(
        () => null,
        (e: unknown) => e,
      );
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(error).toBeInstanceOf(QueueConnectionError);
      expect((error as Error).message).toContain(`redis://:***@127.0.0.1:${port}/0`);
      expect(`${(error as Error).message} ${(error as Error).stack} ${warnings.join(' ')}`).not.toContain(SECRET);
      expect(warnings.join(' ')).toContain('cannot connect');
    });
  });

  describe.skipIf(!hasRedisServer)('maxmemory-policy', () => {
    let server: RedisServer;
    beforeAll(async () => {
      server = await RedisServer.start({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    });
    afterAll(async () => {
      await server?.dispose();
    });

    it('warns once on open when the server may evict keys', async () => {
      const warnings: string[] = [];
      const q = queue({ onWarning: (m) => warnings.push(m) }, server.url);
      await q.open();
      await q.open();
      await q.write('x');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('allkeys-lru');
      expect(warnings[0]).toContain('noeviction');
    });

    it('warns lazily when used without open()', async () => {
      const warnings: string[] = [];
      const q = queue({ onWarning: (m) => warnings.push(m) }, server.url);
      await q.write('x');
      await vi.waitFor(() => expect(warnings).toHaveLength(1));
    });

    it('does not warn under noeviction', async () => {
      const warnings: string[] = [];
      const q = queue({ onWarning: (m) => warnings.push(m) });
      await q.open();
      await q.write('x');
      expect(warnings).toEqual([]);
    });
  });
});
