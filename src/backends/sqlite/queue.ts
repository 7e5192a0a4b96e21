/**
 * SqliteQueue: the embedded default. One file holds many queues (rows keyed
 * by queue name); several processes may share it. WAL lets readers run beside
 * the single writer; every claim is one UPDATE … RETURNING inside BEGIN
 * IMMEDIATE, so two consumers can never lease the same row.
 *
 * Lease deadlines, run-at times and result expiries are this machine's wall
 * clock in ms (all processes sharing a file share the machine).
 * better-sqlite3 is synchronous: each method does its work at once and
 * returns a settled promise.
 *
 * A message row is in exactly one state: ready (lease_until and run_at NULL),
 * leased (lease_until set) or delayed (run_at set, until promoteDue clears
 * it). Delayed rows are outside the ready index, so a million of them cost a
 * claim nothing.
 */
import type Database from 'better-sqlite3';
import { betterSqlite3 } from '../drivers.js';
import { z } from 'zod';
import { ConfigError, QueueConnectionError, TaskmillError } from '../../shared/errors.js';
import { integer, parseOptions, type DeclaresEvery } from '../../shared/options.js';
import { isPermanentSqliteError } from '../permanent-errors.js';
import { SQL, migrate } from './schema.js';
import {
  BaseQueue,
  checkKeyTtl,
  checkPriority,
  checkUniqueKey,
  checkResultList,
  checkResultRecord,
  checkRetryRunAt,
  checkSlotTtl,
  checkWriteRunAt,
  type WriteOnceOptions,
  type WriteOnceResult,
  type FailedMessage,
  type QueueMessage,
  type QueueOptions,
  type QueueStats,
  type ResultRecord,
  type WriteOptions,
} from '../base.js';

export interface SqliteQueueOptions extends QueueOptions {
  /** How long a statement waits for another process's write lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/** SqliteQueue's own options (the shared ones are BaseQueue's). @internal */
export const SQLITE_DEFAULTS = { busyTimeoutMs: 5000 } as const;

const sqliteOptionsSchema = z.object({
  busyTimeoutMs: integer(0).default(SQLITE_DEFAULTS.busyTimeoutMs),
});
const _declared: DeclaresEvery<z.input<typeof sqliteOptionsSchema>, Omit<SqliteQueueOptions, keyof QueueOptions>> = true;

type Statements = { [K in keyof typeof SQL]: Database.Statement };
type Stored = string | Buffer;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function encode(data: unknown): Stored {
  if (typeof data !== 'string') throw new ConfigError(`message data must be a string, got ${typeof data}`);
  return LONE_SURROGATE.test(data) ? Buffer.from(data, 'utf16le') : data;
}

function decode(stored: Stored): string {
  return typeof stored === 'string' ? stored : stored.toString('utf16le');
}

/** Message ids as JSON for json_each; ids that cannot be ours are left out (they are refused). */
function idList(ids: readonly string[]): string {
  const numbers: number[] = [];
  for (const id of ids) {
    if (typeof id === 'string' && /^[1-9][0-9]{0,15}$/.test(id)) {
      const n = Number(id);
      if (Number.isSafeInteger(n)) numbers.push(n);
    }
  }
  return JSON.stringify(numbers);
}

function refusedOf(ids: readonly string[], done: ReadonlyArray<{ id: number }>): string[] {
  const kept = new Set(done.map((row) => String(row.id)));
  return ids.filter((id) => !kept.has(id));
}

function describeSqliteError(error: unknown, busyTimeoutMs: number): string {
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && code.startsWith('SQLITE_BUSY')) {
    return `the database stayed locked by another connection for longer than busyTimeoutMs (${busyTimeoutMs} ms): ${message}`;
  }
  return typeof code === 'string' ? `${code}: ${message}` : message;
}

/** Read order of a claim's rows: highest priority, then oldest. */
function claimOrder(a: { id: number; priority: number }, b: { id: number; priority: number }): number {
  return b.priority - a.priority || a.id - b.id;
}

/** The stored run_at: NULL (ready) unless `runAt` is after `now`; whole ms, never early. */
function storedRunAt(runAt: number | undefined, now: number): number | null {
  return runAt !== undefined && runAt > now ? Math.ceil(runAt) : null;
}

interface StoredResultRecord {
  jobId: Stored;
  record: Stored;
  ttlMs: number;
}

