/**
 * The PostgreSQL backend through a real PgBouncer in transaction mode
 * (test/helpers/pgbouncer.ts, in front of the shared server): the whole
 * contract suite with `pooler: 'transaction'`, polling and (TASKMILL_SLOW_TESTS=1)
 * with LISTEN on a direct `listenUrl`; concurrent migrations and the
 * application's own transaction through the pooler; and the options'
 * validation and redaction.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseQueue, type DatabaseQueueOptions } from '../../src/backends/postgres/queue.js';
import { ConfigError } from '../../src/shared/errors.js';
import { runContractSuite } from '../../src/testing/index.js';
import { hasPgbouncer, startPgbouncer, type Pgbouncer } from '../helpers/pgbouncer.js';
import { POSTGRES_URL, hasPostgres, uniqueName } from '../helpers/services.js';

const SLOW = Boolean(process.env.TASKMILL_SLOW_TESTS);
const live = hasPostgres && hasPgbouncer;

function uniqueSchema(): string {
  return `b_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
}

async function dropSchemas(schemas: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

describe.skipIf(!live)('PostgreSQL through PgBouncer (pool_mode = transaction)', () => {
  let bouncer: Pgbouncer;
  const schemas: string[] = [];
  const opened: DatabaseQueue[] = [];

  beforeAll(async () => {
    bouncer = await startPgbouncer();
  });
  afterAll(async () => {
    await bouncer?.stop();
    await dropSchemas(schemas);
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((q) => q.close()));
  });

  function queue(options: DatabaseQueueOptions = {}): DatabaseQueue {
    const created = new DatabaseQueue(bouncer.url, { pooler: 'transaction', name: uniqueName(), onWarning: () => {}, ...options });
    opened.push(created);
    return created;
  }

  const contractTarget = (options: DatabaseQueueOptions) => {
    const schema = uniqueSchema();
    schemas.push(schema);
    return {
      create: (queueOptions: DatabaseQueueOptions) =>
        new DatabaseQueue(bouncer.url, { pooler: 'transaction', ...options, ...queueOptions, schema, onWarning: () => {} }),
    };
  };
  runContractSuite('DatabaseQueue via PgBouncer (pooler transaction, polling)', contractTarget({}));
  describe.skipIf(!SLOW)('(TASKMILL_SLOW_TESTS=1)', () => {
    runContractSuite('DatabaseQueue via PgBouncer (pooler transaction, LISTEN on listenUrl)', contractTarget({ listenUrl: POSTGRES_URL }));
  });

  it('the fixture pools by transaction: a named prepared statement does not survive from one statement to the next', async () => {
    // What the backend must never send behind this pooler: proves the pooler under test is the one that breaks it.
    // pg prepares a name once per client; two clients taking turns share server sessions (PgBouncer reuses the last
    // one released), so one of them soon finds the name already there, or missing.
    const clients = [new pg.Client({ connectionString: bouncer.url }), new pg.Client({ connectionString: bouncer.url })];
    const refused: string[] = [];
    try {
      for (const client of clients) await client.connect();
      for (let turn = 0; turn < 20 && refused.length === 0; turn++) {
        await clients[turn % 2]!.query({ name: 'taskmill_probe', text: 'SELECT $1::int AS n', values: [turn] }).catch((e: unknown) => refused.push(String(e)));
      }
    } finally {
      for (const client of clients) await client.end();
    }
    expect(refused[0]).toMatch(/prepared statement "taskmill_probe" (already exists|does not exist)/);
  });

  it('the fixture pools by transaction: a LISTEN through it hears no NOTIFY (why listen: true needs a listenUrl)', async () => {
    const listener = new pg.Client({ connectionString: bouncer.url });
    const notifier = new pg.Client({ connectionString: bouncer.url });
    const heard: string[] = [];
    try {
      await listener.connect();
      await notifier.connect();
      listener.on('notification', (message) => heard.push(message.channel));
      await listener.query('LISTEN taskmill_probe');
      await notifier.query(`SELECT pg_notify('taskmill_probe', 'x')`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await listener.query('SELECT 1'); // a notification queued for it would be delivered with this reply at the latest
    } finally {
      await Promise.allSettled([listener.end(), notifier.end()]);
    }
    expect(heard).toEqual([]);
  });

  it('behind the pooler without listenUrl it polls: listen off, not blocking, no LISTEN session', async () => {
    const q = queue({ schema: uniqueSchema() });
    schemas.push(q.schema);
    expect(q.pooler).toBe('transaction');
    expect(q.listen).toBe(false);
    expect(q.blocking).toBe(false);
    await q.open();
    expect(q.listening).toBe(false);
    await q.write('x');
    expect((await q.read())?.data).toBe('x');
  });

  it('with listenUrl it LISTENs there, and a write through the pooler wakes it well before the poll interval', async () => {
    const schema = uniqueSchema();
    schemas.push(schema);
    const name = uniqueName();
    const consumer = queue({ schema, name, listenUrl: POSTGRES_URL, pollIntervalMs: 20_000 });
    const producer = queue({ schema, name });
    expect(consumer.listen).toBe(true);
    expect(consumer.blocking).toBe(true);
    await consumer.open();
    expect(consumer.listening).toBe(true);
    expect(await consumer.readBatch(10)).toEqual([]);

    const started = Date.now();
    const woke = consumer.waitForMessages(20_000, new AbortController().signal);
    setTimeout(() => void producer.write('wake up'), 50);
    await woke;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await consumer.read())?.data).toBe('wake up');
  });

  it('eight queues migrating one fresh schema at once through the pooler all open, and the schema is made once', async () => {
    const schema = uniqueSchema();
    schemas.push(schema);
    const queues = Array.from({ length: 8 }, () => queue({ schema, poolSize: 1 }));
    await Promise.all(queues.map((q) => q.open()));
    await queues[0]!.write('after the migration');
    expect(await queues[7]!.length()).toBe(0); // another queue name: isolated, and the tables are there
    const direct = new pg.Client({ connectionString: POSTGRES_URL });
    await direct.connect();
    try {
      const { rows } = await direct.query<{ version: number }>(`SELECT version FROM ${pg.escapeIdentifier(schema)}.migrations ORDER BY version`);
      expect(rows.map((r) => r.version)).toEqual(rows.map((_, i) => i + 1));
    } finally {
      await direct.end();
    }
  });

  it("writeInTransaction on the application's client through the pooler: kept on COMMIT, gone on ROLLBACK", async () => {
    const q = queue({ schema: uniqueSchema() });
    schemas.push(q.schema);
    await q.open();
    const app = new pg.Pool({ connectionString: bouncer.url, max: 2 });
    try {
      for (const end of ['ROLLBACK', 'COMMIT']) {
        const client = await app.connect();
        try {
          await client.query('BEGIN');
          await q.writeInTransaction(client, `ended by ${end}`);
          // Another statement of the same transaction, then the end: the pooler keeps the session for it.
          await client.query('SELECT 1');
          await client.query(end);
        } finally {
          client.release();
        }
      }
      expect((await q.readBatch(10)).map((m) => m.data)).toEqual(['ended by COMMIT']);
    } finally {
      await app.end();
    }
  });
});

describe('PostgreSQL options: pooler and listenUrl', () => {
  const PG = 'postgres://app:hunter2-secret@127.0.0.1:1/db';
  const DIRECT = 'postgres://listener:p%40ss-listen@127.0.0.1:2/db';

  function refusal(make: () => unknown): Error {
    try {
      make();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return error as Error;
    }
    throw new Error('not refused');
  }

  it('pooler=transaction: listen is off unless a listenUrl is given, and listen: true without one is refused', () => {
    expect(new DatabaseQueue(`${PG}?pooler=transaction`).listen).toBe(false);
    expect(new DatabaseQueue(PG, { pooler: 'transaction' }).blocking).toBe(false);
    expect(new DatabaseQueue(PG).pooler).toBe('none');
    expect(new DatabaseQueue(PG).listen).toBe(true);
    expect(new DatabaseQueue(PG, { pooler: 'transaction', listenUrl: DIRECT }).listen).toBe(true);
    expect(new DatabaseQueue(PG, { pooler: 'transaction', listenUrl: DIRECT, listen: false }).listen).toBe(false);
    expect(refusal(() => new DatabaseQueue(PG, { pooler: 'transaction', listen: true })).message).toMatch(
      /^PostgresQueue: listen: true needs a session of its own.*add listenUrl/,
    );
    expect(refusal(() => new DatabaseQueue(`${PG}?pooler=transaction&listen=true`)).message).toMatch(/listen: true needs a session/);
  });

  it('takes pooler and listenUrl (percent-encoded) from the URL; options win', () => {
    const fromUrl = new DatabaseQueue(`${PG}?pooler=transaction&listenUrl=${encodeURIComponent(DIRECT)}&sslmode=disable`);
    expect(fromUrl.pooler).toBe('transaction');
    expect(fromUrl.listen).toBe(true);
    expect(fromUrl.redactedListenUrl).toBe('postgres://listener:***@127.0.0.1:2/db');
    expect(new DatabaseQueue(`${PG}?pooler=transaction`, { pooler: 'none' }).listen).toBe(true);
  });

  it('refuses a bad pooler or listenUrl naming it, never showing a password', () => {
    expect(refusal(() => new DatabaseQueue(PG, { pooler: 'session' as never })).message).toBe(
      'PostgresQueue: invalid pooler "session": must be one of none, transaction',
    );
    expect(refusal(() => new DatabaseQueue(`${PG}?pooler=yes`)).message).toMatch(/invalid pooler "yes"/);
    const refused = [
      refusal(() => new DatabaseQueue(PG, { listenUrl: 'mysql://listener:p%40ss-listen@h/db' })),
      refusal(() => new DatabaseQueue(PG, { listenUrl: 'listener:p%40ss-listen@h/db' })),
      refusal(() => new DatabaseQueue(`${PG}?listenUrl=${encodeURIComponent('redis://:p@ss-listen@h')}`)),
      refusal(() => new DatabaseQueue(PG, { listenUrl: `${DIRECT}?schema=other` })),
    ].map((e) => e.message);
    expect(refused[0]).toMatch(/^PostgresQueue: invalid listenUrl .*: must be a postgres:\/\/ URL$/);
    expect(refused[3]).toMatch(/listenUrl "postgres:\/\/listener:\*\*\*@127.0.0.1:2\/db\?schema=other" has taskmill's own parameters \(schema\)/);
    for (const message of refused) expect(message).not.toMatch(/p%40ss-listen|p@ss-listen|p%2540ss-listen|hunter2/);
  });

  it("the queue's URL, inspect and JSON show neither password, also when the listenUrl sits in the URL", async () => {
    const { inspect } = await import('node:util');
    const q = new DatabaseQueue(`${PG}?pooler=transaction&listenUrl=${encodeURIComponent(DIRECT)}`);
    const shown = `${q.redactedUrl} ${inspect(q)} ${JSON.stringify(q)}`;
    expect(shown).not.toMatch(/p%40ss-listen|p@ss-listen|p%2540ss-listen|hunter2/);
    expect(shown).toContain('pooler: "transaction"');
    expect(shown).toContain('postgres://listener:***@127.0.0.1:2/db');
  });
});
