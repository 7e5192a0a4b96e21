/**
 * Writes through the application's own better-sqlite3 transaction
 * (BaseQueue.writeInTransaction): the app's Database must be open on the
 * queue's file and inside `db.transaction()`; the write's statements are
 * prepared on that Database (once per Database) and run synchronously within
 * the call, so they belong to the app's transaction — which better-sqlite3
 * requires to be synchronous anyway.
 *
 * A Database outside a transaction is refused rather than written through at
 * once: whoever passes `tx` asked for "exists if and only if my transaction
 * commits". So is one on another file, or the queue on `:memory:` (no other
 * connection can share it).
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { ConfigError, describeValue } from '../../shared/errors.js';
import { SCHEMA_VERSION, SQL, migrate } from './schema.js';
import { writesOf, type Writes } from './writes.js';

const prepared = new WeakMap<Database.Database, Map<string, Writes>>();

function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  return real(a) === real(b);
}

function schemaVersion(db: Database.Database): number | null {
  try {
    const row = db.prepare('SELECT version FROM taskmill_schema WHERE id = 1').get() as { version: number } | undefined;
    return row?.version ?? null;
  } catch {
    return null; // no taskmill_schema table
  }
}

/** The writes of queue `queue` through `tx`; a ConfigError naming what `tx` is otherwise. */
export function transactionWrites(tx: unknown, file: string, queue: string): Writes {
  const where = `schedule({ tx }) on SQLite queue "${queue}"`;
  const db = tx as Partial<Database.Database> | null;
  if (db === null || typeof db !== 'object' || typeof db.prepare !== 'function' || typeof db.inTransaction !== 'boolean' || typeof db.name !== 'string') {
    throw new ConfigError(`${where}: tx must be your better-sqlite3 Database, got ${describeValue(tx)}`);
  }
  if (file === ':memory:' || db.memory) throw new ConfigError(`${where}: an in-memory database cannot be shared between connections; use a file`);
  if (!samePath(db.name, file)) throw new ConfigError(`${where}: tx is open on another file than the queue's (${file}); nothing was written`);
  if (!db.inTransaction) throw new ConfigError(`${where}: tx is not inside db.transaction(); nothing was written`);
  const database = db as Database.Database;
  // The schema is made sure of in the app's transaction itself, on every call (one read of a
  // one-row table): this queue's own connection would wait on the write lock the app may hold,
  // and a schema created in a transaction that rolled back is gone again.
  if (schemaVersion(database) !== SCHEMA_VERSION) migrate(database, file);
  let byQueue = prepared.get(database);
  if (!byQueue) prepared.set(database, (byQueue = new Map<string, Writes>()));
  let writes = byQueue.get(queue);
  if (!writes) {
    const statements = {
      insert: database.prepare(SQL.insert),
      insertKeyed: database.prepare(SQL.insertKeyed),
      uniqueHolder: database.prepare(SQL.uniqueHolder),
      dropLapsedKey: database.prepare(SQL.dropLapsedKey),
    };
    byQueue.set(queue, (writes = writesOf(statements, queue)));
  }
  return writes;
}