function checkResults(records: readonly ResultRecord[], queue: BaseQueue): StoredResultRecord[] {
  checkResultList(records, queue);
  return records.map((entry: ResultRecord, i) => {
    const r = checkResultRecord(entry, i, queue);
    return { jobId: encode(r.jobId), record: encode(r.record), ttlMs: Math.ceil(r.ttlMs) };
  });
}

interface Connection {
  db: Database.Database;
  s: Statements;
  insertOne(data: Stored, runAt: number | undefined, priority: number): string;
  insertMany(datas: Stored[], runAt: number | undefined, priority: number): string[];
  insertUnique(key: string, data: Stored, ttlMs: number): string | null;
  insertOnce(key: string, data: Stored, runAt: number | undefined, priority: number, keyTtlMs: number | undefined): WriteOnceResult;
  claim(max: number): QueueMessage[];
  /** Runs a fenced statement (this owner, lease not expired) on `ids`; the rows it touched. */
  fenced(which: 'ack' | 'release' | 'extend', ids: readonly string[]): Array<{ id: number }>;
  fail(id: number, error: string): boolean;
  requeue(ids: string | null): number;
  setResults(records: StoredResultRecord[]): void;
  flush(): void;
}

/** Opens the file, creates the schema on first use, and prepares every statement and transaction once. */
function openConnection(path: string, busyTimeoutMs: number, queue: string, owner: string, leaseMs: number): Connection {
  const db = new (betterSqlite3())(path, { timeout: busyTimeoutMs });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.transaction(() => migrate(db, path)).immediate();
    const prepared: Record<string, Database.Statement> = {};
    for (const [key, sql] of Object.entries(SQL)) prepared[key] = db.prepare(sql);
    const s = prepared as Statements;

    const insert = (data: Stored, now: number, runAt: number | null, priority: number) =>
      String(s.insert.run({ queue, data, now, runAt, priority }).lastInsertRowid);
    const insertMany = db.transaction((datas: Stored[], runAt: number | undefined, priority: number) => {
      const now = Date.now();
      const stored = storedRunAt(runAt, now);
      return datas.map((data) => insert(data, now, stored, priority));
    });
    const insertUnique = db.transaction((key: string, data: Stored, ttlMs: number) => {
      const now = Date.now();
      // The expiry index makes this a cheap seek when nothing has expired.
      s.purgeSlots.run({ queue, now });
      if (s.claimSlot.run({ queue, key, until: now + ttlMs }).changes === 0) return null;
      return insert(data, now, null, 0);
    });
    const insertOnce = db.transaction((key: string, data: Stored, runAt: number | undefined, priority: number, keyTtlMs: number | undefined) => {
      const now = Date.now();
      const held = s.uniqueHolder.get({ queue, key }) as { id: number; data: Stored; unique_until: number | null } | undefined;
      if (held) {
        if (held.unique_until === null || held.unique_until > now) return { id: String(held.id), duplicate: true as const, data: decode(held.data) };
        s.dropLapsedKey.run({ id: held.id });
      }
      const until = keyTtlMs === undefined ? null : now + keyTtlMs;
      const id = s.insertKeyed.run({ queue, data, now, runAt: storedRunAt(runAt, now), priority, key, until }).lastInsertRowid;
      return { id: String(id), duplicate: false as const };
    });
    const claim = db.transaction((max: number) => {
      const now = Date.now();
      return s.claim.all({ queue, owner, now, until: now + leaseMs, max }) as Array<{ id: number; data: Stored; attempt: number; priority: number }>;
    });
    const fail = db.transaction((id: number, error: string) => {
      const now = Date.now();
      const taken = s.takeForFail.get({ queue, owner, now, id }) as { data: Stored; attempt: number; priority: number } | undefined;
      if (!taken) return false;
      s.insertFailed.run({ id, queue, data: taken.data, attempt: taken.attempt, error, now, priority: taken.priority });
      return true;
    });
    const requeue = db.transaction((ids: string | null) => {
      if (ids === null) {
        s.requeueAll.run({ queue });
        return s.purgeAll.run({ queue }).changes;
      }
      s.requeueSome.run({ queue, ids });
      return s.purgeSome.run({ queue, ids }).changes;
    });
    const setResults = db.transaction((records: StoredResultRecord[]) => {
      const now = Date.now();
      s.purgeResults.run({ now, limit: 256 + 2 * records.length });
      for (const { jobId, record, ttlMs } of records) s.setResult.run({ queue, jobId, record, expiresAt: now + ttlMs });
    });
    const flush = db.transaction(() => {
      s.flushMessages.run({ queue });
      s.flushFailed.run({ queue });
      s.flushSlots.run({ queue });
      s.flushResults.run({ queue });
    });

    return {
      db,
      s,
      insertOne(data, runAt, priority) {
        const now = Date.now();
        return insert(data, now, storedRunAt(runAt, now), priority);
      },
      insertMany: (datas, runAt, priority) => (datas.length === 0 ? [] : insertMany.immediate(datas, runAt, priority)),
      insertUnique: (key, data, ttlMs) => insertUnique.immediate(key, data, ttlMs),
      insertOnce: (key, data, runAt, priority, keyTtlMs) => insertOnce.immediate(key, data, runAt, priority, keyTtlMs),
      claim(max) {
        const rows = claim.immediate(max);
        // RETURNING gives no order guarantee.
        rows.sort(claimOrder);
        return rows.map((row) => ({ id: String(row.id), data: decode(row.data), attempt: row.attempt }));
      },
      fenced(which, ids) {
        const now = Date.now();
        const params = { queue, owner, now, until: now + leaseMs, ids: idList(ids) };
        if (which === 'release') {
          s.release.run(params);
          return [];
        }
        return s[which].all(params) as Array<{ id: number }>;
      },
      fail: (id, error) => fail.immediate(id, error),
      requeue: (ids) => requeue.immediate(ids),
      setResults: (records) => {
        if (records.length > 0) setResults.immediate(records);
      },
      flush: () => flush.immediate(),
    };
  } catch (error) {
    db.close();
    throw error;
  }
}

