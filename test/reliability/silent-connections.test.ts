/**
 * Issue 20, item 1: a consumer whose connections go silent — the path drops
 * them with no FIN and no RST, so no reply ever comes — notices within a
 * stated bound, replaces them and finishes the work; as it does after a reset,
 * and at a slow trickle. Added latency under the deadline replaces nothing.
 *
 * The fault is in a TCP proxy of our own (test/helpers/fault-proxy.ts) between
 * an in-process consumer and the shared servers, which are never stopped: a
 * silenced connection stays open and swallows everything, while a new
 * connection through the same proxy passes. The producer writes straight to
 * the server. Deadlines are short here (DEADLINE_MS) so the suite stays quick;
 * the bounds are the ones docs/RELIABILITY.md states, in those terms.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createConsumer, type BaseQueue, type Consumer } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { PostgresQueue } from '../../src/backends/postgres/queue.js';
import { watchEveryMs } from '../../src/backends/postgres/deadline.js';
import { RedisBlockingQueue, RedisQueue } from '../../src/backends/redis/queue.js';
import { deleteRedisPrefix } from '../fixtures/backends-e2e.js';
import { capturedLogger, registryOf } from '../fixtures/cli-consumer-kit.js';
import { FaultProxy, type ProxiedConnection } from '../helpers/fault-proxy.js';
import { waitFor } from '../helpers/processes.js';
import { POSTGRES_URL, REDIS_URL, dropPostgresSchema, hasPostgres, hasRedis, uniqueName } from '../helpers/services.js';

/** commandTimeoutMs / queryTimeoutMs of the consumer's queue. */
const DEADLINE_MS = 1000;
/** RedisBlockingQueue's blockTimeoutMs; its watchdog ends a wait commandTimeoutMs after its reply was due. */
const BLOCK_MS = 1000;
/** PostgreSQL: the longest wait without a notification (the reader's poll while idle). */
const POLL_MS = 500;
const LEASE_MS = 8000;
/** connectTimeoutMs: how long a connection attempt into a silent path may hang. */
const CONNECT_MS = 2000;
/** A loaded 2-core box: timers late, servers slow. Added to every stated bound. */
const SLACK_MS = 3000;
const JOBS = 150;

interface Backend {
  name: string;
  available: boolean;
  freshUrl(): string;
  /** The consumer's queue, through the proxy. */
  open(url: string, deadlineMs: number, onWarning: (message: string) => void): BaseQueue;
  /** The producer's queue, straight to the server. */
  direct(url: string): BaseQueue;
  dispose(url: string): Promise<void>;
  /** The stated detection bound for a connection in use at the fault (docs/RELIABILITY.md), in these tests' settings. */
  boundMs: number;
}

const redisUrl = () => `${REDIS_URL}?prefix=${uniqueName('silent')}`;
type Warn = (message: string) => void;
const redisOptions = (deadlineMs: number, onWarning: Warn) => ({
  leaseMs: LEASE_MS,
  connectTimeoutMs: CONNECT_MS,
  commandTimeoutMs: deadlineMs,
  blockTimeoutMs: BLOCK_MS,
  onWarning,
});
const postgresOptions = (deadlineMs: number, onWarning: Warn) => ({
  leaseMs: LEASE_MS,
  connectTimeoutMs: CONNECT_MS,
  queryTimeoutMs: deadlineMs,
  pollIntervalMs: POLL_MS,
  onWarning,
});

const BACKENDS: Backend[] = [
  {
    name: 'Redis (polling)',
    available: hasRedis,
    freshUrl: redisUrl,
    open: (url, deadlineMs, onWarning) => new RedisQueue(url, redisOptions(deadlineMs, onWarning)),
    direct: (url) => new RedisQueue(url),
    dispose: deleteRedisPrefix,
    // The command connection: its next command's deadline.
    boundMs: DEADLINE_MS,
  },
  {
    name: 'Redis (blocking)',
    available: hasRedis,
    freshUrl: redisUrl,
    open: (url, deadlineMs, onWarning) => new RedisBlockingQueue(url, redisOptions(deadlineMs, onWarning)),
    direct: (url) => new RedisQueue(url),
    dispose: deleteRedisPrefix,
    // The blocking connection: its watchdog (its wait + the deadline); then the command connection's deadline.
    boundMs: BLOCK_MS + 2 * DEADLINE_MS,
  },
  {
    name: 'PostgreSQL',
    available: hasPostgres,
    freshUrl: () => `${POSTGRES_URL}?schema=${uniqueName('silent').replace(/-/g, '_')}`,
    open: (url, deadlineMs, onWarning) => new PostgresQueue(url, postgresOptions(deadlineMs, onWarning)),
    direct: (url) => new PostgresQueue(url),
    dispose: dropPostgresSchema,
    // LISTEN: pinged every queryTimeoutMs, each ping with that deadline; the pool: one deadline after a poll,
    // found late by the watch within watchEveryMs.
    boundMs: Math.max(2 * DEADLINE_MS, POLL_MS + DEADLINE_MS + watchEveryMs(DEADLINE_MS)),
  },
];

