import { inspect } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DatabaseQueue, SCHEMA_VERSION, type DatabaseQueueOptions } from '../../src/backends/postgres.js';
import { statements } from '../../src/backends/postgres-schema.js';
import { ConfigError, QueueConnectionError } from '../../src/errors.js';
import { hasPostgres, POSTGRES_URL, uniqueName } from '../helpers/services.js';
import { runContractSuite } from './contract.js';

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
    create: (queueOptions: DatabaseQueueOptions) =>
      new DatabaseQueue(POSTGRES_URL, { ...options, ...queueOptions, schema, onWarning: () => {} }),
    cleanup: () => dropSchema(schema),
  };
}

describe.skipIf(!hasPostgres)('DatabaseQueue against the shared server', () => {
  runContractSuite('DatabaseQueue (listen on)', contractTarget({ listen: true }));
  runContractSuite('DatabaseQueue (listen off)', contractTarget({ listen: false }));
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
    it('creates exactly its four tables in its own schema, recording the version', async () => {
      const own = uniqueSchema();
      extraSchemas.push(own);
      await queue({ schema: own }).open();
      const tables = await sql<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
        [own],
      );
      expect(tables.map((t) => t.table_name)).toEqual(['failed', 'jobs', 'migrations', 'slots']);
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

    it.each([['a*'], ['x"; DROP TABLE t;--'], ['s'.repeat(200)], ['Upper'], ['pg_taskmill'], ['1abc'], ['']])(
      'refuses the schema %j with ConfigError and creates nothing',
      async (bad) => {
        expect(() => new DatabaseQueue(POSTGRES_URL, { schema: bad })).toThrow(ConfigError);
        expect(() => new DatabaseQueue(`${POSTGRES_URL}?schema=${encodeURIComponent(bad)}`)).toThrow(ConfigError);
        expect(await sql(`SELECT nspname FROM pg_namespace WHERE nspname = $1`, [bad])).toEqual([]);
      },
    );

    it('names the bad schema in the message', () => {
      expect(() => new DatabaseQueue(POSTGRES_URL, { schema: 'a*' })).toThrow(/schema name "a\*"/);
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

  describe('claim plan', () => {
    it('claims through the partial indexes, not a scan, on a 50k-row table with leases in flight', async () => {
      const big = queue({ name: uniqueName('big') });
      const other = queue({ name: uniqueName('other') });
      for (let i = 0; i < 8; i++) await big.writeBatch(Array.from({ length: 5000 }, (_, j) => `b${i}-${j}`));
      for (let i = 0; i < 2; i++) await other.writeBatch(Array.from({ length: 5000 }, (_, j) => `o${i}-${j}`));
      await big.readBatch(2000);
      await sql(`ANALYZE ${pg.escapeIdentifier(schema)}.jobs`);

      const plan = (await sql<{ 'QUERY PLAN': string }>(`EXPLAIN ${statements(schema).claim}`, [big.name, 10, 'explain', 30_000]))
        .map((row) => row['QUERY PLAN'])
        .join('\n');
      expect(plan).not.toMatch(/Seq Scan/);
      expect(plan).toMatch(/Index Scan using jobs_ready on jobs/);
      expect(plan).toMatch(/Index Scan using jobs_leased on jobs/);
    });
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
