import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { SqliteQueue } from '../../src/backends/sqlite/queue.js';
import { SQLITE_STATEMENTS } from '../../src/backends/sqlite/schema.js';
import { ConfigError, QueueConnectionError } from '../../src/shared/errors.js';
import { runContractSuite } from '../../src/testing/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskmill-sqlite-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Every instance opens its own connection on the one file, so cross-instance
// tests exercise real SQLite locking, as separate processes would.
const contractFile = path.join(dir, 'contract.sqlite');
runContractSuite('SqliteQueue', { create: (options) => new SqliteQueue(contractFile, options) });

/** The schema of taskmill's first SQLite version, as files created by it hold it. */
const VERSION_1_SCHEMA = `
CREATE TABLE taskmill_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
CREATE TABLE taskmill_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  data NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  owner TEXT,
  lease_until INTEGER,
  enqueued_at INTEGER NOT NULL
);
CREATE INDEX taskmill_messages_ready ON taskmill_messages (queue, id) WHERE lease_until IS NULL;
CREATE INDEX taskmill_messages_leased ON taskmill_messages (queue, lease_until) WHERE lease_until IS NOT NULL;
CREATE TABLE taskmill_failed (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id INTEGER NOT NULL UNIQUE,
  queue TEXT NOT NULL,
  data NOT NULL,
  attempt INTEGER NOT NULL,
  error TEXT NOT NULL,
  failed_at INTEGER NOT NULL
);
CREATE INDEX taskmill_failed_queue ON taskmill_failed (queue, seq);
CREATE TABLE taskmill_slots (
  queue TEXT NOT NULL,
  key TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (queue, key)
) WITHOUT ROWID;
CREATE INDEX taskmill_slots_expiry ON taskmill_slots (queue, expires_at);
`;

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
    expect(await again.read()).toEqual({ id, data: 'persisted', attempt: 1, delivery: expect.any(Number) });
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
    expect(db.prepare('SELECT version FROM taskmill_schema').get()).toEqual({ version: 8 });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'taskmill_%' ORDER BY name").all();
    expect(tables.map((t) => (t as { name: string }).name)).toEqual([
      'taskmill_cancels',
      'taskmill_consumers',
      'taskmill_event_seqs',
      'taskmill_events',
      'taskmill_failed',
      'taskmill_listeners',
      'taskmill_messages',
      'taskmill_rates',
      'taskmill_results',
      'taskmill_schema',
      'taskmill_slots',
      'taskmill_throughput',
    ]);
    db.close();
  });

  it('claims through the two partial indexes and fences by primary key, never scanning the table', async () => {
    const file = freshFile();
    const queue = new SqliteQueue(file);
    await queue.open();
    await queue.close();
    const db = new Database(file, { readonly: true });
    const params = {
      queue: 'q',
      owner: 'o',
      now: 1,
      until: 2,
      max: 10,
      ids: '[1,2]',
      id: 1,
      delivery: 5,
      data: 'd',
      runAt: 3,
      jobId: 'j',
      record: 'r',
      expiresAt: 4,
      limit: 5,
      key: 'k',
      since: 0,
      at: 6,
      perMs: 7,
      reservedFor: 8,
      count: 9,
    };
    const plan = (which: keyof typeof SQLITE_STATEMENTS) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${SQLITE_STATEMENTS[which]}`).all(params) as Array<{ detail: string }>).map((row) => row.detail).join('\n');
    const claim = plan('claim');
    expect(claim).toContain('USING INDEX taskmill_messages_ready');
    // The ready index is in claim order, so the ready side reads max rows off its front, unsorted.
    expect((db.prepare("SELECT sql FROM sqlite_master WHERE name = 'taskmill_messages_ready'").get() as { sql: string }).sql).toContain(
      '(queue, priority DESC, id)',
    );
    expect(claim).toContain('USING INDEX taskmill_messages_leased');
    expect(plan('claimReady')).toContain('USING INDEX taskmill_messages_ready (queue=?)');
    expect(plan('claimReady')).not.toContain('TEMP B-TREE');
    expect(plan('expiredLease')).toContain('USING COVERING INDEX taskmill_messages_leased (queue=? AND lease_until>? AND lease_until<?)');
    for (const which of ['claim', 'claimReady', 'ack', 'ackCounted', 'extend', 'release', 'takeForFail', 'reclaim'] as const) {
      expect(plan(which), which).not.toMatch(/SCAN taskmill_messages/);
    }
    for (const which of ['ack', 'ackCounted', 'extend', 'release', 'takeForFail', 'retry', 'remove', 'setFencedResult'] as const) {
      expect(plan(which), which).toContain('USING INTEGER PRIMARY KEY');
    }
    expect(plan('promoteDue')).toContain('USING INDEX taskmill_messages_delayed (queue=? AND run_at>? AND run_at<?)');
    expect(plan('stats')).not.toMatch(/SCAN taskmill_messages/);
    expect(plan('length')).toContain('USING INDEX taskmill_messages_ready');
    expect(plan('getResult')).toContain('USING INDEX sqlite_autoindex_taskmill_results_1 (queue=? AND job_id=?)');
    expect(plan('purgeResults')).toContain('USING COVERING INDEX taskmill_results_expiry (expires_at<?)');
    for (const which of ['getResult', 'purgeResults', 'flushResults', 'setResult', 'setFencedResult'] as const) {
      expect(plan(which), which).not.toMatch(/SCAN taskmill_results/);
    }
    // Flow control: slots and parked messages through their partial indexes, the rate windows through theirs.
    expect(plan('slotHolders')).toContain('USING INDEX taskmill_messages_slots (queue=? AND slot_key=?)');
    expect(plan('lapsedHolders')).toContain('USING INDEX taskmill_messages_slots (queue=? AND slot_key>?)');
    // Wake order is the parked index's order: the first `count` entries, no sort.
    expect(plan('wakeParked')).toContain('USING COVERING INDEX taskmill_messages_parked (queue=? AND parked_key=?)');
    expect(plan('wakeParked')).not.toContain('TEMP B-TREE');
    for (const which of ['gateHeld', 'takeSlot', 'dropSlot', 'park', 'deferTo', 'ackHolders', 'claimedHolders'] as const) {
      expect(plan(which), which).toContain('USING INTEGER PRIMARY KEY');
    }
    for (const which of ['rateExpire', 'rateDue', 'rateReserveAt'] as const) {
      expect(plan(which), which).toContain('taskmill_rates_window (queue=? AND key=?');
      expect(plan(which), which).not.toContain('TEMP B-TREE');
    }
    expect(plan('rateUnreserve')).toContain('USING INDEX taskmill_rates_reserved (reserved_for=?)');
    for (const which of ['gateHeld', 'slotHolders', 'wakeParked', 'park', 'deferTo', 'ackHolders', 'claimedHolders', 'lapsedHolders'] as const) {
      expect(plan(which), which).not.toMatch(/SCAN taskmill_messages/);
    }
    for (const which of ['rateExpire', 'rateUnreserve', 'rateDue', 'rateReserveAt', 'flushRates'] as const) {
      expect(plan(which), which).not.toMatch(/SCAN taskmill_rates/);
    }
    db.close();
  });

  it('keeps delayed rows out of the ready index, so claims never walk them', async () => {
    const file = freshFile();
    const queue = new SqliteQueue(file);
    const runAt = Date.now() + 3_600_000;
    for (let i = 0; i < 10; i++)
      await queue.writeBatch(
        Array.from({ length: 5_000 }, (_, k) => `d${i}-${k}`),
        { runAt },
      );
    const ready = await queue.write('ready');
    expect(await queue.stats()).toEqual({ ready: 1, leased: 0, failed: 0, delayed: 50_000 });
    expect(await queue.readBatch(10)).toEqual([{ id: ready, data: 'ready', attempt: 1, delivery: expect.any(Number) }]);
    await queue.close();
    const db = new Database(file, { readonly: true });
    // Every cell of an index b-tree, interior ones included, is one entry.
    const entries = (index: string) =>
      (db.prepare("SELECT coalesce(sum(ncell), 0) AS n FROM dbstat WHERE name = ? AND pagetype IN ('leaf', 'internal')").get(index) as { n: number }).n;
    expect(entries('taskmill_messages_ready')).toBe(0);
    expect(entries('taskmill_messages_leased')).toBe(1);
    expect(entries('taskmill_messages_delayed')).toBe(50_000);
    db.close();
  });

  it('upgrades a version-1 file in place, keeping its messages, leases, failures and slot claims', async () => {
    const file = freshFile();
    const old = new Database(file);
    old.pragma('journal_mode = WAL');
    old.exec(VERSION_1_SCHEMA);
    old.prepare('INSERT INTO taskmill_schema (id, version) VALUES (1, 1)').run();
    const now = Date.now();
    const insert = old.prepare('INSERT INTO taskmill_messages (queue, data, attempt, owner, lease_until, enqueued_at) VALUES (?, ?, ?, ?, ?, ?)');
    const readyId = String(insert.run('jobs', 'old ready', 0, null, null, now).lastInsertRowid);
    const leasedId = String(insert.run('jobs', 'old leased', 1, 'old-owner', now + 3_600_000, now).lastInsertRowid);
    old.prepare("INSERT INTO taskmill_failed (id, queue, data, attempt, error, failed_at) VALUES (99, 'jobs', 'old failed', 3, 'boom', ?)").run(now);
    old.prepare("INSERT INTO taskmill_slots (queue, key, expires_at) VALUES ('jobs', 'slot', ?)").run(now + 3_600_000);
    old.close();

    const oldOwner = new SqliteQueue(file, { name: 'jobs', owner: 'old-owner' });
    const queue = new SqliteQueue(file, { name: 'jobs' });
    expect(await queue.stats()).toEqual({ ready: 1, leased: 1, failed: 1, delayed: 0 });
    const delayed = await queue.write('new delayed', { runAt: Date.now() + 3_600_000 });
    expect(await queue.read()).toEqual({ id: readyId, data: 'old ready', attempt: 1, delivery: expect.any(Number) });
    expect(await queue.read()).toBeNull();
    expect(await queue.remove(leasedId)).toBe(false);
    expect(await oldOwner.retry(leasedId, 'retried', Date.now())).toBe(true);
    expect(await queue.read()).toEqual({ id: leasedId, data: 'retried', attempt: 1, delivery: expect.any(Number) });
    expect((await queue.failed()).map((f) => [f.id, f.data, f.attempt, f.error])).toEqual([['99', 'old failed', 3, 'boom']]);
    expect(await queue.writeUnique('slot', 'x', 60_000)).toBeNull();
    await queue.setResults([{ jobId: 'j', record: 'result', ttlMs: 60_000 }]);
    expect(await queue.getResult('j')).toBe('result');
    expect(await queue.stats()).toEqual({ ready: 0, leased: 2, failed: 1, delayed: 1 });
    // Rate limits and concurrency keys on the upgraded file: the old message takes the only slot,
    // the retried one parks until the slot is free.
    const gates = { concurrency: { key: 'k', limit: 1 }, rate: { key: 'r', limit: 5, perMs: 60_000 } };
    expect((await queue.startGated(readyId, gates)).decision).toBe('started');
    expect((await queue.startGated(leasedId, gates)).decision).toBe('deferred');
    expect(await queue.stats()).toEqual({ ready: 0, leased: 1, failed: 1, delayed: 2 });
    await queue.ack(readyId);
    const retried = (await queue.read())!;
    expect(retried).toEqual({ id: leasedId, data: 'retried', attempt: 1, delivery: expect.any(Number) });
    // Fencing per delivery on the upgraded file (version 8's column): another delivery's ack and result are refused.
    expect(await queue.ackBatch([leasedId], [retried.delivery - 1])).toEqual([leasedId]);
    await queue.setResults([{ jobId: 'jl', record: 'stale', ttlMs: 60_000 }], [leasedId], [retried.delivery - 1]);
    expect(await queue.getResult('jl')).toBeNull();
    await queue.setResults([{ jobId: 'jl', record: 'fresh', ttlMs: 60_000 }], [leasedId], [retried.delivery]);
    expect(await queue.getResult('jl')).toBe('fresh');
    expect(await queue.remove(delayed)).toBe(true);
    // Job control and events (version 6's tables) and throughput (version 7's) on the upgraded file.
    expect(await queue.cancel(leasedId, 'job-l')).toBe('signalled');
    expect((await queue.control()).cancels).toEqual([{ id: leasedId, jobId: 'job-l' }]);
    await queue.publishEvents(['e1']);
    expect(await queue.readEvents(0, 10)).toEqual({ events: [{ seq: 1, data: 'e1' }], last: 1 });
    const clock = Date.now(); // one reading: two could straddle a millisecond and be off a minute
    const minute = clock - (clock % 60_000);
    await queue.heartbeat('c', '{}', [{ queue: 'jobs', minute, completed: 1, failed: 0 }]);
    expect(await queue.throughput()).toEqual([{ minute, completed: 1, failed: 0 }]);
    await queue.close();
    await oldOwner.close();

    // Reopening an upgraded file changes nothing.
    const again = new SqliteQueue(file, { name: 'jobs' });
    expect(await again.getResult('j')).toBe('result');
    await again.close();
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT version FROM taskmill_schema').get()).toEqual({ version: 8 });
    const readyIndex = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'taskmill_messages_ready'").get() as { sql: string };
    expect(readyIndex.sql).toContain('run_at IS NULL');
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });

  describe('startGated', () => {
    const one = { concurrency: { key: 'k', limit: 1 } };

    /** A holder on a short lease, started, and two messages parked behind it on a long one. */
    async function lapsingHolder(file: string) {
      const short = new SqliteQueue(file, { leaseMs: 600 });
      const long = new SqliteQueue(file);
      const holder = await short.write('holder');
      await short.read();
      expect((await short.startGated(holder, one)).decision).toBe('started');
      await long.writeBatch(['p1', 'p2']);
      for (const m of await long.readBatch(2)) expect((await long.startGated(m.id, one)).decision).toBe('deferred');
      await new Promise((resolve) => setTimeout(resolve, 800));
      return { short, long, holder };
    }

    it('frees the slot of a lapsed holder when a read takes it again, waking one parked message', async () => {
      const { short, long, holder } = await lapsingHolder(freshFile());
      expect((await long.readBatch(10)).map((m) => m.data)).toEqual(['holder']);
      expect(await long.stats()).toEqual({ ready: 1, leased: 1, failed: 0, delayed: 1 });
      expect((await long.startGated(holder, one)).decision).toBe('started');
      const [p1] = await long.readBatch(10);
      expect(p1!.data).toBe('p1');
      expect((await long.startGated(p1!.id, one)).decision).toBe('deferred');
      await short.close();
      await long.close();
    });

    it('frees the slot of a lapsed holder when reclaim() or remove() takes it, waking one parked message each', async () => {
      const file = freshFile();
      const { short, long } = await lapsingHolder(file);
      expect(await long.reclaim()).toBe(1);
      expect(await long.stats()).toEqual({ ready: 2, leased: 0, failed: 0, delayed: 1 });
      expect((await long.readBatch(10)).map((m) => m.data)).toEqual(['holder', 'p1']);
      await long.flush();
      const again = await lapsingHolder(file);
      expect(await again.long.remove(again.holder)).toBe(true);
      expect((await again.long.readBatch(10)).map((m) => m.data)).toEqual(['p1']);
      for (const queue of [short, long, again.short, again.long]) await queue.close();
    });

    it('acks messages it did not start under a concurrency gate with the plain statement', async () => {
      const queue = new SqliteQueue(freshFile());
      const ids = await queue.writeBatch(['plain', 'rated', 'slotted']);
      await queue.readBatch(3);
      expect((await queue.startGated(ids[1]!, { rate: { key: 'r', limit: 5, perMs: 60_000 } })).decision).toBe('started');
      expect((await queue.startGated(ids[2]!, one)).decision).toBe('started');
      const connection = queue['connection']();
      const ackHolders = vi.spyOn(connection, 'ackHolders');
      expect(await queue.ackBatch([ids[0]!, ids[1]!])).toEqual([]);
      expect(ackHolders).not.toHaveBeenCalled();
      expect(await queue.ackBatch([ids[2]!, '987654321'])).toEqual(['987654321']);
      expect(ackHolders).toHaveBeenCalledWith([ids[2], '987654321'], undefined, new Set([ids[2]]));
      expect(queue['slotHolders'].size).toBe(0);
      await queue.close();
    });
  });

  it('keeps delayed messages across a reopen, still delayed until due and promoted', async () => {
    const file = freshFile();
    const first = new SqliteQueue(file);
    const id = await first.write('later', { runAt: Date.now() + 300 });
    await first.close();
    const second = new SqliteQueue(file);
    expect(await second.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 1 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await second.read()).toBeNull();
    expect(await second.promoteDue()).toBe(1);
    expect(await second.read()).toEqual({ id, data: 'later', attempt: 1, delivery: expect.any(Number) });
    await second.close();
  });

  it('purges expired result records while storing new ones, any queue of the file', async () => {
    const file = freshFile();
    const a = new SqliteQueue(file, { name: 'a' });
    const b = new SqliteQueue(file, { name: 'b' });
    await a.setResults([{ jobId: 'kept', record: 'kept', ttlMs: 60_000 }]);
    await a.setResults(Array.from({ length: 50 }, (_, i) => ({ jobId: `short-${i}`, record: 'x', ttlMs: 1 })));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const rows = () => (a['connection']().db.prepare('SELECT count(*) AS n FROM taskmill_results').get() as { n: number }).n;
    expect(rows()).toBe(51);
    expect(await a.getResult('short-0')).toBeNull();
    await b.setResults([{ jobId: 'other', record: 'y', ttlMs: 60_000 }]);
    expect(rows()).toBe(2);
    expect(await a.getResult('kept')).toBe('kept');
    await a.close();
    await b.close();
  });

  it('keeps result job ids with lone surrogates apart from their U+FFFD look-alikes', async () => {
    const queue = new SqliteQueue(':memory:');
    await queue.setResults([
      { jobId: 'job \ud800', record: 'surrogate', ttlMs: 60_000 },
      { jobId: 'job \ufffd', record: 'replacement', ttlMs: 60_000 },
    ]);
    expect(await queue.getResult('job \ud800')).toBe('surrogate');
    expect(await queue.getResult('job \ufffd')).toBe('replacement');
    await queue.close();
  });

  it('refuses a bad runAt, a retry without runAt and bad result records with ConfigError, writing nothing', async () => {
    const queue = new SqliteQueue(':memory:');
    for (const runAt of [Number.NaN, Infinity, '1000' as unknown as number]) {
      await expect(queue.write('x', { runAt })).rejects.toBeInstanceOf(ConfigError);
      await expect(queue.writeBatch(['x'], { runAt })).rejects.toBeInstanceOf(ConfigError);
    }
    const id = await queue.write('x');
    await queue.read();
    await expect(queue.retry(id, 'y', undefined as unknown as number)).rejects.toBeInstanceOf(ConfigError);
    await expect(queue.retry(id, 7 as unknown as string, Date.now())).rejects.toBeInstanceOf(ConfigError);
    const good = { jobId: 'ok', record: 'r', ttlMs: 1000 };
    for (const bad of [
      { jobId: '', record: 'r', ttlMs: 1000 },
      { jobId: 'j', record: 5 as unknown as string, ttlMs: 1000 },
      { jobId: 'j', record: 'r', ttlMs: 0 },
      { jobId: 'j', record: 'r', ttlMs: Number.NaN },
    ]) {
      await expect(queue.setResults([good, bad])).rejects.toBeInstanceOf(ConfigError);
    }
    expect(await queue.getResult('ok')).toBeNull();
    await expect(queue.getResult('')).rejects.toBeInstanceOf(ConfigError);
    expect(await queue.stats()).toEqual({ ready: 0, leased: 1, failed: 0, delayed: 0 });
    await queue.close();
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
    expect(await queue.read()).toEqual({ id, data: 'x', attempt: 1, delivery: expect.any(Number) });
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
    for (const bad of odd) {
      expect(await queue.retry(bad, 'y', Date.now())).toBe(false);
      expect(await queue.remove(bad)).toBe(false);
    }
    expect(await queue.ackBatch([id])).toEqual([]);
    await queue.close();
  });

  it('fences a batch spanning several reads by each id’s own delivery', async () => {
    const queue = new SqliteQueue(':memory:');
    await queue.writeBatch(['a', 'b', 'c', 'd', 'e']);
    const first = await queue.readBatch(2);
    const second = await queue.readBatch(3);
    expect(new Set([...first, ...second].map((m) => m.delivery)).size).toBe(2);
    const ids = [second[0]!.id, first[0]!.id, second[1]!.id, first[1]!.id, second[2]!.id];
    // A token of the other read, a token of no read, a token that is no integer: those three are refused.
    const deliveries = [second[0]!.delivery, first[0]!.delivery, first[0]!.delivery, 12.5, second[0]!.delivery + 1];
    expect(await queue.extend(ids, deliveries)).toEqual([ids[2], ids[3], ids[4]]);
    expect(await queue.ackBatch(ids, deliveries)).toEqual([ids[2], ids[3], ids[4]]);
    expect(await queue.stats()).toEqual({ ready: 0, leased: 3, failed: 0, delayed: 0 });
    // Well-formed ids all, one of them with a stale token: the others are acked, that one refused.
    expect(await queue.ackBatch([ids[2]!, ids[3]!], [second[1]!.delivery, second[1]!.delivery])).toEqual([ids[3]]);
    expect(await queue.stats()).toEqual({ ready: 0, leased: 2, failed: 0, delayed: 0 });
    // An id given twice is acked once, and neither is refused.
    expect(await queue.ackBatch([ids[3]!, ids[4]!, ids[3]!], [first[1]!.delivery, second[2]!.delivery, first[1]!.delivery])).toEqual([]);
    expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    await queue.close();
  });
});
