/**
 * Real `taskmill consume` processes on PostgreSQL through a real PgBouncer in
 * transaction mode (test/helpers/pgbouncer.ts), each test in its own schema:
 *
 * - `?pooler=transaction&listenUrl=<direct>`: LISTEN on the direct URL, so an
 *   idle consumer starts a job enqueued by another process at once;
 * - `?pooler=transaction` alone: the consumer polls, and runs every job
 *   written by a producer process once.
 *
 * With TASKMILL_SLOW_TESTS=1 (.ci/run) the whole real-process suite of the
 * other backends (test/fixtures/backends-e2e.ts) runs through the pooler too.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseQueue, createQueue, type BaseQueue } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { defineBackendTests } from '../fixtures/backends-e2e.js';
import { hasPgbouncer, startPgbouncer, type Pgbouncer } from '../helpers/pgbouncer.js';
import { ROOT, spawnCli, spawnTsx, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { POSTGRES_URL, dropPostgresSchema, hasPostgres, uniqueName } from '../helpers/services.js';

const SLOW = Boolean(process.env.TASKMILL_SLOW_TESTS);
const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'backends-commands.ts');
const PRODUCER = path.join(ROOT, 'test', 'fixtures', 'backends-producer.ts');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe.skipIf(!hasPostgres || !hasPgbouncer)('taskmill consume on PostgreSQL through PgBouncer (pool_mode = transaction), real processes', () => {
  let bouncer: Pgbouncer;
  let dir = '';
  const urls: string[] = [];
  const children: Spawned[] = [];
  const queues: BaseQueue[] = [];

  beforeAll(async () => {
    bouncer = await startPgbouncer();
    dir = tempDir('taskmill-pgbouncer-e2e-');
  });
  afterAll(async () => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    await Promise.allSettled(queues.map((q) => q.close()));
    await bouncer?.stop();
    // The schema names are the same on the direct URL: drop them there.
    await Promise.allSettled(urls.map((url) => dropPostgresSchema(url)));
  }, 30_000);

  /** A fresh schema through the pooler; `listen`: LISTEN on the direct URL. */
  const freshUrl = (listen: boolean) => {
    const schema = uniqueName('pgb').replace(/-/g, '_');
    const url = `${bouncer.url}?schema=${schema}&pooler=transaction${listen ? `&listenUrl=${encodeURIComponent(POSTGRES_URL)}` : ''}`;
    urls.push(url);
    return url;
  };
  const spawned = (s: Spawned) => {
    children.push(s);
    return s;
  };
  const openQueue = (url: string) => {
    const queue = createQueue(url, { onWarning: () => {} });
    queues.push(queue);
    return queue;
  };

  it('with listenUrl: an idle consumer starts each job enqueued through the pooler by another process within 1 s', { timeout: 60_000 }, async () => {
    const url = freshUrl(true);
    const recordFile = path.join(dir, 'listen-records.txt');
    // Reader polls of 5-10 s, the backend's own re-check every 2 s: starts within 1 s are the notifications' doing.
    const consumer = spawned(
      spawnCli(['consume', '-t', '2', '-n', '-d', '5', '-m', '10', COMMANDS], { env: { TASKMILL_QUEUE: url, RECORD_FILE: recordFile } }),
    );
    await waitFor('consumer running', () => consumer.stdout().includes('consumer running'), 30_000);
    const queue = openQueue(url) as DatabaseQueue;
    expect(queue.pooler).toBe('transaction');
    expect(queue.listen).toBe(true);

    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      await sleep(800 + Math.random() * 700); // the consumer is idle in its wait again
      const label = `wake-${i}`;
      const enqueuedAt = Date.now();
      await queue.write(encodeMessage('stamp', [label]).data);
      const line = await waitFor(`job ${label} to start`, () => lines(recordFile).find((l) => l.startsWith(`${label} `)), 15_000, 10);
      latencies.push(Number(line.split(' ')[1]) - enqueuedAt);
    }
    console.info(`[e2e] PgBouncer + listenUrl wake-up latencies (ms): ${latencies.join(', ')}`);
    for (const ms of latencies) expect(ms).toBeLessThan(1000);

    consumer.child.kill('SIGTERM');
    expect(await consumer.exited, consumer.stderr()).toBe(0);
  });

  it('without listenUrl: the consumer polls through the pooler and runs each of 500 jobs from a producer process once', { timeout: 90_000 }, async () => {
    const url = freshUrl(false);
    const recordFile = path.join(dir, 'poll-records.txt');
    const env = { TASKMILL_QUEUE: url, RECORD_FILE: recordFile };
    const consumer = spawned(spawnCli(['consume', '-t', '4', '-n', '-d', '0.05', '-m', '0.2', COMMANDS], { env }));
    await waitFor('consumer running', () => consumer.stdout().includes('consumer running'), 30_000);
    const queue = openQueue(url) as DatabaseQueue;
    expect(queue.listen).toBe(false);
    expect(queue.blocking).toBe(false);

    const total = 500;
    const producer = spawned(spawnTsx([PRODUCER, String(total), 'commands'], { env }));
    expect(await producer.exited, producer.stderr()).toBe(0);
    await waitFor(`${total} records and an empty queue`, async () => lines(recordFile).length >= total && (await queue.stats()).ready === 0, 60_000, 200);
    await sleep(300); // a job run twice would show by now
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited, consumer.stderr()).toBe(0);
    const done = lines(recordFile).map((line) => Number(line.split(' ')[0]));
    expect(done).toHaveLength(total);
    expect(new Set(done).size).toBe(total);
    expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, failed: 0 });
  });

  describe.skipIf(!SLOW)('the real-process suite of every backend, through the pooler, polling (TASKMILL_SLOW_TESTS=1)', () => {
    defineBackendTests({
      // Fewer than the direct run's 10,000: the same paths, a third of the time added to CI.
      jobs: 3_000,
      backlog: 8_000,
      producer: 'batch',
      freshUrl: () => freshUrl(false),
      dispose: async () => {}, // the outer afterAll drops every schema, after the pooler is gone
    });
  });
});
