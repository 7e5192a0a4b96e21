/**
 * A write and a write-once of SqliteQueue as plain steps on prepared
 * statements, run inside whatever transaction the caller is in: the queue's own
 * connection wraps them in one (connection.ts), a transactional enqueue runs
 * them in the application's (transaction.ts).
 */
import type Database from 'better-sqlite3';
import type { WriteOnceResult } from '../base.js';
import { decode, storedRunAt, type Stored } from './connection.js';

export interface WriteStatements {
  insert: Database.Statement;
  insertKeyed: Database.Statement;
  uniqueHolder: Database.Statement;
  dropLapsedKey: Database.Statement;
}

export interface Writes {
  insertOne(this: void, data: Stored, runAt: number | undefined, priority: number): string;
  /** writeOnce's rule: a live holder of the key is returned; a lapsed one lets go of it first. */
  insertOnce(this: void, key: string, data: Stored, runAt: number | undefined, priority: number, keyTtlMs: number | undefined): WriteOnceResult;
}

export function writesOf(s: WriteStatements, queue: string): Writes {
  return {
    insertOne(data, runAt, priority) {
      const now = Date.now();
      return String(s.insert.run({ queue, data, now, runAt: storedRunAt(runAt, now), priority }).lastInsertRowid);
    },
    insertOnce(key, data, runAt, priority, keyTtlMs) {
      const now = Date.now();
      const held = s.uniqueHolder.get({ queue, key }) as { id: number; data: Stored; unique_until: number | null } | undefined;
      if (held) {
        if (held.unique_until === null || held.unique_until > now) return { id: String(held.id), duplicate: true, data: decode(held.data) };
        s.dropLapsedKey.run({ id: held.id });
      }
      const until = keyTtlMs === undefined ? null : now + keyTtlMs;
      const id = s.insertKeyed.run({ queue, data, now, runAt: storedRunAt(runAt, now), priority, key, until }).lastInsertRowid;
      return { id: String(id), duplicate: false };
    },
  };
}