interface Run {
  id: number;
  at: number;
}

interface Setup {
  proxy: FaultProxy;
  direct: BaseQueue;
  queue: BaseQueue;
  consumer: Consumer;
  runs: Run[];
  warnings: string[];
  enqueue(from: number, count: number): Promise<void>;
  distinct(): number;
  duplicates(): number;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function setUp(backend: Backend, deadlineMs = DEADLINE_MS): Promise<Setup> {
  const url = backend.freshUrl();
  const target = new URL(url);
  const proxy = await FaultProxy.start(target.hostname, Number(target.port));
  cleanups.push(() => proxy.stop());
  cleanups.push(() => backend.dispose(url));
  const direct = backend.direct(url);
  await direct.open();
  cleanups.push(() => direct.close());
  const warnings: string[] = [];
  const queue = backend.open(proxy.url(url), deadlineMs, (message) => warnings.push(message));
  cleanups.push(() => queue.close());
  const runs: Run[] = [];
  const registry = registryOf({
    work: async (id) => {
      runs.push({ id: id as number, at: Date.now() });
      await new Promise((resolve) => setTimeout(resolve, 10));
    },
  });
  const consumer = createConsumer({ queue, registry, logger: capturedLogger().logger, workers: 4, pollDelayMs: 50, maxPollDelayMs: 200 });
  cleanups.push(async () => {
    proxy.set({ kind: 'pass' }, { newConnections: true });
    await consumer.stop({ timeout: 2000 });
  });
  await consumer.start();
  const distinct = () => new Set(runs.map((r) => r.id)).size;
  return {
    proxy,
    direct,
    queue,
    consumer,
    runs,
    warnings,
    enqueue: async (from, count) => {
      await direct.writeBatch(Array.from({ length: count }, (_, i) => encodeMessage('work', [from + i]).data));
    },
    distinct,
    duplicates: () => runs.length - distinct(),
  };
}

/** Every job ran, and the queue holds nothing (no lease left behind). */
async function allDone(s: Setup, jobs: number, withinMs = 60_000): Promise<number> {
  await waitFor(
    `all ${jobs} jobs done`,
    async () => s.distinct() >= jobs && (await s.direct.stats()).leased === 0 && (await s.direct.stats()).ready === 0,
    withinMs,
    50,
  );
  return Date.now();
}

/** A fault mid-run: `jobs` enqueued, the fault once a third ran; returns when it struck and what the consumer held then. */
async function faultMidRun(s: Setup, fault: () => ProxiedConnection[]): Promise<{ at: number; hit: ProxiedConnection[]; leased: number }> {
  await s.enqueue(0, JOBS);
  await waitFor('a third of the jobs ran', () => s.distinct() >= JOBS / 3, 30_000, 5);
  const before = (await s.direct.stats()).leased;
  const at = Date.now();
  const hit = fault();
  // The consumer's acks and extends are swallowed from here on: what the server shows leased is what may run twice.
  const after = (await s.direct.stats()).leased;
  return { at, hit, leased: Math.max(before, after) };
}

describe.each(BACKENDS)('$name', (backend) => {
  describe.skipIf(!backend.available)('through a fault proxy', () => {
    it('silence mid-run: every silenced connection is closed within the bound, replaced, and every job completes; duplicates ≤ leased at the fault', async () => {
      const s = await setUp(backend);
      const { at, hit, leased } = await faultMidRun(s, () => s.proxy.set({ kind: 'silence' }));
      expect(hit.length).toBeGreaterThan(0);
      const doneAt = await allDone(s, JOBS);
      // A connection nobody used while the backlog ran (the blocking one) is noticed on its next use, when the reader waits again.
      await waitFor('every silenced connection closed by the consumer', () => hit.every((c) => c.closedByClientAt !== undefined), backend.boundMs + SLACK_MS);
      const detected = hit.map((c) => c.closedByClientAt! - at);
      console.log(
        `${backend.name}: silence hit ${hit.length} connections; closed after ${detected.join(', ')} ms; done after ${doneAt - at} ms; leased ${leased}, duplicates ${s.duplicates()}`,
      );
      expect(Math.min(...detected)).toBeLessThanOrEqual(backend.boundMs + SLACK_MS);
      for (const c of hit) expect(c.closedByClientAt!).toBeLessThanOrEqual(Math.max(at, doneAt) + backend.boundMs + SLACK_MS);
      expect(s.proxy.openedAfter(at).length).toBeGreaterThan(0);
      expect(s.duplicates()).toBeLessThanOrEqual(leased);
    });

    it('silence while idle: the next job still runs, within the bound of the silence', async () => {
      const s = await setUp(backend);
      await s.enqueue(0, 4);
      await allDone(s, 4);
      await new Promise((resolve) => setTimeout(resolve, 300)); // idle: blocked, LISTENing, or polling
      const at = Date.now();
      const hit = s.proxy.set({ kind: 'silence' });
      expect(hit.length).toBeGreaterThan(0);
      await s.enqueue(4, 1);
      // The reader must notice its own connections are dead: the job's wake-up never reaches it.
      const doneAt = await allDone(s, 5, 30_000);
      await waitFor('every silenced connection closed by the consumer', () => hit.every((c) => c.closedByClientAt !== undefined), backend.boundMs + SLACK_MS);
      const detected = hit.map((c) => c.closedByClientAt! - at);
      console.log(`${backend.name}: idle silence hit ${hit.length} connections; closed after ${detected.join(', ')} ms; job done after ${doneAt - at} ms`);
      for (const ms of detected) expect(ms).toBeLessThanOrEqual(backend.boundMs + SLACK_MS);
      expect(doneAt - at).toBeLessThanOrEqual(backend.boundMs + DEADLINE_MS + SLACK_MS);
      expect(s.duplicates()).toBe(0);
      if (s.queue instanceof PostgresQueue) await waitFor('LISTENing again', () => (s.queue as PostgresQueue).listening, 5000);
    });

    it('a black hole for 3 s (new connections silent too), then a working path: the consumer resumes and every job completes; duplicates ≤ leased at the fault', async () => {
      const s = await setUp(backend);
      const { at, leased } = await faultMidRun(s, () => s.proxy.set({ kind: 'silence' }, { newConnections: true }));
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const restoredAt = Date.now();
      const tried = s.proxy.openedAfter(at).length;
      // Connections opened into the black hole stay there (a forgotten connection stays forgotten); new ones pass.
      s.proxy.setNew({ kind: 'pass' });
      const doneAt = await allDone(s, JOBS);
      console.log(
        `${backend.name}: black hole 3 s: ${tried} connections tried into it; done ${doneAt - restoredAt} ms after it cleared; leased ${leased}, duplicates ${s.duplicates()}`,
      );
      expect(tried).toBeGreaterThan(0); // it kept trying, and its attempts did not hang for good
      expect(s.proxy.openedAfter(restoredAt).length).toBeGreaterThan(0);
      // An attempt under way as the path cleared gives up after connectTimeoutMs at most; the next one works.
      expect(doneAt - restoredAt).toBeLessThanOrEqual(CONNECT_MS + DEADLINE_MS + SLACK_MS);
      expect(s.duplicates()).toBeLessThanOrEqual(leased);
    });

    it('reset mid-run (RST both ways): reconnects and every job completes; duplicates ≤ leased at the fault', async () => {
      const s = await setUp(backend);
      const { at, hit, leased } = await faultMidRun(s, () => s.proxy.reset());
      expect(hit.length).toBeGreaterThan(0);
      await allDone(s, JOBS);
      expect(s.proxy.openedAfter(at).length).toBeGreaterThan(0);
      expect(s.duplicates()).toBeLessThanOrEqual(leased);
    });

    it('a slow trickle mid-run: replies too slow for the deadline cost their connection; every job completes', async () => {
      const s = await setUp(backend);
      const { at, hit, leased } = await faultMidRun(s, () => s.proxy.set({ kind: 'trickle', bytes: 8, everyMs: 100 }));
      expect(hit.length).toBeGreaterThan(0);
      await allDone(s, JOBS);
      expect(hit.some((c) => c.closedByClientAt !== undefined)).toBe(true);
      expect(s.proxy.openedAfter(at).length).toBeGreaterThan(0);
      expect(s.duplicates()).toBeLessThanOrEqual(leased);
      // Bytes kept coming, so it was the command deadline, not "nothing received", that caught it.
      if (s.queue instanceof RedisQueue) expect(s.warnings.join('\n')).toMatch(/no reply within 1000 ms; replacing the connection/);
    });

    it('latency under the deadline (100 ms each way): work goes on, no connection is replaced, no job runs twice', async () => {
      // A 3 s deadline: 200 ms round trips stay well under it even on a loaded box.
      const s = await setUp(backend, 3000);
      await s.enqueue(0, 4);
      await allDone(s, 4);
      const at = Date.now();
      s.proxy.set({ kind: 'latency', ms: 100 }, { newConnections: true });
      await s.enqueue(4, 40);
      await allDone(s, 44);
      expect(s.duplicates()).toBe(0);
      expect(s.proxy.connections.filter((c) => c.closedByClientAt !== undefined && c.closedByClientAt > at)).toEqual([]);
      expect(s.warnings).toEqual([]);
    });
  });
});

describe.skipIf(!hasPostgres)('PostgreSQL pool', () => {
  it("a query that misses its deadline takes the pool's idle connections with it: the next call runs on new ones", async () => {
    const url = `${POSTGRES_URL}?schema=${uniqueName('silent').replace(/-/g, '_')}`;
    const proxy = await FaultProxy.start(new URL(url).hostname, Number(new URL(url).port));
    cleanups.push(() => proxy.stop());
    cleanups.push(() => dropPostgresSchema(url));
    const queue = new PostgresQueue(proxy.url(url), { queryTimeoutMs: DEADLINE_MS, listen: false, poolSize: 4, onWarning: () => {} });
    cleanups.push(() => queue.close());
    await queue.open();
    await Promise.all(Array.from({ length: 12 }, () => queue.stats())); // opens several pool connections
    const pooled = proxy.live();
    expect(pooled.length).toBeGreaterThan(1);
    const at = Date.now();
    proxy.set({ kind: 'silence' });
    await expect(queue.stats()).rejects.toThrow(/Query read timeout/);
    // Only one of them carried the query; the idle ones are closed with it, not one deadline each (nor at the 30 s idle timeout).
    const boundMs = DEADLINE_MS + watchEveryMs(DEADLINE_MS);
    await waitFor('every pooled connection closed', () => pooled.every((c) => c.closedByClientAt !== undefined), boundMs + SLACK_MS);
    for (const c of pooled) expect(c.closedByClientAt! - at).toBeLessThanOrEqual(boundMs + SLACK_MS);
    expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    expect(proxy.openedAfter(at).length).toBeGreaterThan(0);
  });
});

describe.skipIf(!hasPostgres)('PostgreSQL calls whose work grows with the data', () => {
  it('flush, purgeFailed, requeueFailed and writeBatch get the long deadline; the others queryTimeoutMs', async () => {
    const url = `${POSTGRES_URL}?schema=${uniqueName('silent').replace(/-/g, '_')}`;
    const proxy = await FaultProxy.start(new URL(url).hostname, Number(new URL(url).port));
    cleanups.push(() => proxy.stop());
    cleanups.push(() => dropPostgresSchema(url));
    const queue = new PostgresQueue(proxy.url(url), { queryTimeoutMs: 500, listen: false, onWarning: () => {} });
    cleanups.push(() => queue.close());
    await queue.open();
    // 300 ms each way: every round trip takes longer than the 500 ms deadline.
    proxy.set({ kind: 'latency', ms: 300 }, { newConnections: true });
    await expect(queue.stats()).rejects.toThrow(/Query read timeout/);
    await expect(queue.writeBatch(['a', 'b'])).resolves.toHaveLength(2);
    await expect(queue.requeueFailed()).resolves.toBe(0);
    await expect(queue.purgeFailed()).resolves.toBe(0);
    await expect(queue.flush()).resolves.toBeUndefined();
  });
});
