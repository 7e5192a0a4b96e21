/**
 * Fault tests against a redis-server this file starts itself (free port,
 * temp dir, password, no persistence): restarts, a frozen server, a dead
 * server, and a consumer process killed with SIGKILL mid-way. They assert
 * that the client recovers and that nothing is lost — not durability across
 * server restarts (this server keeps nothing on disk).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { QueueMessage } from '../../src/backends/base.js';
import { RedisBlockingQueue, RedisQueue, type RedisQueueOptions } from '../../src/backends/redis/queue.js';
import { QueueConnectionError } from '../../src/shared/errors.js';
import { RedisServer, hasRedisServer } from '../helpers/redis-server.js';
import { uniqueName } from '../helpers/services.js';

const SECRET = 'fault-Pa55word';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe.skipIf(!hasRedisServer)('Redis faults (own redis-server)', () => {
  let server: RedisServer;
  const made: RedisQueue[] = [];
  const warnings: string[] = [];
  const stops: AbortController[] = [];

  function options(extra: RedisQueueOptions = {}): RedisQueueOptions {
    return { onWarning: (message) => warnings.push(message), ...extra };
  }

  function track<Q extends RedisQueue>(queue: Q): Q {
    made.push(queue);
    return queue;
  }

  /** Retries `fn` on QueueConnectionError until it succeeds or `withinMs` passes. */
  async function retrying<T>(fn: () => Promise<T>, withinMs = 10_000): Promise<T> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      try {
        return await fn();
      } catch (error) {
        if (!(error instanceof QueueConnectionError) || Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
  }

  /**
   * What the consumer's reader does: read; when empty, block; on a
   * QueueConnectionError back off and go on. Collects every message's data.
   */
  function readLoop(queue: RedisBlockingQueue, seen: string[]): { errors: number } {
    const stop = new AbortController();
    stops.push(stop);
    const state = { errors: 0 };
    void (async () => {
      while (!stop.signal.aborted) {
        try {
          const batch: QueueMessage[] = await queue.readBatch(10);
          if (batch.length > 0) {
            seen.push(...batch.map((m) => m.data));
            await queue.ackBatch(batch.map((m) => m.id));
            continue;
          }
          await queue.waitForMessages(2_000, stop.signal);
        } catch (error) {
          if (!(error instanceof QueueConnectionError)) throw error;
          state.errors++;
          await sleep(200);
        }
      }
    })();
    return state;
  }

  async function until(condition: () => boolean, withinMs: number): Promise<void> {
    const deadline = Date.now() + withinMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`condition not met within ${withinMs} ms`);
      await sleep(50);
    }
  }

  beforeAll(async () => {
    server = await RedisServer.start({ password: SECRET });
  });

  afterEach(async () => {
    for (const stop of stops.splice(0)) stop.abort();
    await Promise.all(made.splice(0).map((queue) => queue.close()));
    server.resume();
    if (!server.running) await server.start();
    for (const warning of warnings.splice(0)) expect(warning).not.toContain(SECRET);
  });

  afterAll(async () => {
    await server?.dispose();
  });

  it('a blocked consumer survives a server restart and reads a new write within 10 s', async () => {
    const name = uniqueName('restart');
    const consumerWarnings: string[] = [];
    const consumer = track(new RedisBlockingQueue(server.url, { name, blockTimeoutMs: 2_000, onWarning: (m) => consumerWarnings.push(m) }));
    const producer = track(new RedisQueue(server.url, options({ name })));
    await consumer.open();
    const seen: string[] = [];
    const loop = readLoop(consumer, seen);
    await producer.write('before');
    await until(() => seen.includes('before'), 5_000);

    await sleep(100); // the loop is now blocked in waitForMessages
    await server.stop();
    await sleep(1_500); // down long enough for the loop to retry several times
    await server.start();
    await retrying(() => producer.write('after'));
    const writtenAt = Date.now();
    await until(() => seen.includes('after'), 10_000);
    expect(Date.now() - writtenAt).toBeLessThan(10_000);
    expect(loop.errors).toBeGreaterThan(0);
    // Once per outage, not once per retry.
    expect(consumerWarnings.filter((w) => w.includes('connection lost'))).toHaveLength(1);
    expect(consumerWarnings.filter((w) => w.includes('connection restored'))).toHaveLength(1);
    for (const warning of consumerWarnings) expect(warning).not.toContain(SECRET);
  });

  it('a blocked consumer survives an instant restart (kill -9 and start again)', async () => {
    const name = uniqueName('instant');
    const consumer = track(new RedisBlockingQueue(server.url, options({ name, blockTimeoutMs: 2_000 })));
    const producer = track(new RedisQueue(server.url, options({ name })));
    await consumer.open();
    const seen: string[] = [];
    readLoop(consumer, seen);
    await sleep(200);
    await server.restart();
    await retrying(() => producer.write('after'));
    const writtenAt = Date.now();
    await until(() => seen.includes('after'), 10_000);
    expect(Date.now() - writtenAt).toBeLessThan(10_000);
  });

  it('a frozen server (SIGSTOP for 3× the block timeout): the watchdog ends the wait, reads work after SIGCONT', async () => {
    const name = uniqueName('frozen');
    // The watchdog ends a wait commandTimeoutMs after its reply was due: 800 ms here.
    const consumer = track(new RedisBlockingQueue(server.url, options({ name, blockTimeoutMs: 500, commandTimeoutMs: 300 })));
    const producer = track(new RedisQueue(server.url, options({ name })));
    await consumer.open();
    await producer.open();

    const waiting = consumer.waitForMessages(500, new AbortController().signal);
    server.pause();
    let settled = false;
    void waiting.then(() => (settled = true));
    await sleep(1_500);
    // The server is still frozen: only the watchdog can have ended the wait.
    expect(settled).toBe(true);
    expect(warnings.some((w) => w.includes('got no reply in time'))).toBe(true);
    // Waits made while frozen end too (watchdog again), without an unhandled error.
    await consumer.waitForMessages(500, new AbortController().signal);
    server.resume();

    const seen: string[] = [];
    readLoop(consumer, seen);
    await retrying(() => producer.write('thawed'));
    await until(() => seen.includes('thawed'), 10_000);
  });

  it('a write while the server is down rejects fast with a redacted QueueConnectionError, then recovers', async () => {
    const name = uniqueName('down');
    const connected = track(new RedisQueue(server.url, options({ name })));
    await connected.open();
    await server.stop();
    const fresh = track(new RedisQueue(server.url, options({ name })));

    for (const producer of [connected, fresh]) {
      const started = Date.now();
      const error = await producer.write('lost?').then(
        () => null,
        (e: unknown) => e,
      );
      expect(Date.now() - started).toBeLessThan(2_500);
      expect(error).toBeInstanceOf(QueueConnectionError);
      const text = `${(error as Error).message} ${(error as Error).stack} ${String((error as Error).cause)}`;
      expect(text).toContain(':***@127.0.0.1');
      expect(text).not.toContain(SECRET);
    }
    expect(warnings.filter((w) => w.includes(`"${name}"`) && /connection lost|cannot connect/.test(w)).length).toBeLessThanOrEqual(2);

    await server.start();
    const id = await retrying(() => connected.write('back'));
    expect(await retrying(() => fresh.read())).toEqual({ id, data: 'back', attempt: 1, delivery: expect.any(Number) });
  });

  it('a consumer process killed with SIGKILL mid-way loses nothing; duplicates ≤ its messages in flight', async () => {
    const name = uniqueName('kill9');
    const total = 2_000;
    const batch = 20;
    const producer = track(new RedisQueue(server.url, options({ name })));
    await producer.writeBatch(Array.from({ length: total }, (_, i) => `job-${i}`));

    const dir = mkdtempSync(join(tmpdir(), 'taskmill-kill9-'));
    const log = join(dir, 'ran.log');
    const moduleUrl = new URL('../../src/backends/redis/queue.ts', import.meta.url).href;
    // The child "runs" each job by appending it to the log, then acks the batch.
    const code = `
      import { appendFileSync } from 'node:fs';
      const { RedisQueue } = await import(${JSON.stringify(moduleUrl)});
      const queue = new RedisQueue(${JSON.stringify(server.url)}, { name: ${JSON.stringify(name)}, leaseMs: 1000, onWarning() {} });
      for (;;) {
        const messages = await queue.readBatch(${batch});
        if (messages.length === 0) break;
        for (const m of messages) appendFileSync(${JSON.stringify(log)}, m.data + '\\n');
        await queue.ackBatch(messages.map((m) => m.id));
      }
      await queue.close();
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (status) => resolve(status)));
    const ran = () => {
      try {
        return readFileSync(log, 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    };
    try {
      await until(() => ran().length >= total / 4, 20_000);
      child.kill('SIGKILL');
      await exited;
      const beforeKill = ran();
      expect(beforeKill.length).toBeLessThan(total);

      // A new consumer finishes the queue; the dead one's leases come back after they expire.
      const survivor = track(new RedisQueue(server.url, options({ name, leaseMs: 1000 })));
      const afterKill: string[] = [];
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const messages = await survivor.readBatch(100);
        if (messages.length === 0) {
          const { ready, leased } = await survivor.stats();
          if (ready === 0 && leased === 0) break;
          await sleep(100);
          continue;
        }
        afterKill.push(...messages.map((m) => m.data));
        expect(await survivor.ackBatch(messages.map((m) => m.id))).toEqual([]);
      }
      const all = [...beforeKill, ...afterKill];
      expect(new Set(all).size).toBe(total);
      expect(all.length - total).toBeLessThanOrEqual(batch);
      expect(await survivor.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close() during a blocking wait leaves nothing that keeps a stopping process alive', async () => {
    const moduleUrl = new URL('../../src/backends/redis/queue.ts', import.meta.url).href;
    // In a process of its own: what is left after close() is exactly what would delay its exit.
    const code = `
      const { RedisBlockingQueue } = await import(${JSON.stringify(moduleUrl)});
      const queue = new RedisBlockingQueue(${JSON.stringify(server.url)}, { name: ${JSON.stringify(uniqueName('exit'))}, blockTimeoutMs: 5000, onWarning() {} });
      await queue.open();
      const waiting = queue.waitForMessages(5000, new AbortController().signal);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await queue.close();
      await waiting;
      await new Promise((resolve) => setTimeout(resolve, 300));
      console.log(JSON.stringify(process.getActiveResourcesInfo()));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await new Promise((resolve) => child.once('exit', resolve));
    const left = JSON.parse(out.trim().split('\n').at(-1)!) as string[];
    // No socket and no timer (ioredis's graceful close waits up to 2 s on a socket the server keeps blocked).
    expect(left.filter((resource) => resource !== 'PipeWrap' && resource !== 'TTYWrap')).toEqual([]);
  });

  it('keeps working after the server forgets its scripts (SCRIPT FLUSH, a failover to a fresh replica)', async () => {
    const queue = track(new RedisQueue(server.url, options({ name: uniqueName('noscript') })));
    const id = await queue.write('a');
    const admin = new Redis(server.url, { lazyConnect: true });
    try {
      await admin.script('FLUSH');
    } finally {
      admin.disconnect();
    }
    expect(await queue.read()).toEqual({ id, data: 'a', attempt: 1, delivery: expect.any(Number) });
    expect(await queue.ackBatch([id])).toEqual([]);
  });

  describe('a full server (maxmemory, noeviction)', () => {
    let full: RedisServer;
    beforeAll(async () => {
      full = await RedisServer.start({ args: ['--maxmemory', '3mb', '--maxmemory-policy', 'noeviction'] });
    });
    afterAll(async () => {
      await full?.dispose();
    });

    it('refuses writes with a QueueConnectionError, while consumers still drain and free it', async () => {
      const name = uniqueName('oom');
      const queue = track(new RedisQueue(full.url, options({ name })));
      const payload = 'x'.repeat(10_000);
      let refused: unknown = null;
      let written = 0;
      for (let i = 0; i < 2_000 && refused === null; i++) {
        try {
          await queue.writeBatch(Array.from({ length: 10 }, () => payload));
          written += 10;
        } catch (error) {
          refused = error;
        }
      }
      expect(refused).toBeInstanceOf(QueueConnectionError);
      expect((refused as Error).message).toMatch(/OOM/);
      expect(written).toBeGreaterThan(0);

      // Reads lease, acks and fails delete: none of them is refused for memory.
      let drained = 0;
      for (;;) {
        const batch = await queue.readBatch(50);
        if (batch.length === 0) break;
        const [first, ...rest] = batch;
        expect(await queue.fail(first!.id, 'kept in the failed store')).toBe(true);
        expect(await queue.ackBatch(rest.map((m) => m.id))).toEqual([]);
        drained += batch.length;
      }
      expect(drained).toBe(written);
      expect(await queue.purgeFailed()).toBeGreaterThan(0);
      expect(typeof (await queue.write('room again'))).toBe('string');
    });

    it('still reads, fails, retries, promotes and removes jobs when full (each script frees before it adds)', async () => {
      const queue = track(new RedisQueue(full.url, options({ name: uniqueName('oom-lifecycle') })));
      const [later, now, revoked] = await Promise.all(['a', 'b', 'c'].map((data) => queue.write(data)));
      await queue.readBatch(3);
      const unread = await queue.write('d');
      const admin = new Redis(full.url, { lazyConnect: true });
      try {
        // Far below what the server already uses: every memory-growing command is refused from here on.
        await admin.config('SET', 'maxmemory', '1');
        await expect(queue.write('refused')).rejects.toThrow(/OOM/);
        expect(await queue.retry(later!, 'a2', Date.now() + 60_000)).toBe(true);
        expect(await queue.retry(now!, 'b2', 0)).toBe(true);
        expect(await queue.remove(now!)).toBe(true);
        expect(await queue.retry(revoked!, 'c2', Date.now() + 200)).toBe(true);
        await sleep(400);
        expect(await queue.promoteDue()).toBe(1);
        expect(await queue.stats()).toEqual({ ready: 2, leased: 0, failed: 0, delayed: 1 });
        expect(await queue.remove(revoked!)).toBe(true);
        const [read] = await queue.readBatch(5);
        expect(read?.id).toBe(unread);
        expect(await queue.fail(unread, 'failed while full')).toBe(true);
        await expect(queue.setResults([{ jobId: 'j', record: 'r', ttlMs: 1000 }])).rejects.toThrow(/OOM/);
      } finally {
        await admin.config('SET', 'maxmemory', '3mb');
        admin.disconnect();
        await queue.flush();
      }
    });
  });
});
