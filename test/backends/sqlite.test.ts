import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SQLITE_STATEMENTS, SqliteQueue } from '../../src/backends/sqlite.js';
import { ConfigError, QueueConnectionError } from '../../src/errors.js';
import { runContractSuite } from './contract.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskmill-sqlite-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Every instance opens its own connection on the one file, so cross-instance
// tests exercise real SQLite locking, as separate processes would.
const contractFile = path.join(dir, 'contract.sqlite');
runContractSuite('SqliteQueue', { create: (options) => new SqliteQueue(contractFile, options) });

let fileCounter = 0;
const freshFile = () => path.join(dir, `q${++fileCounter}.sqlite`);

describe('SqliteQueue', () => {
  it('persists across reopen and keeps queues of one file apart', async () => {
    const file = freshFile();
    const jobs = new SqliteQueue(file, { name: 'jobs' });
    const mail = new SqliteQueue(file, { name: 'mail' });
    const id = await jobs.write('persisted');
    await mail.write('other');
    await jobs.close();
    await mail.close();

    const again = new SqliteQueue(file, { name: 'jobs' });
    expect(await again.read()).toEqual({ id, data: 'persisted', attempt: 1 });
    expect(await again.length()).toBe(0);
    await again.close();
  });

  it('uses WAL and records the schema version in its own table', async () => {
    const file = freshFile();
    const queue = new SqliteQueue(file);
    await queue.open();
    await queue.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.prepare('SELECT version FROM taskmill_schema').get()).toEqual({ version: 1 });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'taskmill_%' ORDER BY name").all();
    expect(tables.map((t) => (t as { name: string }).name)).toEqual(['taskmill_failed', 'taskmill_messages', 'taskmill_schema', 'taskmill_slots']);
    db.close();
  });

  it('claims through the two partial indexes and fences by primary key, never scanning the table', async () => {
    const file = freshFile();
    const queue = new SqliteQueue(file);
    await queue.open();
    await queue.close();
    const db = new Database(file, { readonly: true });
    const params = { queue: 'q', owner: 'o', now: 1, until: 2, max: 10, ids: '[1,2]', id: 1 };
    const plan = (which: keyof typeof SQLITE_STATEMENTS) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${SQLITE_STATEMENTS[which]}`).all(params) as Array<{ detail: string }>)
        .map((row) => row.detail)
        .join('\n');
    const claim = plan('claim');
    expect(claim).toContain('USING INDEX taskmill_messages_ready');
    expect(claim).toContain('USING COVERING INDEX taskmill_messages_leased');
    for (const which of ['claim', 'ack', 'extend', 'release', 'takeForFail', 'reclaim'] as const) {
      expect(plan(which), which).not.toMatch(/SCAN taskmill_messages/);
    }
    for (const which of ['ack', 'extend', 'release', 'takeForFail'] as const) {
      expect(plan(which), which).toContain('USING INTEGER PRIMARY KEY');
    }
    db.close();
  });

  it('refuses a file written by a newer schema with ConfigError', async () => {
    const file = freshFile();
    const first = new SqliteQueue(file);
    await first.open();
    await first.close();
    const db = new Database(file);
    db.prepare('UPDATE taskmill_schema SET version = 99').run();
    db.close();
    const queue = new SqliteQueue(file);
    await expect(queue.open()).rejects.toThrow(/schema version 99/);
    await expect(queue.write('x')).rejects.toBeInstanceOf(ConfigError);
    await queue.close();
  });

  it('writeBatch writes all in one transaction, in order', async () => {
    const queue = new SqliteQueue(freshFile());
    expect(await queue.writeBatch([])).toEqual([]);
    const ids = await queue.writeBatch(['a', '\ud800', 'c']);
    expect((await queue.readBatch(5)).map((m) => [m.id, m.data])).toEqual([
      [ids[0], 'a'],
      [ids[1], '\ud800'],
      [ids[2], 'c'],
    ]);
    await expect(queue.writeBatch(['ok', 7 as unknown as string])).rejects.toBeInstanceOf(ConfigError);
    expect(await queue.length()).toBe(0);
    await queue.close();
  });

  it('keeps lone surrogates through the failed store and re-queue', async () => {
    const queue = new SqliteQueue(freshFile());
    const id = await queue.write('bad \udfff text');
    await queue.read();
    await queue.fail(id, 'x');
    expect((await queue.failed())[0]?.data).toBe('bad \udfff text');
    await queue.requeueFailed();
    expect((await queue.read())?.data).toBe('bad \udfff text');
    await queue.close();
  });

  it('works on :memory:', async () => {
    const queue = new SqliteQueue(':memory:');
    const id = await queue.write('x');
    expect(await queue.read()).toEqual({ id, data: 'x', attempt: 1 });
    await queue.close();
  });

  it('turns a lock held too long into QueueConnectionError naming busyTimeoutMs', async () => {
    const file = freshFile();
    const queue = new SqliteQueue(file, { busyTimeoutMs: 50 });
    await queue.open();
    const blocker = new Database(file);
    blocker.prepare('BEGIN IMMEDIATE').run();
    try {
      const error = await queue.write('x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QueueConnectionError);
      expect((error as Error).message).toMatch(/busyTimeoutMs \(50 ms\)/);
      expect((error as Error).message).not.toContain('"x"');
    } finally {
      blocker.prepare('ROLLBACK').run();
      blocker.close();
    }
    expect(typeof (await queue.write('x'))).toBe('string');
    await queue.close();
  });

  it('turns an unopenable path into QueueConnectionError naming the path', async () => {
    const missing = path.join(dir, 'no-such-dir', 'q.sqlite');
    const queue = new SqliteQueue(missing);
    await expect(queue.open()).rejects.toThrow(QueueConnectionError);
    await expect(queue.open()).rejects.toThrow(/no-such-dir/);
    await queue.close();
  });

  it('refuses use after close, an empty path and a bad busyTimeoutMs', async () => {
    const queue = new SqliteQueue(':memory:');
    await queue.close();
    await expect(queue.write('x')).rejects.toBeInstanceOf(QueueConnectionError);
    expect(() => new SqliteQueue('')).toThrow(ConfigError);
    expect(() => new SqliteQueue(':memory:', { busyTimeoutMs: -1 })).toThrow(ConfigError);
  });

  it('ignores malformed ids in fenced calls (refused, never applied)', async () => {
    const queue = new SqliteQueue(':memory:');
    const id = await queue.write('x');
    await queue.read();
    const odd = ['', 'abc', '1.0', '-1', '01', '99999999999999999999', `${id} `];
    expect(await queue.ackBatch(odd)).toEqual(odd);
    expect(await queue.fail('abc', 'x')).toBe(false);
    expect(await queue.ackBatch([id])).toEqual([]);
    await queue.close();
  });
});
