/**
 * The consumer registry: a running consumer is listed by its queue (every
 * backend stores the heartbeat; the contract tests cover that), with its pid,
 * queues, supervisor state and each worker's state, and it leaves the list
 * when it stops; on every backend, its reader's and scheduler's states, and
 * the jobs it settled reach the backend's throughput history.
 */
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createConsumer, createQueue, MemoryQueue, queueCommand, registry } from '../../src/index.js';
import { CONSUMER_TTL_MS } from '../../src/backends/control.js';
import { POSTGRES_URL, REDIS_URL } from '../helpers/services.js';
import { backendServers } from '../helpers/servers.js';
import { describeMessage, type ConsumerState } from '../../src/observability/registry.js';
import { encodeMessage } from '../../src/codec/message.js';
import { uniqueName } from '../helpers/services.js';

describe('the consumer registry', () => {
  it('a running consumer is listed with its workers; it leaves the list when it stops', async () => {
    const queue = new MemoryQueue(uniqueName('registry'), { name: 'reg' });
    const watcher = new MemoryQueue(queue.store, { name: 'reg' });
    const consumer = createConsumer({ queue, workers: 3, periodic: false, logger: pino({ level: 'silent' }) });
    await consumer.start();
    await expect.poll(async () => (await watcher.consumers()).length, { timeout: 5_000 }).toBe(1);
    const [entry] = await watcher.consumers();
    expect(entry!.id).toBe(queue.owner);
    const state = JSON.parse(entry!.state) as ConsumerState;
    expect(state).toMatchObject({ pid: process.pid, queues: ['reg'], supervisor: 'running', restarts: 0, failures: 0 });
    expect(state.workers.map((w) => [w.id, w.state, w.job])).toEqual([
      ['worker-1', 'idle', null],
      ['worker-2', 'idle', null],
      ['worker-3', 'idle', null],
    ]);
    await consumer.stop();
    expect(await watcher.consumers()).toEqual([]);
  });

  it("a worker running a share of a backlog is shown with the job its runner runs now, not the share's first", async () => {
    const queue = new MemoryQueue(uniqueName('registry'), { name: 'share' });
    const watcher = new MemoryQueue(queue.store, { name: 'share' });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const step = queueCommand({ name: uniqueName('share-step'), queue }, async (n: number) => {
      if (n === 2) await held;
    });
    try {
      const jobs = [await step(1), await step(2), await step(3)];
      const consumer = createConsumer({ queue, workers: 1, prefetch: 10, periodic: false, logger: pino({ level: 'silent' }) });
      await consumer.start();
      try {
        // The first beat may come before the runner reached job 2; a later one (every 5 s) shows it.
        await expect
          .poll(async () => (JSON.parse((await watcher.consumers())[0]?.state ?? '{"workers":[]}') as ConsumerState).workers[0]?.running?.id, {
            timeout: 12_000,
            interval: 200,
          })
          .toBe(jobs[1]!.id);
      } finally {
        release();
        await consumer.stop();
      }
    } finally {
      registry.unregister(step.commandName);
    }
  });
});

describe('a running job as the registry shows it (describeMessage)', () => {
  it('sanitises the arguments and redacts secrets; a message over 64 KiB shows its id and command only', () => {
    const small = encodeMessage('resize', [{ password: 'pw', url: 'redis://u:pw@h/0', data: 'abc', size: 3 }], { id: 'job-small' });
    expect(describeMessage('7', small.data)).toEqual({
      message: '7',
      id: 'job-small',
      command: 'resize',
      args: [{ password: '[redacted]', url: 'redis://u:***@h/0', data: '[payload: 3 bytes]', size: 3 }],
    });
    const big = encodeMessage('resize', ['x'.repeat(70_000)], { id: 'job-big' });
    expect(describeMessage('8', big.data)).toEqual({
      message: '8',
      id: 'job-big',
      command: 'resize',
      args: `[arguments: ${big.data.length} characters, not shown]`,
    });
    const wide = encodeMessage('resize', ['y'.repeat(3_000)], { id: 'job-wide' });
    expect(describeMessage('9', wide.data).args).toMatch(/^\[arguments: \d+ characters, not shown\]$/);
    expect(describeMessage('10', 'not an envelope')).toEqual({ message: '10', id: null, command: null, args: null });
  });
});

