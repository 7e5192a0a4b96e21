/**
 * A PostgreSQL test file's queues in a schema of their own: `queue()` opens one (closed after
 * each test), `sql()` runs a statement on another connection than the queues' (so what it sees is
 * committed), and the schema is dropped after the file. Call it inside the file's describe.
 */
import pg from 'pg';
import { afterAll, afterEach } from 'vitest';
import { DatabaseQueue, type DatabaseQueueOptions } from '../../src/backends/postgres/queue.js';
import { POSTGRES_URL, uniqueName } from './services.js';

export interface PostgresFixture {
  schema: string;
  /** The schema, quoted for SQL. */
  s: string;
  queue(options?: DatabaseQueueOptions): DatabaseQueue;
  sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
}

export function postgresFixture(): PostgresFixture {
  const schema = `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const s = pg.escapeIdentifier(schema);
  const opened: DatabaseQueue[] = [];
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  let adminConnected = false;

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((q) => q.close()));
  });

  afterAll(async () => {
    if (adminConnected) {
      await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      await admin.end();
    }
  });

  return {
    schema,
    s,
    queue(options = {}) {
      const created = new DatabaseQueue(POSTGRES_URL, { schema, name: uniqueName(), onWarning: () => {}, ...options });
      opened.push(created);
      return created;
    },
    async sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<R[]> {
      if (!adminConnected) {
        await admin.connect();
        adminConnected = true;
      }
      return (await admin.query<R>(text, values)).rows;
    },
  };
}
