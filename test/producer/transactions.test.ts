/**
 * `cmd.schedule({ tx }, ...args)`: a job written in the application's own
 * transaction exists if and only if that transaction commits — on the real
 * PostgreSQL (a pg PoolClient, and the same through Drizzle) and on a SQLite
 * file (the app's better-sqlite3 Database). Bad `tx` values are refused with
 * nothing written. Real consumer processes run the committed jobs in
 * test/e2e/transactions.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DatabaseQueue, MemoryQueue, SqliteQueue, queueCommand, registry, type BaseQueue } from '../../src/index.js';
import { POSTGRES_URL, dropPostgresSchema, hasPostgres, uniqueName } from '../helpers/services.js';

const defined: string[] = [];
function define(queue: BaseQueue, options: { unique?: boolean; priority?: number } = {}) {
  const cmd = queueCommand({ name: uniqueName('welcome'), queue, ...options }, (_user: number) => {});
  defined.push(cmd.commandName);
  return cmd;
}
const queues: BaseQueue[] = [];
afterEach(async () => {
  for (const name of defined.splice(0)) registry.unregister(name);
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

describe.skipIf(!hasPostgres)('schedule({ tx }) on PostgreSQL', () => {
  const url = `${POSTGRES_URL}?schema=${uniqueName('tx').replace(/-/g, '_')}`;
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 4 });
    await pool.query('CREATE TABLE IF NOT EXISTS tx_test_users (id serial PRIMARY KEY, name text)');
  });
  afterAll(async () => {
    await pool.end();
    await dropPostgresSchema(url);
  });
  const open = (listen = false) => {
    const queue = new DatabaseQueue(url, { name: uniqueName('q'), listen });
    queues.push(queue);
    return queue;
  };

  it('a committed job exists, and no other connection sees it before the commit; a rolled-back one never exists', async () => {
    const queue = open();
    const welcome = define(queue);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("INSERT INTO tx_test_users (name) VALUES ('ada')");
      const job = await welcome.schedule({ tx: client }, 1);
      expect(job.messageId).toMatch(/^\d+$/);
      expect((await queue.stats()).ready).toBe(0); // the queue's own pool: another connection
      await client.query('COMMIT');
      expect((await queue.stats()).ready).toBe(1);

      await client.query('BEGIN');
      await welcome.schedule({ tx: client }, 2);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const read = await queue.readBatch(10);
    expect(read).toHaveLength(1);
    expect(read[0]!.data).toContain('[1]');
  });

  it('wakes LISTENing consumers on the commit only', async () => {
    const writer = open();
    const listener = new DatabaseQueue(url, { name: writer.name, listen: true, pollIntervalMs: 30_000 });
    queues.push(listener);
    await listener.open();
    await listener.readBatch(1); // LISTEN is up, and nothing is pending
    const welcome = define(writer);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await welcome.schedule({ tx: client }, 3);
      let woken = false;
      const abort = new AbortController();
      const waiting = listener.waitForMessages(10_000, abort.signal).then(() => (woken = true));
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(woken).toBe(false);
      await client.query('COMMIT');
      await Promise.race([waiting, new Promise((resolve) => setTimeout(resolve, 3_000))]);
      expect(woken).toBe(true);
      abort.abort();
    } finally {
      client.release();
    }
  });

  it('unique, priority and delay work inside a transaction; a key taken by a rolled-back one is free again', async () => {
    const queue = open();
    const once = define(queue, { unique: true, priority: 5 });
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const a = await once.schedule({ tx: client }, 7);
      const b = await once.schedule({ tx: client }, 7);
      expect([a.duplicate, b.duplicate, b.id]).toEqual([false, true, a.id]);
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      const c = await once.schedule({ tx: client }, 7);
      await once.schedule({ tx: client, delay: 60_000, uniqueKey: 'later' }, 8);
      await client.query('COMMIT');
      expect(c.duplicate).toBe(false);
      expect(await queue.stats()).toEqual({ ready: 1, leased: 0, failed: 0, delayed: 1 });
    } finally {
      client.release();
    }
  });

  it('through Drizzle: the PoolClient the app began on, handed to drizzle() and to schedule({ tx })', async () => {
    const queue = open();
    const welcome = define(queue);
    for (const outcome of ['COMMIT', 'ROLLBACK'] as const) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const db = drizzle(client);
        await db.execute(sql`INSERT INTO tx_test_users (name) VALUES ('grace')`);
        await welcome.schedule({ tx: client }, outcome === 'COMMIT' ? 10 : 11);
        await client.query(outcome);
      } finally {
        client.release();
      }
    }
    const read = await queue.readBatch(10);
    expect(read.map((m) => m.data.includes('[10]'))).toEqual([true]);
  });

  it('refuses a Pool, a client outside a transaction, a failed transaction or a SQLite Database, naming it, and writes nothing', async () => {
    const queue = open();
    const welcome = define(queue);
    await expect(welcome.schedule({ tx: pool }, 1)).rejects.toThrow(/tx is a pg Pool/);
    const client = await pool.connect();
    try {
      await expect(welcome.schedule({ tx: client }, 1)).rejects.toThrow(/not inside a transaction \(run BEGIN on it first\); nothing was written/);
      await client.query('BEGIN');
      await client.query('SELECT 1/0').catch(() => {});
      await expect(welcome.schedule({ tx: client }, 1)).rejects.toThrow(/transaction has failed/);
      // pg may not yet have read the ReadyForQuery that says 'E' when the caught error settles;
      // the server's own refusal (25P02) then gives the same message.
      const stale = { query: client.query.bind(client), getTransactionStatus: () => 'T' };
      await expect(welcome.schedule({ tx: stale }, 1)).rejects.toThrow(/tx's transaction has failed \(a statement in it raised an error\); roll it back/);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const db = new Database(':memory:');
    await expect(welcome.schedule({ tx: db }, 1)).rejects.toThrow(ConfigError);
    await expect(welcome.schedule({ tx: 'client' }, 1)).rejects.toThrow(/tx must be the pg Client or PoolClient/);
    db.close();
    expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
  });
});

describe('schedule({ tx }) on SQLite', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'taskmill-tx-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const fresh = () => {
    const file = path.join(dir, `app-${++n}.sqlite`);
    const queue = new SqliteQueue(file, { name: uniqueName('q') });
    queues.push(queue);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT)');
    return { file, queue, db };
  };

  it('a job written in db.transaction() exists if and only if it commits; the queue does not see it before', async () => {
    const { queue, db } = fresh();
    const welcome = define(queue);
    let seenInside = -1;
    const signUp = db.transaction((name: string, fail: boolean) => {
      const id = Number(db.prepare('INSERT INTO users (name) VALUES (?)').run(name).lastInsertRowid);
      void welcome.schedule({ tx: db }, id); // written within this call: better-sqlite3 transactions are synchronous
      if (fail) throw new Error('rolled back');
    });
    await queue.open();
    signUp('ada', false);
    expect(() => signUp('bob', true)).toThrow('rolled back');
    const inside = db.transaction(() => {
      void welcome.schedule({ tx: db }, 99);
    });
    inside();
    // Before the commit of a transaction, the queue's own connection saw nothing of it.
    const probe = db.transaction(() => {
      void welcome.schedule({ tx: db }, 100);
      seenInside = new Database(db.name, { readonly: true }).prepare('SELECT count(*) AS n FROM taskmill_messages').pluck().get() as number;
    });
    probe();
    expect(seenInside).toBe(2); // ada's and 99's, committed; not 100's own
    const read = await queue.readBatch(10);
    expect(read.map((m) => JSON.parse(m.data).args[0])).toEqual([1, 99, 100]);
    db.close();
  });

  it('creates the schema in the transaction on a file the queue never opened; unique keys roll back with it', async () => {
    const { queue, db } = fresh();
    const once = define(queue, { unique: true });
    const results: boolean[] = [];
    const twice = db.transaction((fail: boolean) => {
      void once.schedule({ tx: db }, 1).then((job) => results.push(job.duplicate));
      void once.schedule({ tx: db }, 1).then((job) => results.push(job.duplicate));
      if (fail) throw new Error('no');
    });
    expect(() => twice(true)).toThrow('no');
    twice(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(results).toEqual([false, true, false, true]);
    expect((await queue.stats()).ready).toBe(1);
    db.close();
  });

  it('refuses a Database outside a transaction, on another file, in memory, or a pg client, and writes nothing', async () => {
    const { queue, db } = fresh();
    const welcome = define(queue);
    await queue.open();
    await expect(welcome.schedule({ tx: db }, 1)).rejects.toThrow(/not inside db\.transaction\(\); nothing was written/);
    // The call inside the transaction: a transaction function may not return its promise.
    const within = (tx: Database.Database) => {
      let pending: Promise<unknown> = Promise.resolve();
      tx.transaction(() => {
        pending = welcome.schedule({ tx }, 1);
      })();
      return pending;
    };
    const other = new Database(path.join(dir, 'other.sqlite'));
    await expect(within(other)).rejects.toThrow(/another file/);
    const memory = new Database(':memory:');
    await expect(within(memory)).rejects.toThrow(/in-memory database/);
    await expect(welcome.schedule({ tx: { query: () => {} } }, 1)).rejects.toThrow(/tx must be your better-sqlite3 Database/);
    other.close();
    memory.close();
    expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    db.close();
  });

  it('a backend without transactions (memory, Redis) refuses tx', async () => {
    const queue = new MemoryQueue(uniqueName('store'));
    queues.push(queue);
    const welcome = define(queue);
    await expect(welcome.schedule({ tx: {} }, 1)).rejects.toThrow(/MemoryQueue has no transactions to join/);
  });
});