export class SqliteQueue extends BaseQueue {
  readonly path: string;
  readonly busyTimeoutMs: number;
  private conn: Connection | null = null;
  private closed = false;

  constructor(path: string, options: SqliteQueueOptions = {}) {
    super(options);
    if (typeof path !== 'string' || path.trim() === '') {
      throw new ConfigError('SQLite path is empty: give a file path (e.g. taskmill.sqlite) or :memory:');
    }
    this.path = path;
    this.busyTimeoutMs = parseOptions(sqliteOptionsSchema, options, new.target.name).busyTimeoutMs;
  }

  /** Runs `work` on the open connection; input errors reject as they are, driver errors as QueueConnectionError. */
  private run<T>(what: string, work: (c: Connection) => T): Promise<T> {
    try {
      return Promise.resolve(work(this.connection()));
    } catch (error) {
      if (error instanceof TaskmillError) return Promise.reject(error);
      const reason = describeSqliteError(error, this.busyTimeoutMs);
      const code = (error as { code?: unknown } | null)?.code;
      return Promise.reject(
        new QueueConnectionError(`SQLite queue "${this.name}" (${this.path}): ${what} failed: ${reason}`, {
          permanent: isPermanentSqliteError(error),
          ...(typeof code === 'string' ? { driverCode: code } : {}),
        }),
      );
    }
  }

  private connection(): Connection {
    if (this.closed) throw new QueueConnectionError(`SQLite queue "${this.name}" (${this.path}) is closed`);
    if (!this.conn) this.conn = openConnection(this.path, this.busyTimeoutMs, this.name, this.owner, this.leaseMs);
    return this.conn;
  }

  override async open(): Promise<void> {
    await this.run('open', () => undefined);
  }

  write(data: string, options: WriteOptions = {}): Promise<string> {
    return this.run('write', (c) => c.insertOne(encode(data), checkWriteRunAt(options.runAt, this, 'write'), checkPriority(options.priority)));
  }

  /** Appends several messages in one transaction (all delayed until `options.runAt` if it is in the future); resolves with their ids in order. */
  override writeBatch(datas: readonly string[], options: WriteOptions = {}): Promise<string[]> {
    return this.run('writeBatch', (c) => c.insertMany(datas.map(encode), checkWriteRunAt(options.runAt, this, 'writeBatch'), checkPriority(options.priority)));
  }

  readBatch(max: number): Promise<QueueMessage[]> {
    return this.run('read', (c) => {
      if (!Number.isInteger(max) || max < 0) throw new ConfigError(`invalid batch size ${String(max)}: must be an integer >= 0`);
      return max === 0 ? [] : c.claim(max);
    });
  }

  override writeOnce(key: string, data: string, options: WriteOnceOptions = {}): Promise<WriteOnceResult> {
    return this.run('writeOnce', (c) =>
      c.insertOnce(
        checkUniqueKey(key),
        encode(data),
        checkWriteRunAt(options.runAt, this, 'writeOnce'),
        checkPriority(options.priority),
        checkKeyTtl(options.keyTtlMs),
      ),
    );
  }

