import { inspect } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { ResultRecord, StartGates, WriteOptions } from '../../src/backends/base.js';
import { DatabaseQueue, SCHEMA_VERSION, type DatabaseQueueOptions } from '../../src/backends/postgres/queue.js';
import { migrate, statements } from '../../src/backends/postgres/schema.js';
import { ConfigError, QueueConnectionError } from '../../src/shared/errors.js';
import { hasPostgres, POSTGRES_URL, uniqueName } from '../helpers/services.js';
import { runContractSuite } from '../../src/testing/index.js';

/** A schema of its own per suite, so parallel files and suites never meet. */
function uniqueSchema(): string {
  return `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

function contractTarget(options: DatabaseQueueOptions) {
  const schema = uniqueSchema();
  return {
    create: (queueOptions: DatabaseQueueOptions) => new DatabaseQueue(POSTGRES_URL, { ...options, ...queueOptions, schema, onWarning: () => {} }),
    cleanup: () => dropSchema(schema),
  };
}

describe.skipIf(!hasPostgres)('DatabaseQueue against the shared server', () => {
  runContractSuite('DatabaseQueue (listen on)', contractTarget({ listen: true }));
  // As behind a transaction-mode pooler: no LISTEN, no named statements.
  runContractSuite('DatabaseQueue (listen off, no prepared statements)', contractTarget({ listen: false, preparedStatements: false }));
});

describe.skipIf(!hasPostgres)('DatabaseQueue: PostgreSQL specifics', () => {
  const schema = uniqueSchema();
  const extraSchemas: string[] = [];
  const opened: DatabaseQueue[] = [];
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  let adminConnected = false;

  function queue(options: DatabaseQueueOptions = {}, url = POSTGRES_URL): DatabaseQueue {
    const created = new DatabaseQueue(url, { schema, name: uniqueName(), onWarning: () => {}, ...options });
    opened.push(created);
    return created;
  }

  async function sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<R[]> {
    if (!adminConnected) {
      await admin.connect();
      adminConnected = true;
    }
    return (await admin.query<R>(text, values)).rows;
  }

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((q) => q.close()));
  });

  afterAll(async () => {
    for (const s of [schema, ...extraSchemas]) await dropSchema(s);
    if (adminConnected) await admin.end();
  });

  describe('schema and migrations', () => {
    it('creates exactly its tables in its own schema, recording the version', async () => {
      const own = uniqueSchema();
      extraSchemas.push(own);
      await queue({ schema: own }).open();
      const tables = await sql<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, [own]);
      expect(tables.map((t) => t.table_name)).toEqual([
        'cancels',
        'consumers',
        'event_seqs',
        'events',
        'failed',
        'jobs',
        'listeners',
        'migrations',
        'rate_log',
        'results',
        'slots',
        'throughput',
      ]);
      const versions = await sql<{ version: number }>(`SELECT version FROM ${pg.escapeIdentifier(own)}.migrations ORDER BY version`);
      expect(versions.map((v) => v.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    });

    it('concurrent first starts of many instances apply each migration once, and reopening changes nothing', async () => {
      const own = uniqueSchema();
      extraSchemas.push(own);
      const name = uniqueName();
      const queues = Array.from({ length: 6 }, () => queue({ schema: own, name }));
      await Promise.all(queues.map((q) => q.open()));
      const migrations = `${pg.escapeIdentifier(own)}.migrations`;
      const first = await sql<{ version: number; applied_at: Date }>(`SELECT version, applied_at FROM ${migrations} ORDER BY version`);
      expect(first.map((v) => v.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));

      await queues[0]!.write('survives a reopen');
      const again = queue({ schema: own, name });
      await again.open();
      await again.open();
      expect(await sql(`SELECT version, applied_at FROM ${migrations} ORDER BY version`)).toEqual(first);
      expect((await again.read())?.data).toBe('survives a reopen');
    });

    it('works in a schema a DBA created beforehand, next to the application own tables', async () => {
      const own = uniqueSchema();
      extraSchemas.push(own);
      const s = pg.escapeIdentifier(own);
      await sql(`CREATE SCHEMA ${s}`);
      await sql(`CREATE TABLE ${s}.app_orders (id serial PRIMARY KEY, note text)`);
      await sql(`INSERT INTO ${s}.app_orders (note) VALUES ('keep me')`);
      const q = queue({ schema: own });
      await q.write('x');
      expect((await q.read())?.data).toBe('x');
      expect(await sql(`SELECT note FROM ${s}.app_orders`)).toEqual([{ note: 'keep me' }]);
    });

    it('upgrades a schema of version 1 in place: its jobs, leases, failures and slots survive and the new features work', async () => {
      const own = uniqueSchema();
      extraSchemas.push(own);
      const s = pg.escapeIdentifier(own);
      const name = uniqueName();
      const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
      try {
        await migrate(pool, own, 1);
      } finally {
        await pool.end();
      }
      // What the version-1 code left behind: ready jobs, a live lease, a failure, a slot claim.
      const [ready1, ready2] = (
        await sql<{ id: string }>(`INSERT INTO ${s}.jobs (queue, data, data_utf16) VALUES ($1, 'old 1', NULL), ($1, NULL, $2) RETURNING id`, [
          name,
          Buffer.from('old \u0000 2', 'utf16le'),
        ])
      ).map((r) => r.id);
      await sql(`INSERT INTO ${s}.jobs (queue, data, attempt, owner, lease_until) VALUES ($1, 'leased', 1, 'old-owner', now() + interval '1 hour')`, [name]);
      await sql(`INSERT INTO ${s}.failed (id, queue, data, attempt, error, created_at) VALUES (999999, $1, 'dead', 3, 'boom', now())`, [name]);
      await sql(`INSERT INTO ${s}.slots (queue, key, expires_at) VALUES ($1, 'slot-1', now() + interval '1 hour')`, [name]);
      const before = await sql<{ version: number; applied_at: Date }>(`SELECT version, applied_at FROM ${s}.migrations ORDER BY version`);
      expect(before.map((v) => v.version)).toEqual([1]);

      // Several new-code instances start at once on the old schema.
      const queues = Array.from({ length: 4 }, () => queue({ schema: own, name }));
      await Promise.all(queues.map((q) => q.open()));
      const after = await sql<{ version: number; applied_at: Date }>(`SELECT version, applied_at FROM ${s}.migrations ORDER BY version`);
      expect(after.map((v) => v.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
      expect(after[0]).toEqual(before[0]);

      const [q] = queues;
      expect(await q!.stats()).toEqual({ ready: 2, leased: 1, failed: 1, delayed: 0 });
      expect(await q!.writeUnique('slot-1', 'x', 60_000)).toBeNull();
      const delayed = await q!.write('new delayed', { runAt: Date.now() + 3_600_000 });
      const read = await q!.readBatch(10);
      expect(read).toEqual([
        { id: ready1, data: 'old 1', attempt: 1, delivery: expect.any(Number) },
        { id: ready2, data: 'old \u0000 2', attempt: 1, delivery: expect.any(Number) },
      ]);
      // Fencing per delivery on the upgraded schema (migration 8's column): another delivery's ack and result are refused.
      expect(await q!.ackBatch([ready1!], [read[0]!.delivery - 1])).toEqual([ready1]);
      await q!.setResults([{ jobId: 'jf', record: 'stale', ttlMs: 60_000 }], [ready1!], [read[0]!.delivery - 1]);
      expect(await q!.getResult('jf')).toBeNull();
      expect(await q!.retry(ready2!, 'retried', Date.now())).toBe(true);
      expect(await q!.remove(delayed)).toBe(true);
      await q!.setResults([{ jobId: 'j', record: 'r', ttlMs: 60_000 }]);
      expect(await queues[1]!.getResult('j')).toBe('r');
      expect(await q!.stats()).toEqual({ ready: 1, leased: 2, failed: 1, delayed: 0 });

      const indexes = await sql<{ indexname: string; indexdef: string }>(
        `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'jobs' ORDER BY indexname`,
        [own],
      );
      expect(indexes.map((i) => i.indexname)).toEqual(['jobs_delayed', 'jobs_leased', 'jobs_parked', 'jobs_pkey', 'jobs_ready', 'jobs_slots', 'jobs_unique']);
      expect(indexes.find((i) => i.indexname === 'jobs_ready')?.indexdef).toMatch(/WHERE \(\(owner IS NULL\) AND \(run_at IS NULL\)\)/);
      expect(indexes.find((i) => i.indexname === 'jobs_ready')?.indexdef).toMatch(/\(queue, priority DESC, \(\(id \+ 0\)\)\)/);
    });

    it('refuses to migrate to a version it does not know', async () => {
      const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
      try {
        for (const bad of [0, SCHEMA_VERSION + 1, 1.5]) await expect(migrate(pool, uniqueSchema(), bad)).rejects.toBeInstanceOf(ConfigError);
      } finally {
        await pool.end();
      }
    });

    it.each([['a*'], ['x"; DROP TABLE t;--'], ['s'.repeat(200)], ['Upper'], ['pg_taskmill'], ['1abc'], ['']])(
      'refuses the schema %j with ConfigError and creates nothing',
      async (bad) => {
        expect(() => new DatabaseQueue(POSTGRES_URL, { schema: bad })).toThrow(ConfigError);
        expect(() => new DatabaseQueue(`${POSTGRES_URL}?schema=${encodeURIComponent(bad)}`)).toThrow(ConfigError);
        expect(await sql(`SELECT nspname FROM pg_namespace WHERE nspname = $1`, [bad])).toEqual([]);
      },
    );

    it('names the bad schema in the message', () => {
      expect(() => new DatabaseQueue(POSTGRES_URL, { schema: 'a*' })).toThrow(/PostgresQueue: invalid schema "a\*": must be 1-63 characters/);
    });
  });

  describe('configuration', () => {
    it.each([
      ['mysql://root@127.0.0.1/db', {}],
      ['127.0.0.1:5432', {}],
      [POSTGRES_URL, { pollIntervalMs: 0 }],
      [POSTGRES_URL, { poolSize: 0 }],
      [POSTGRES_URL, { poolSize: 1.5 }],
      [POSTGRES_URL, { connectTimeoutMs: -1 }],
      [`${POSTGRES_URL}?listen=maybe`, {}],
    ] as const)('refuses %s %j with ConfigError', (url, options) => {
      expect(() => new DatabaseQueue(url, options)).toThrow(ConfigError);
    });

    it('takes schema and listen from the URL, keeps the rest for pg, and options win', async () => {
      const fromUrl = queue({ schema: undefined }, `${POSTGRES_URL}?schema=${schema}&listen=false&application_name=tm_test`);
      expect(fromUrl.schema).toBe(schema);
      expect(fromUrl.listen).toBe(false);
      expect(fromUrl.blocking).toBe(false);
      await fromUrl.write('x');
      const seen = await sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'tm_test'`);
      expect(seen.length).toBeGreaterThan(0);

      const overridden = queue({ listen: true }, `${POSTGRES_URL}?listen=false`);
      expect(overridden.listen).toBe(true);
      expect(overridden.blocking).toBe(true);
    });

    it('honours sslmode: disable connects in plain text, verify-full refuses a server without SSL', async () => {
      const plain = queue({}, `${POSTGRES_URL}?sslmode=disable`);
      await plain.write('over plain tcp');
      expect(await plain.length()).toBe(1);

      const strict = queue({}, `${POSTGRES_URL}?sslmode=verify-full`);
      const error = await strict.open().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(QueueConnectionError);
      expect(String((error as Error).message)).toMatch(/SSL/i);
    });

    it('refuses use after close with QueueConnectionError', async () => {
      const q = queue();
      await q.write('x');
      await q.close();
      await expect(q.write('y')).rejects.toBeInstanceOf(QueueConnectionError);
      await expect(q.read()).rejects.toBeInstanceOf(QueueConnectionError);
      await expect(q.open()).rejects.toBeInstanceOf(QueueConnectionError);
    });
  });

  describe('data and ids', () => {
    it('writeBatch writes in one go, in order, and returns the ids as strings', async () => {
      const q = queue();
      expect(await q.writeBatch([])).toEqual([]);
      const datas = ['a', 'nul\u0000', 'b', '\ud800', 'c'];
      const ids = await q.writeBatch(datas);
      expect(ids).toHaveLength(5);
      for (const id of ids) expect(id).toMatch(/^[1-9][0-9]*$/);
      const read = await q.readBatch(10);
      expect(read.map((m) => [m.id, m.data])).toEqual(ids.map((id, i) => [id, datas[i]]));
    });

    it('refuses non-string data before writing anything', async () => {
      const q = queue();
      await expect(q.write(42 as unknown as string)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.writeBatch(['ok', null as unknown as string])).rejects.toBeInstanceOf(ConfigError);
      expect(await q.length()).toBe(0);
      await expect(q.readBatch(-1)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.writeUnique('k', 'x', 0)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.writeUnique('', 'x', 1000)).rejects.toBeInstanceOf(ConfigError);
      await expect(q.writeUnique('nul\u0000key', 'x', 1000)).rejects.toBeInstanceOf(ConfigError);
    });

    it('refuses ids that cannot be row ids without asking the server or throwing', async () => {
      const q = queue();
      const id = await q.write('x');
      await q.read();
      const odd = ['abc', '-1', '0', '01', '99999999999999999999', '9223372036854775808', `${id} `];
      expect(await q.ackBatch(odd)).toEqual(odd);
      expect(await q.extend(odd)).toEqual(odd);
      expect(await q.fail('abc', 'x')).toBe(false);
      await q.release(odd);
      expect(await q.requeueFailed(['abc'])).toBe(0);
      expect(await q.purgeFailed(['abc'])).toBe(0);
      expect(await q.ackBatch([id])).toEqual([]);
    });

    it('stores error texts PostgreSQL cannot hold instead of failing the fail()', async () => {
      const q = queue();
      const id = await q.write('x');
      await q.read();
      expect(await q.fail(id, 'bad \u0000 byte and \ud800')).toBe(true);
      const [record] = await q.failed();
      expect(record?.error).toBe('bad \\0 byte and \ufffd');
    });
  });

  describe('wake-ups', () => {
    it('listen on: waitForMessages resolves soon after another instance writes, well before the poll interval', async () => {
      const name = uniqueName();
      const consumer = queue({ name, listen: true, pollIntervalMs: 20_000 });
      const producer = queue({ name, listen: false });
      await consumer.open();
      expect(consumer.blocking).toBe(true);
      expect(consumer.listening).toBe(true);
      expect(await consumer.readBatch(10)).toEqual([]);

      const started = Date.now();
      const woke = consumer.waitForMessages(20_000, new AbortController().signal);
      setTimeout(() => void producer.write('wake up'), 50);
      await woke;
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await consumer.read())?.data).toBe('wake up');
    });

    it('a write to another queue of the schema does not wake it; the poll interval bounds the wait', async () => {
      const consumer = queue({ listen: true, pollIntervalMs: 600 });
      const other = queue({ listen: false });
      await consumer.open();
      await consumer.readBatch(1);
      const started = Date.now();
      const waiting = consumer.waitForMessages(20_000, new AbortController().signal);
      await other.write('not for you');
      await waiting;
      expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    });

    it('a notification that arrives between an empty read and the wait is not lost', async () => {
      const name = uniqueName();
      const consumer = queue({ name, listen: true, pollIntervalMs: 20_000 });
      const producer = queue({ name, listen: false });
      await consumer.open();
      expect(await consumer.readBatch(1)).toEqual([]);
      await producer.write('early');
      // Give the NOTIFY time to arrive before anybody waits.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      await consumer.waitForMessages(20_000, new AbortController().signal);
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    it('waitForMessages resolves at once on abort and on close', async () => {
      const q = queue({ listen: true, pollIntervalMs: 20_000 });
      await q.open();
      await q.readBatch(1);
      const controller = new AbortController();
      const aborted = q.waitForMessages(20_000, controller.signal);
      controller.abort();
      await aborted;
      const closing = q.waitForMessages(20_000, new AbortController().signal);
      await q.close();
      await closing;
    });

    it('listen off: not blocking, never LISTENs, a polling reader still gets what another instance writes', async () => {
      const name = uniqueName();
      const consumer = queue({ name, listen: false, pollIntervalMs: 20_000 });
      const producer = queue({ name, listen: true });
      await consumer.open();
      expect(consumer.blocking).toBe(false);
      expect(consumer.listening).toBe(false);
      const started = Date.now();
      await consumer.waitForMessages(20_000, new AbortController().signal);
      expect(Date.now() - started).toBeLessThan(1_000);

      setTimeout(() => void producer.write('polled'), 100);
      let got = null;
      for (let delay = 10; got === null; delay = Math.min(delay * 2, 200)) {
        got = await consumer.read();
        if (got === null) await new Promise((resolve) => setTimeout(resolve, delay));
      }
      expect(got.data).toBe('polled');
    });
  });

  describe('job lifecycle', () => {
    const jobsOf = (q: DatabaseQueue) => `${pg.escapeIdentifier(q.schema)}.jobs`;
    const resultsOf = (q: DatabaseQueue) => `${pg.escapeIdentifier(q.schema)}.results`;

    it('judges runAt by the database clock: a process whose clock runs an hour ahead still delays', async () => {
      const q = queue();
      const realNow = Date.now();
      const clock = vi.spyOn(Date, 'now').mockReturnValue(realNow + 3_600_000);
      let ahead: string, behind: string;
      try {
        ahead = await q.write('ahead of the server', { runAt: realNow + 60_000 });
        behind = await q.write('behind the server', { runAt: realNow - 60_000 });
      } finally {
        clock.mockRestore();
      }
      expect(await q.stats()).toEqual({ ready: 1, leased: 0, failed: 0, delayed: 1 });
      const [row] = await sql<{ ms: number }>(`SELECT extract(epoch FROM run_at)::float8 * 1000 AS ms FROM ${jobsOf(q)} WHERE id = $1`, [ahead]);
      expect(row!.ms).toBeCloseTo(realNow + 60_000, 0);
      expect((await q.read())?.id).toBe(behind);
    });

    it('refuses a runAt that is no time, and write options that are no object, before writing anything', async () => {
      const q = queue();
      for (const runAt of [Number.NaN, Infinity, 1e20, '2030-01-01', null]) {
        await expect(q.write('x', { runAt } as unknown as WriteOptions)).rejects.toThrow(/invalid runAt/);
        await expect(q.writeBatch(['x'], { runAt } as unknown as WriteOptions)).rejects.toBeInstanceOf(ConfigError);
      }
      await expect(q.write('x', 5 as unknown as WriteOptions)).rejects.toThrow(/write options must be an object/);
      expect(await q.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
      const id = await q.write('long ago', { runAt: -8.64e15 });
      await q.read();
      await expect(q.retry(id, 'x', Number.NaN)).rejects.toBeInstanceOf(ConfigError);
      expect(await q.retry(id, 'year 1', -8.64e15)).toBe(true);
      expect(await q.read()).toEqual({ id, data: 'year 1', attempt: 1, delivery: expect.any(Number) });
    });

    it('a delayed write sends no wake-up (promoting it does, see the contract)', async () => {
      const name = uniqueName();
      const consumer = queue({ name, listen: true, pollIntervalMs: 800 });
      const producer = queue({ name, listen: false });
      await consumer.open();
      await consumer.readBatch(1);
      const started = Date.now();
      const waiting = consumer.waitForMessages(20_000, new AbortController().signal);
      await producer.write('later', { runAt: Date.now() + 3_600_000 });
      await producer.writeBatch(['later too'], { runAt: Date.now() + 3_600_000 });
      await waiting;
      expect(Date.now() - started).toBeGreaterThanOrEqual(750);
    });

    it('promoteDue() promotes more due messages than one statement takes, in id order', async () => {
      const q = queue();
      const total = 12_000;
      await sql(`INSERT INTO ${jobsOf(q)} (queue, data, run_at) SELECT $1, 'due ' || g, now() - g * interval '1 millisecond' FROM generate_series(1, $2) g`, [
        q.name,
        total,
      ]);
      const notDue = await q.write('not due', { runAt: Date.now() + 3_600_000 });
      expect(await q.promoteDue()).toBe(total);
      expect(await q.stats()).toEqual({ ready: total, leased: 0, failed: 0, delayed: 1 });
      // run_at was the reverse of id order; ready order is by id all the same.
      expect((await q.readBatch(3)).map((m) => m.data)).toEqual(['due 1', 'due 2', 'due 3']);
      expect(await q.remove(notDue)).toBe(true);
    });

    it('retry moves the payload between the text and the UTF-16 column as the new data needs', async () => {
      const q = queue();
      const id = await q.write('plain');
      const columns = async () =>
        (
          await sql<{ text: boolean; utf16: boolean }>(`SELECT data IS NOT NULL AS text, data_utf16 IS NOT NULL AS utf16 FROM ${jobsOf(q)} WHERE id = $1`, [id])
        )[0];
      await q.read();
      expect(await q.retry(id, 'nul \u0000 inside', Date.now())).toBe(true);
      expect(await columns()).toEqual({ text: false, utf16: true });
      expect((await q.read())?.data).toBe('nul \u0000 inside');
      expect(await q.retry(id, 'plain again', Date.now())).toBe(true);
      expect(await columns()).toEqual({ text: true, utf16: false });
      expect(await q.read()).toEqual({ id, data: 'plain again', attempt: 1, delivery: expect.any(Number) });
    });

    it('results: records text cannot hold go to UTF-16, job ids it cannot hold and bad records are refused', async () => {
      const q = queue();
      await q.setResults([{ jobId: 'nul', record: 'a\u0000b', ttlMs: 60_000 }]);
      expect(await q.getResult('nul')).toBe('a\u0000b');
      const [row] = await sql<{ record: string | null }>(`SELECT record FROM ${resultsOf(q)} WHERE queue = $1`, [q.name]);
      expect(row).toEqual({ record: null });

      const bad: unknown[] = [
        [{ jobId: 'nul\u0000id', record: 'x', ttlMs: 1000 }],
        [{ jobId: '', record: 'x', ttlMs: 1000 }],
        [{ jobId: 'ok', record: 42, ttlMs: 1000 }],
        ...[0, -1, Number.NaN, Infinity, 1e20, '1000'].map((ttlMs) => [{ jobId: 'ok', record: 'x', ttlMs }]),
        [{ jobId: 'ok', record: 'x', ttlMs: 1000 }, null],
        'not an array',
      ];
      for (const records of bad) await expect(q.setResults(records as ResultRecord[])).rejects.toBeInstanceOf(ConfigError);
      expect(await q.getResult('ok')).toBeNull();
      expect(await q.getResult('nul\u0000id')).toBeNull();
      await expect(q.getResult('')).rejects.toBeInstanceOf(ConfigError);
    });

    it('results: the last record of a job id in one call wins', async () => {
      const q = queue();
      await q.setResults([
        { jobId: 'x', record: 'first', ttlMs: 60_000 },
        { jobId: 'y', record: 'y', ttlMs: 60_000 },
        { jobId: 'x', record: 'last', ttlMs: 60_000 },
      ]);
      expect(await q.getResult('x')).toBe('last');
      expect(await q.getResult('y')).toBe('y');
    });

    it('results: setResults purges expired records of its own queue, a bounded number per call, never live ones', async () => {
      const q = queue();
      const other = queue();
      const expire = (target: DatabaseQueue, count: number) =>
        sql(
          `INSERT INTO ${resultsOf(target)} (queue, job_id, record, expires_at) SELECT $1, 'old-' || g, 'x', now() - interval '1 second' FROM generate_series(1, $2) g`,
          [target.name, count],
        );
      await expire(q, 250);
      await expire(other, 5);
      await q.setResults([{ jobId: 'live', record: 'alive', ttlMs: 60_000 }]);
      const count = async (target: DatabaseQueue) =>
        (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${resultsOf(target)} WHERE queue = $1 AND expires_at <= now()`, [target.name]))[0]!.n;
      const left = await count(q);
      expect(left).toBeLessThan(250);
      expect(left).toBeGreaterThan(0);
      await q.setResults([{ jobId: 'another', record: 'x', ttlMs: 60_000 }]);
      await q.setResults([{ jobId: 'another', record: 'y', ttlMs: 60_000 }]);
      expect(await count(q)).toBe(0);
      expect(await count(other)).toBe(5);
      expect(await q.getResult('live')).toBe('alive');
      expect(await other.getResult('old-1')).toBeNull();
    });

    it('results: concurrent calls writing the same job ids in different orders do not deadlock', async () => {
      const name = uniqueName();
      const writers = Array.from({ length: 4 }, () => queue({ name, poolSize: 2 }));
      const jobIds = Array.from({ length: 40 }, (_, i) => `job-${i}`);
      const calls = Array.from({ length: 12 }, (_, call) => {
        const order = call % 2 === 0 ? jobIds : [...jobIds].reverse();
        return writers[call % writers.length]!.setResults(order.map((jobId) => ({ jobId, record: `call ${call}`, ttlMs: 60_000 })));
      });
      await Promise.all(calls);
      for (const jobId of jobIds) expect(await writers[0]!.getResult(jobId)).toMatch(/^call \d+$/);
    });
  });

  describe('rate limits and concurrency keys', () => {
    const conc = (limit: number): StartGates => ({ concurrency: { key: 'k', limit } });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    it('starts decided at once on many connections never take more than `limit` slots or window starts', async () => {
      for (const [gates, limit] of [
        [conc(5), 5],
        [{ rate: { key: 'r', limit: 3, perMs: 60_000 } }, 3],
      ] as const) {
        const name = uniqueName();
        const consumers = Array.from({ length: 6 }, () => queue({ name, poolSize: 3 }));
        await consumers[0]!.writeBatch(Array.from({ length: 18 }, (_, i) => `m${i}`));
        const leased = await Promise.all(consumers.map((c) => c.readBatch(3)));
        const decisions = await Promise.all(consumers.flatMap((c, i) => leased[i]!.map((m) => c.startGated(m.id, gates))));
        expect(decisions.filter((d) => d.decision === 'started')).toHaveLength(limit);
        expect(await consumers[0]!.stats()).toEqual({ ready: 0, leased: limit, failed: 0, delayed: 18 - limit });
      }
    });

    it('a holder ending while a start decides to park on its key never strands the parked job', async () => {
      const name = uniqueName();
      const [a, b] = [queue({ name }), queue({ name })];
      const keyLock = `SELECT pg_advisory_xact_lock(hashtextextended('k', hashtext($1::text)))`;
      for (let round = 0; round < 5; round++) {
        await a.writeBatch(['holder', 'waiter']);
        const [holder] = await a.readBatch(1);
        const [waiter] = await b.readBatch(1);
        expect((await a.startGated(holder!.id, conc(1))).decision).toBe('started');
        // Hold the key's lock so that the ack (its row already deleted) and the start both queue on it.
        await sql('BEGIN');
        await sql(keyLock, [name]);
        const racing = Promise.all([a.ackBatch([holder!.id]), b.startGated(waiter!.id, conc(1))]);
        await sleep(100);
        await sql('COMMIT');
        const [refused, { decision }] = await racing;
        expect(refused).toEqual([]);
        if (decision === 'deferred') {
          const [woken] = await b.readBatch(1);
          expect(woken?.id).toBe(waiter!.id);
          expect((await b.startGated(woken!.id, conc(1))).decision).toBe('started');
        }
        expect(await b.ackBatch([waiter!.id])).toEqual([]);
        expect(await a.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
      }
    });

    it('reclaim() requeues a lapsed holder and wakes one job parked on its key', async () => {
      const name = uniqueName();
      const [short, long] = [queue({ name, leaseMs: 600 }), queue({ name })];
      await short.write('held');
      const [held] = await short.readBatch(1);
      expect((await short.startGated(held!.id, conc(1))).decision).toBe('started');
      await long.writeBatch(['parked 1', 'parked 2']);
      const parked = await long.readBatch(2);
      for (const m of parked) expect((await long.startGated(m.id, conc(1))).decision).toBe('deferred');
      await sleep(800);
      expect(await long.reclaim()).toBe(1);
      expect((await long.readBatch(10)).map((m) => m.data)).toEqual(['held', 'parked 1']);
    });

    it('a lapsed holder leased again and acked without a start still wakes a job parked on its key', async () => {
      const name = uniqueName();
      // A lease long enough that a loaded machine does not let it lapse before the park below.
      const [short, long] = [queue({ name, leaseMs: 1_000 }), queue({ name })];
      await short.write('held');
      const [held] = await short.readBatch(1);
      expect((await short.startGated(held!.id, conc(1))).decision).toBe('started');
      await long.write('parked');
      const [parked] = await long.readBatch(1);
      expect((await long.startGated(parked!.id, conc(1))).decision).toBe('deferred');
      await sleep(1_200);
      const [again] = await long.readBatch(10);
      expect(again).toEqual({ id: held!.id, data: 'held', attempt: 2, delivery: expect.any(Number) });
      expect(await long.ackBatch([again!.id])).toEqual([]);
      expect((await long.readBatch(10)).map((m) => m.data)).toEqual(['parked']);
    });

    it('a woken job wakes a LISTENing reader as a write does', async () => {
      const name = uniqueName();
      const consumer = queue({ name, listen: true, pollIntervalMs: 20_000 });
      const worker = queue({ name, listen: false });
      await worker.writeBatch(['holder', 'waiter']);
      const [holder, waiter] = await worker.readBatch(2);
      expect((await worker.startGated(holder!.id, conc(1))).decision).toBe('started');
      expect((await worker.startGated(waiter!.id, conc(1))).decision).toBe('deferred');
      await consumer.open();
      expect(await consumer.readBatch(1)).toEqual([]);
      const started = Date.now();
      const woke = consumer.waitForMessages(20_000, new AbortController().signal);
      await worker.ackBatch([holder!.id]);
      await woke;
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await consumer.read())?.data).toBe('waiter');
    });
  });

  describe('claim plan', () => {
    it('claims through the partial indexes, not a scan, on a 50k-row table with leases in flight', async () => {
      const big = queue({ name: uniqueName('big') });
      const other = queue({ name: uniqueName('other') });
      for (let i = 0; i < 8; i++) await big.writeBatch(Array.from({ length: 5000 }, (_, j) => `b${i}-${j}`));
      for (let i = 0; i < 2; i++) await other.writeBatch(Array.from({ length: 5000 }, (_, j) => `o${i}-${j}`));
      await big.readBatch(2000);
      await sql(`ANALYZE ${pg.escapeIdentifier(schema)}.jobs`);

      const plan = (await sql<{ 'QUERY PLAN': string }>(`EXPLAIN ${statements(schema).claim}`, [big.name, 10, 'explain', 30_000, 1]))
        .map((row) => row['QUERY PLAN'])
        .join('\n');
      expect(plan).not.toMatch(/Seq Scan/);
      expect(plan).toMatch(/Index Scan using jobs_ready on jobs/);
      expect(plan).toMatch(/Index Scan using jobs_leased on jobs/);

      // The per-delivery fence filters the rows the ids find by primary key: ack, extend and a
      // fenced result write stay index lookups with 2,000 leases in flight.
      const ids = ['1', '2', '3'];
      const deliveries = [1, 2, 3];
      const sqlOf = statements(schema);
      const explained = async (text: string, values: unknown[]) =>
        (await sql<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values)).map((row) => row['QUERY PLAN']).join('\n');
      for (const [what, text, values] of [
        ['ack', sqlOf.ack, [big.name, ids, 'explain', deliveries]],
        ['extend', sqlOf.extend, [big.name, ids, 'explain', 30_000, deliveries]],
        ['setResults', sqlOf.setResults, [big.name, ['j1'], ['r'], [null], [60_000], ['1'], [1], 'explain']],
      ] as const) {
        const fenced = await explained(text, [...values]);
        expect(fenced, what).not.toMatch(/Seq Scan on jobs/);
        expect(fenced, what).toMatch(/Index Scan using jobs_pkey on jobs/);
      }
    });

    /** Index scans of `plan` (EXPLAIN ANALYZE, BUFFERS, FORMAT JSON) by index name, with the blocks each touched. */
    function indexScans(plan: unknown): { index: string; blocks: number }[] {
      const found: { index: string; blocks: number }[] = [];
      const visit = (node: Record<string, unknown>) => {
        if (typeof node['Index Name'] === 'string') {
          found.push({ index: node['Index Name'], blocks: Number(node['Shared Hit Blocks'] ?? 0) + Number(node['Shared Read Blocks'] ?? 0) });
        }
        for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) visit(child);
      };
      visit((plan as [{ Plan: Record<string, unknown> }])[0].Plan);
      return found;
    }

    it('a million delayed messages ahead of the ready ones cost a claim and a promoteDue nothing: a few index blocks', async () => {
      const own = uniqueSchema();
      extraSchemas.push(own);
      const big = queue({ schema: own, name: uniqueName('delayed') });
      await big.open();
      const jobs = `${pg.escapeIdentifier(own)}.jobs`;
      await sql(`INSERT INTO ${jobs} (queue, data, run_at) SELECT $1, 'd', now() + interval '1 day' FROM generate_series(1, 1000000)`, [big.name]);
      const ready = await big.writeBatch(Array.from({ length: 50 }, (_, i) => `r${i}`));
      await big.readBatch(20);
      await sql(`ANALYZE ${jobs}`);

      const explain = async (text: string, values: unknown[]) => {
        await sql('BEGIN');
        try {
          return (await sql<{ 'QUERY PLAN': unknown }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, values))[0]!['QUERY PLAN'];
        } finally {
          await sql('ROLLBACK');
        }
      };
      const sqlOf = statements(own);
      const claimPlan = await explain(sqlOf.claim, [big.name, 10, 'explain', 30_000, 1]);
      const promotePlan = await explain(sqlOf.promoteDue, [big.name, 'explain', 5000]);
      for (const plan of [claimPlan, promotePlan]) expect(JSON.stringify(plan)).not.toContain('Seq Scan');
      const claim = indexScans(claimPlan);
      expect(claim.map((scan) => scan.index)).toEqual(expect.arrayContaining(['jobs_ready', 'jobs_leased']));
      const promote = indexScans(promotePlan);
      expect(promote.map((scan) => scan.index)).toContain('jobs_delayed');
      // Walking the delayed rows would touch thousands of blocks; a range start touches a handful.
      for (const scan of [...claim, ...promote].filter((s) => s.index !== 'jobs_pkey')) expect(scan.blocks, scan.index).toBeLessThan(50);

      expect(await big.promoteDue()).toBe(0);
      expect((await big.readBatch(10)).map((m) => m.id)).toEqual(ready.slice(20, 30));
      expect(await big.length()).toBe(20);
    }, 120_000);
  });

  describe('secrets', () => {
    it('util.inspect and JSON.stringify show the URL without its password', () => {
      const q = queue({}, 'postgres://app:Sup3rSecretPw@127.0.0.1:5432/test?sslmode=disable');
      const shown = `${inspect(q)} ${inspect(q, { showHidden: true, depth: 10 })} ${JSON.stringify(q)} ${String(q.redactedUrl)}`;
      expect(shown).not.toContain('Sup3rSecretPw');
      expect(shown).toContain('app:***@127.0.0.1');
    });
  });
});
