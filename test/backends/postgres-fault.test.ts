/**
 * DatabaseQueue under faults, against a PostgreSQL this file starts itself
 * (never the shared server): the server stopped for 10 s under a read loop,
 * the LISTEN backend terminated, the server down at open, delayed jobs and
 * results across a restart, and a consumer process killed with SIGKILL mid-way.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseQueue, type DatabaseQueueOptions } from '../../src/backends/postgres/queue.js';
import { QueueConnectionError } from '../../src/shared/errors.js';
import { canStartPostgres, startPgServer, type PgServer } from '../helpers/pg-server.js';
import { uniqueName } from '../helpers/services.js';

const PASSWORD = 'fault-Pw-4242';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.skipIf(!canStartPostgres)('DatabaseQueue faults (private server)', () => {
  let server: PgServer;
  const opened: DatabaseQueue[] = [];
  const warnings: string[] = [];

  function queue(options: DatabaseQueueOptions = {}): DatabaseQueue {
    const created = new DatabaseQueue(server.url, { onWarning: (m) => warnings.push(m), connectTimeoutMs: 2000, ...options });
    opened.push(created);
    return created;
  }

  async function sql<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  function expectClean(error: unknown): void {
    expect(error).toBeInstanceOf(QueueConnectionError);
    const message = (error as Error).message;
    expect(message).not.toContain(PASSWORD);
    expect(String((error as Error).cause)).not.toContain(PASSWORD);
  }

  beforeAll(async () => {
    server = await startPgServer({ password: PASSWORD });
  }, 60_000);

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((q) => q.close()));
  });

  afterAll(async () => {
    await server?.destroy();
  }, 60_000);

  it('a read loop survives the server stopped for 10 s, then finishes, and no acked message comes back', async () => {
    const name = uniqueName();
    const producer = queue({ name, listen: false });
    const consumer = queue({ name, listen: true, leaseMs: 1500, pollIntervalMs: 500 });
    const total = 300;
    const written = await producer.writeBatch(Array.from({ length: total }, (_, i) => `job-${i}`));

    const acked = new Set<string>();
    const redelivered: string[] = [];
    const errors: unknown[] = [];

    const loop = (async () => {
      while (acked.size < total) {
        try {
          const batch = await consumer.readBatch(5);
          for (const m of batch) if (acked.has(m.id)) redelivered.push(m.id);
          if (batch.length === 0) {
            await consumer.waitForMessages(500, new AbortController().signal);
            continue;
          }
          const ids = batch.map((m) => m.id);
          const refused = new Set(await consumer.ackBatch(ids));
          for (const id of ids) if (!refused.has(id)) acked.add(id);
          await sleep(15);
        } catch (error) {
          errors.push(error);
          await sleep(100);
        }
      }
    })();

    await until('a third acked', async () => acked.size >= total / 3);
    await server.stop('fast');
    const downErrors = errors.length;
    await expect(producer.write('while down')).rejects.toBeInstanceOf(QueueConnectionError);
    await sleep(10_000);
    expect(errors.length).toBeGreaterThan(downErrors);
    const ackedWhileDown = acked.size;
    await server.start();

    await loop;
    expect(ackedWhileDown).toBeLessThan(total); // the outage really hit mid-way
    expect(new Set(acked)).toEqual(new Set(written));
    expect(redelivered).toEqual([]);
    for (const error of errors) expectClean(error);
    expect(warnings.join('\n')).not.toContain(PASSWORD);

    expect(await consumer.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    const id = await producer.write('after restart');
    expect((await consumer.read())?.id).toBe(id);
  }, 40_000);

  it('terminating only the LISTEN backend: a later write still wakes the waiter, and LISTEN comes back', async () => {
    const name = uniqueName();
    const pollIntervalMs = 6000;
    const consumer = queue({ name, listen: true, pollIntervalMs });
    const producer = queue({ name, listen: false });
    await consumer.open();
    await producer.open();
    const listenPid = async () => (await sql<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN %' AND state = 'idle'`))[0]?.pid;
    const before = await until('the LISTEN backend', listenPid);
    expect(await consumer.readBatch(1)).toEqual([]);

    await sql(`SELECT pg_terminate_backend($1)`, [before]);
    const started = Date.now();
    const woke = consumer.waitForMessages(60_000, new AbortController().signal);
    await producer.write('after terminate');
    await woke;
    expect(Date.now() - started).toBeLessThan(pollIntervalMs + 2000);
    expect((await consumer.read())?.data).toBe('after terminate');

    const after = await until('LISTEN again', async () => {
      const pid = await listenPid();
      return pid !== undefined && pid !== before ? pid : null;
    });
    expect(after).not.toBe(before);
    expect(consumer.listening).toBe(true);

    // The new LISTEN works: a NOTIFY wakes the waiter long before the poll interval.
    await consumer.waitForMessages(0, new AbortController().signal); // consume the reconnect's "poll once"
    expect(await consumer.readBatch(1)).toEqual([]);
    const again = Date.now();
    const wokeAgain = consumer.waitForMessages(60_000, new AbortController().signal);
    await producer.write('notified');
    await wokeAgain;
    expect(Date.now() - again).toBeLessThan(pollIntervalMs - 2000);
    expect(warnings.some((w) => /LISTEN connection lost/.test(w))).toBe(true);
  }, 30_000);

  it('server down at open: a clear QueueConnectionError at once; once it is up the same queue works', async () => {
    await server.stop('fast');
    const name = uniqueName();
    const q = queue({ name, listen: true });
    const started = Date.now();
    const error = await q.open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expectClean(error);
    expect((error as Error).message).toMatch(/ECONNREFUSED|connect/i);
    expect((error as Error).message).toContain(`postgres:***@127.0.0.1:${server.port}`);
    await expect(q.write('x')).rejects.toBeInstanceOf(QueueConnectionError);

    await server.start();
    const id = await q.write('x');
    expect((await q.read())?.id).toBe(id);
    await until('LISTEN up', async () => q.listening);
  }, 30_000);

  it('delayed messages, a delayed retry and results survive a server restart; lifecycle calls fail cleanly while it is down', async () => {
    const name = uniqueName();
    const q = queue({ name, listen: false });
    const soon = Date.now() + 1500;
    const delayed = await q.write('delayed', { runAt: soon });
    const retried = await q.write('first try');
    await q.read();
    expect(await q.retry(retried, 'second try', soon)).toBe(true);
    await q.setResults([{ jobId: 'job-1', record: 'result \u0000 kept', ttlMs: 600_000 }]);

    // 'fast', not 'immediate': this server runs with synchronous_commit off, so a crash may lose the last commits.
    await server.stop('fast');
    for (const call of [() => q.promoteDue(), () => q.getResult('job-1'), () => q.setResults([{ jobId: 'j', record: 'r', ttlMs: 1000 }])]) {
      const error = await call().then(
        () => null,
        (e: unknown) => e,
      );
      expectClean(error);
    }
    await expect(q.retry(retried, 'x', Date.now())).rejects.toBeInstanceOf(QueueConnectionError);
    await expect(q.remove(delayed)).rejects.toBeInstanceOf(QueueConnectionError);
    await server.start();

    expect(await until('the server back', () => q.stats())).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 2 });
    expect(await q.getResult('job-1')).toBe('result \u0000 kept');
    await sleep(Math.max(0, soon - Date.now()) + 200);
    expect(await q.promoteDue()).toBe(2);
    expect((await q.readBatch(5)).map((m) => [m.id, m.data, m.attempt])).toEqual([
      [delayed, 'delayed', 1],
      [retried, 'second try', 1],
    ]);
  }, 30_000);

  it('a wrong password is refused with a message that does not contain it', async () => {
    const wrong = 'Wr0ng-Secret-Pass';
    const q = new DatabaseQueue(server.urlWithPassword(wrong), { onWarning: () => {} });
    opened.push(q);
    const error = await q.open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(QueueConnectionError);
    expect((error as Error).message).toMatch(/password authentication failed/);
    expect(`${(error as Error).message} ${String((error as Error).cause)}`).not.toContain(wrong);

    // A driver message that echoes a part of the URL equal to the password is redacted too.
    const echo = new DatabaseQueue(`${server.url.replace(/\/postgres$/, `/${PASSWORD}`)}`, { onWarning: () => {} });
    opened.push(echo);
    const echoed = await echo.open().then(
      () => null,
      (e: unknown) => e,
    );
    expect((echoed as Error).message).toMatch(/database "\*\*\*" does not exist/);
    expect((echoed as Error).message).not.toContain(PASSWORD);
  });

  it('a consumer process killed with SIGKILL mid-way: every job completes, duplicates at most the jobs it had in flight', async () => {
    const name = uniqueName();
    const producer = queue({ name, listen: false });
    const total = 2000;
    const batch = 10;
    const written = await producer.writeBatch(Array.from({ length: total }, (_, i) => `job-${i}`));

    // The child leases batches, reports each id as started, acks, then reports them as done.
    const moduleUrl = pathToFileURL(path.join(repoRoot, 'src/backends/postgres/queue.ts')).href;
    const script = `
      const { DatabaseQueue } = await import(${JSON.stringify(moduleUrl)});
      const q = new DatabaseQueue(process.env.QUEUE_URL, { name: process.env.QUEUE_NAME, leaseMs: 3000, listen: false });
      for (;;) {
        const messages = await q.readBatch(${batch});
        if (messages.length === 0) { await new Promise((r) => setTimeout(r, 20)); continue; }
        process.stdout.write(messages.map((m) => 'start ' + m.id + '\\n').join(''));
        const refused = new Set(await q.ackBatch(messages.map((m) => m.id)));
        process.stdout.write(messages.filter((m) => !refused.has(m.id)).map((m) => 'done ' + m.id + '\\n').join(''));
      }`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repoRoot,
      env: { ...process.env, QUEUE_URL: server.url, QUEUE_NAME: name },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const started = new Set<string>();
    const done = new Set<string>();
    let pending = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const [kind, id] = line.split(' ');
        (kind === 'start' ? started : done).add(id!);
      }
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await until(`the child to finish ${total / 4} jobs (stderr: ${stderr})`, async () => done.size >= total / 4, 20_000);
      child.kill('SIGKILL');
      await exited;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    expect(done.size).toBeLessThan(total);
    const inFlight = [...started].filter((id) => !done.has(id));
    expect(inFlight.length).toBeLessThanOrEqual(batch);

    const restarted = queue({ name, listen: false });
    const ranByRestarted = new Set<string>();
    let ackedCameBack = 0;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const messages = await restarted.readBatch(100);
      if (messages.length === 0) {
        const { ready, leased } = await restarted.stats();
        if (ready === 0 && leased === 0) break;
        await sleep(100); // the dead child's leases have not expired yet
        continue;
      }
      for (const m of messages) {
        if (done.has(m.id)) ackedCameBack++;
        ranByRestarted.add(m.id);
      }
      expect(await restarted.ackBatch(messages.map((m) => m.id))).toEqual([]);
    }
    expect(await restarted.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    // Every job ran at least once. (The child may have been killed after its ack committed
    // but before it said so: those jobs are gone from the table, started and never re-run.)
    expect(new Set([...started, ...ranByRestarted])).toEqual(new Set(written));
    expect(ackedCameBack).toBe(0);
    // Only what the dead child had leased and not acked runs twice.
    const ranTwice = [...ranByRestarted].filter((id) => started.has(id));
    expect(ranTwice.length).toBeLessThanOrEqual(inFlight.length);
    expect(ranTwice.length).toBeLessThanOrEqual(batch);
  }, 45_000);
});