/** Moves consumer `id`'s last heartbeat 20 s into the past, behind the backend's back. */
async function age(kind: string, url: string, id: string): Promise<void> {
  if (kind === 'SQLite') {
    const db = new Database(url.slice('sqlite:'.length));
    db.prepare('UPDATE taskmill_consumers SET seen_at = seen_at - 20000 WHERE id = ?').run(id);
    db.close();
  } else if (kind === 'PostgreSQL') {
    const schema = new URL(url).searchParams.get('schema')!;
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    await client.query(`UPDATE ${schema}.consumers SET seen_at = seen_at - interval '20 seconds' WHERE id = $1`, [id]);
    await client.end();
  } else {
    const prefix = new URL(url).searchParams.get('prefix')!;
    const redis = new Redis(REDIS_URL);
    await redis.zincrby(`${prefix}:{default}:consumerseen`, -20_000, id);
    redis.disconnect();
  }
}

const SERVERS = backendServers('registry');

describe.each(SERVERS)('the consumer registry on $kind', (server) => {
  it.skipIf(!server.available)(`a consumer not seen for ${CONSUMER_TTL_MS / 1000} s is no longer listed`, async () => {
    const url = server.url();
    const queue = createQueue(url);
    try {
      if (server.kind === 'memory') vi.useFakeTimers({ toFake: ['Date'] });
      await queue.heartbeat('stale', '{}');
      await queue.heartbeat('fresh', '{}');
      if (server.kind === 'memory') vi.setSystemTime(Date.now() + CONSUMER_TTL_MS + 1);
      else await age(server.kind, url, 'stale');
      if (server.kind === 'memory') await queue.heartbeat('fresh', '{}');
      expect((await queue.consumers()).map((c) => c.id)).toEqual(['fresh']);
    } finally {
      vi.useRealTimers();
      await queue.close();
      await server.dispose(url);
    }
  });

  it.skipIf(!server.available)(
    'a consumer reports its reader and scheduler states and, when it stops, the jobs it settled per minute',
    { timeout: 30_000 },
    async () => {
      const url = server.url();
      const queue = createQueue(url);
      const watcher = createQueue(url);
      const name = uniqueName('settled');
      const cmd = queueCommand({ name, queue, retries: 0 }, (n: number) => {
        if (n === 0) throw new Error('zero');
        return n;
      });
      const consumer = createConsumer({ queue, workers: 2, periodic: false, logger: pino({ level: 'silent' }), pollDelayMs: 10, maxPollDelayMs: 50 });
      try {
        await consumer.start();
        const jobs = await Promise.all([0, 1, 2, 3, 4].map((n) => cmd(n)));
        await Promise.allSettled(jobs.map((j) => j.result({ timeout: 15_000 })));
        await expect.poll(async () => (await watcher.consumers()).length, { timeout: 10_000 }).toBe(1);
        const state = JSON.parse((await watcher.consumers())[0]!.state) as ConsumerState;
        expect(state.reader).toMatch(/^(waiting|reading|empty|blocked|backingOff)$/);
        expect(state.scheduler).toMatch(/^(firing|waiting)$/);
        await consumer.stop();
        const buckets = await watcher.throughput();
        expect(buckets.reduce((n, b) => n + b.completed, 0)).toBe(4);
        expect(buckets.reduce((n, b) => n + b.failed, 0)).toBe(1);
      } finally {
        await consumer.stop();
        registry.unregister(name);
        await watcher.close();
        await queue.close();
        await server.dispose(url);
      }
    },
  );
});