  ackBatch(ids: readonly string[]): Promise<string[]> {
    return this.run('ack', (c) => (ids.length === 0 ? [] : refusedOf(ids, c.fenced('ack', ids))));
  }

  release(ids: readonly string[]): Promise<void> {
    return this.run('release', (c) => {
      if (ids.length > 0) c.fenced('release', ids);
    });
  }

  extend(ids: readonly string[]): Promise<string[]> {
    return this.run('extend', (c) => (ids.length === 0 ? [] : refusedOf(ids, c.fenced('extend', ids))));
  }

  fail(id: string, error: string): Promise<boolean> {
    return this.run('fail', (c) => {
      const [numeric] = JSON.parse(idList([id])) as number[];
      return numeric === undefined ? false : c.fail(numeric, String(error));
    });
  }

  reclaim(): Promise<number> {
    return this.run('reclaim', (c) => c.s.reclaim.run({ queue: this.name, now: Date.now() }).changes);
  }

  failed(limit = 100): Promise<FailedMessage[]> {
    return this.run('failed', (c) => {
      if (!Number.isInteger(limit) || limit < 0) throw new ConfigError(`invalid limit ${String(limit)}: must be an integer >= 0`);
      const rows = c.s.listFailed.all({ queue: this.name, limit }) as Array<{
        id: number;
        data: Stored;
        attempt: number;
        error: string;
        failed_at: number;
      }>;
      return rows.map((row) => ({
        id: String(row.id),
        data: decode(row.data),
        attempt: row.attempt,
        error: row.error,
        failedAt: new Date(row.failed_at),
      }));
    });
  }

  requeueFailed(ids?: readonly string[]): Promise<number> {
    return this.run('requeueFailed', (c) => c.requeue(ids ? idList(ids) : null));
  }

  purgeFailed(ids?: readonly string[]): Promise<number> {
    return this.run('purgeFailed', (c) =>
      ids ? c.s.purgeSome.run({ queue: this.name, ids: idList(ids) }).changes : c.s.purgeAll.run({ queue: this.name }).changes,
    );
  }

  stats(): Promise<QueueStats> {
    return this.run('stats', (c) => {
      const row = c.s.stats.get({ queue: this.name }) as Required<QueueStats>;
      return { ready: row.ready, leased: row.leased, failed: row.failed, delayed: row.delayed };
    });
  }

  override retry(id: string, data: string, runAt: number): Promise<boolean> {
    return this.run('retry', (c) => {
      const stored = encode(data);
      const until = checkRetryRunAt(runAt, this);
      const [numeric] = JSON.parse(idList([id])) as number[];
      if (numeric === undefined) return false;
      const now = Date.now();
      const params = { queue: this.name, owner: this.owner, now, id: numeric, data: stored, runAt: storedRunAt(until, now) };
      return c.s.retry.run(params).changes === 1;
    });
  }

  override promoteDue(): Promise<number> {
    return this.run('promoteDue', (c) => c.s.promoteDue.run({ queue: this.name, now: Date.now() }).changes);
  }

  override remove(id: string): Promise<boolean> {
    return this.run('remove', (c) => {
      const [numeric] = JSON.parse(idList([id])) as number[];
      return numeric === undefined ? false : c.s.remove.run({ queue: this.name, id: numeric, now: Date.now() }).changes === 1;
    });
  }

  override setResults(records: readonly ResultRecord[]): Promise<void> {
    return this.run('setResults', (c) => c.setResults(checkResults(records, this)));
  }

  override getResult(jobId: string): Promise<string | null> {
    return this.run('getResult', (c) => {
      if (typeof jobId !== 'string' || jobId === '') throw new ConfigError('jobId must be a non-empty string');
      const row = c.s.getResult.get({ queue: this.name, jobId: encode(jobId), now: Date.now() }) as { record: Stored } | undefined;
      return row ? decode(row.record) : null;
    });
  }

  writeUnique(key: string, data: string, ttlMs: number): Promise<string | null> {
    return this.run('writeUnique', (c) => {
      if (typeof key !== 'string' || key === '') throw new ConfigError('slot key must be a non-empty string');
      return c.insertUnique(key, encode(data), Math.ceil(checkSlotTtl(ttlMs, this)));
    });
  }

  flush(): Promise<void> {
    return this.run('flush', (c) => c.flush());
  }

  length(): Promise<number> {
    return this.run('length', (c) => (c.s.length.get({ queue: this.name }) as { n: number }).n);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const conn = this.conn;
    this.conn = null;
    conn?.db.close();
  }
}
