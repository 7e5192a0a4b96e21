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
 * claim nothing. A message parked on a concurrency key is a delayed row that
 * only a freed slot makes ready (sqlite/gates.ts).
 */
import { z } from 'zod';
import { ConfigError, QueueConnectionError, TaskmillError } from '../../shared/errors.js';
import { integer, parseOptions, type DeclaresEvery } from '../../shared/options.js';
import { isPermanentSqliteError } from '../permanent-errors.js';
import { decode, encode, idList, openConnection, rowId, type Connection, type Stored, type StoredResultRecord } from './connection.js';
import { transactionWrites } from './transaction.js';
import {
  LISTENER_TTL_MS,
  checkCancel,
  checkEventRead,
  checkHeartbeat,
  checkFindJob,
  jobNeedle,
  checkListenerId,
  type CancelOutcome,
  type ConsumerRecord,
  type FoundMessage,
  type ThroughputBucket,
  type ThroughputCount,
  type EventPage,
  type QueueControl,
} from '../control.js';
import {
  BaseQueue,
  checkStartGates,
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
  type StartOutcome,
  type TransactionWriteOptions,
  type StartGates,
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

/** The ids of `ids` that were not `done` (the rows a fenced call touched, each at most once). */
function refusedOf(ids: readonly string[], done: readonly number[]): string[] {
  // Each done row is one of ids, so as many rows as ids means every id was done.
  if (done.length === ids.length) return [];
  const kept = new Set(done.map(String));
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

function checkResults(records: readonly ResultRecord[], queue: BaseQueue): StoredResultRecord[] {
  checkResultList(records, queue);
  return records.map((entry: ResultRecord, i) => {
    const r = checkResultRecord(entry, i, queue);
    return { jobId: encode(r.jobId), record: encode(r.record), ttlMs: Math.ceil(r.ttlMs) };
  });
}

export class SqliteQueue extends BaseQueue {
  readonly path: string;
  readonly busyTimeoutMs: number;
  private conn: Connection | null = null;
  private closed = false;
  /**
   * Ids this instance got 'started' for with a concurrency gate: only their ack must free a slot,
   * so every other ack stays the plain DELETE. (Whoever acks a message holds its lease, and the
   * lease is this instance's.) fail, retry and release always look at the row's slot instead.
   */
  private readonly slotHolders = new Set<string>();

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
    return this.settle(what, () => work(this.connection()));
  }

  private settle<T>(what: string, work: () => T): Promise<T> {
    try {
      return Promise.resolve(work());
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

  /**
   * Synchronous within the call (the promise is settled already): better-sqlite3 transactions
   * are synchronous, so the write must land before `db.transaction()`'s function returns. It
   * does not open this queue's own connection (that would wait on the app's write lock): the
   * schema, when the file has none yet, is created in the app's transaction (transaction.ts).
   */
  override writeInTransaction(tx: unknown, data: string, options: TransactionWriteOptions = {}): Promise<WriteOnceResult> {
    return this.settle('writeInTransaction', () => {
      const writes = transactionWrites(tx, this.path, this.name);
      const stored = encode(data);
      const runAt = checkWriteRunAt(options.runAt, this, 'writeInTransaction');
      const priority = checkPriority(options.priority);
      if (options.uniqueKey === undefined) return { id: writes.insertOne(stored, runAt, priority), duplicate: false as const };
      return writes.insertOnce(checkUniqueKey(options.uniqueKey), stored, runAt, priority, checkKeyTtl(options.keyTtlMs));
    });
  }

  readBatch(max: number): Promise<QueueMessage[]> {
    return this.run('read', (c) => {
      if (!Number.isInteger(max) || max < 0) throw new ConfigError(`invalid batch size ${String(max)}: must be an integer >= 0`);
      return max === 0 ? [] : c.claim(max, this.nextDelivery());
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

  ackBatch(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
    return this.run('ack', (c) => {
      if (ids.length === 0) return [];
      const holders = this.slotHolders.size === 0 ? [] : ids.filter((id) => this.slotHolders.has(id));
      if (holders.length === 0) return refusedOf(ids, c.fenced('ack', ids, deliveries));
      const refused = refusedOf(ids, c.ackHolders(ids, deliveries, new Set(holders)));
      for (const id of holders) this.slotHolders.delete(id);
      return refused;
    });
  }

  release(ids: readonly string[], deliveries?: readonly number[]): Promise<void> {
    return this.run('release', (c) => {
      if (ids.length === 0) return;
      c.release(ids, deliveries);
      for (const id of ids) this.slotHolders.delete(id);
    });
  }

  extend(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
    return this.run('extend', (c) => (ids.length === 0 ? [] : refusedOf(ids, c.fenced('extend', ids, deliveries))));
  }

  fail(id: string, error: string, delivery?: number): Promise<boolean> {
    return this.run('fail', (c) => {
      const numeric = rowId(id);
      if (numeric === undefined) return false;
      const failed = c.fail(numeric, String(error), delivery ?? null);
      this.slotHolders.delete(id);
      return failed;
    });
  }

  reclaim(): Promise<number> {
    return this.run('reclaim', (c) => c.reclaim());
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

  override retry(id: string, data: string, runAt: number, delivery?: number): Promise<boolean> {
    return this.run('retry', (c) => {
      const stored = encode(data);
      const until = checkRetryRunAt(runAt, this);
      const numeric = rowId(id);
      if (numeric === undefined) return false;
      const retried = c.retry(numeric, stored, until, delivery ?? null);
      this.slotHolders.delete(id);
      return retried;
    });
  }

  override promoteDue(): Promise<number> {
    return this.run('promoteDue', (c) => c.s.promoteDue.run({ queue: this.name, now: Date.now() }).changes);
  }

  override remove(id: string): Promise<boolean> {
    return this.run('remove', (c) => {
      const numeric = rowId(id);
      return numeric === undefined ? false : c.remove(numeric);
    });
  }

  override cancel(id: string, jobId: string): Promise<CancelOutcome> {
    return this.run('cancel', (c) => {
      checkCancel(id, jobId, this.name);
      const numeric = rowId(id);
      return numeric === undefined ? false : c.control.cancel(numeric, encode(jobId));
    });
  }

  override control(): Promise<QueueControl> {
    return this.run('control', (c) => {
      const now = Date.now();
      return { cancels: c.control.cancelsFor(now), listening: c.control.listening(now) };
    });
  }

  override registerListener(listenerId: string): Promise<number> {
    return this.run('registerListener', (c) => {
      checkListenerId(listenerId, this.name);
      return c.control.listen(listenerId, Date.now() + LISTENER_TTL_MS);
    });
  }

  override unregisterListener(listenerId: string): Promise<void> {
    return this.run('unregisterListener', (c) => c.control.unlisten(String(listenerId)));
  }

  override publishEvents(events: readonly string[]): Promise<void> {
    return this.run('publishEvents', (c) => c.control.publish(events));
  }

  override readEvents(after: number, max: number): Promise<EventPage> {
    return this.run('readEvents', (c) => {
      checkEventRead(after, max, this.name);
      return c.control.read(after, max);
    });
  }

  override heartbeat(consumerId: string, state: string, counts: readonly ThroughputCount[] = []): Promise<void> {
    return this.run('heartbeat', (c) => {
      checkHeartbeat(consumerId, state, counts, this.name);
      c.control.heartbeat(consumerId, state, counts, Date.now());
    });
  }

  override forgetConsumer(consumerId: string): Promise<void> {
    return this.run('forgetConsumer', (c) => c.control.forgetConsumer(String(consumerId)));
  }

  override consumers(): Promise<ConsumerRecord[]> {
    return this.run('consumers', (c) => c.control.consumers(Date.now()));
  }

  override findJob(jobId: string, limit: number): Promise<FoundMessage | null> {
    return this.run('findJob', (c) => {
      checkFindJob(jobId, limit, this.name);
      return c.control.findJob(jobNeedle(jobId), limit);
    });
  }

  override throughput(): Promise<ThroughputBucket[]> {
    return this.run('throughput', (c) => c.control.throughput(Date.now()));
  }

  override startGated(id: string, gates: StartGates, delivery?: number): Promise<StartOutcome> {
    return this.run('startGated', (c) => {
      checkStartGates(gates);
      const numeric = rowId(id);
      const outcome: StartOutcome = numeric === undefined ? { decision: 'lost' } : c.gates.start(numeric, gates, delivery ?? null);
      if (outcome.decision !== 'started') this.slotHolders.delete(id);
      else if (gates.concurrency) this.slotHolders.add(id);
      return outcome;
    });
  }

  override setResults(records: readonly ResultRecord[], messageIds?: readonly string[], deliveries?: readonly number[]): Promise<void> {
    return this.run('setResults', (c) => {
      const stored = checkResults(records, this);
      if (!messageIds || !deliveries) return c.setResults(stored);
      // A record of a message that cannot be ours is held by no lease: it is skipped.
      c.setResults(
        stored,
        stored.map((_, i) => ({ id: typeof messageIds[i] === 'string' ? rowId(messageIds[i]) : undefined, delivery: deliveries[i]! })),
      );
    });
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
    return this.run('flush', (c) => {
      c.flush();
      this.slotHolders.clear();
    });
  }

  length(): Promise<number> {
    return this.run('length', (c) => (c.s.length.get({ queue: this.name }) as { n: number }).n);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.slotHolders.clear();
    const conn = this.conn;
    this.conn = null;
    conn?.db.close();
  }
}
