/**
 * DatabaseQueue: the PostgreSQL backend on `pg`.
 *
 * - Claims are one statement (`UPDATE … FROM (SELECT … FOR UPDATE SKIP
 *   LOCKED)`), lease deadlines come from the database clock, and ack / fail /
 *   release / extend only touch rows this owner still holds. A crashed
 *   consumer's leases simply expire and are claimed again (at-least-once).
 * - Every write sends `pg_notify(channel, queue)` inside its own statement,
 *   so the wake-up is delivered on commit, never before the row is visible.
 * - With `listen` on, one dedicated client LISTENs (listener.ts), on
 *   `listenUrl` when given; `waitForMessages` never waits longer than
 *   `pollIntervalMs`, so a lost NOTIFY costs latency, never a job. With
 *   `listen` off nothing LISTENs and the reader polls.
 * - Every operation is one statement on whichever pool connection is free,
 *   or one explicit transaction on one checked-out client (migrations): no
 *   session state (no SET, no temporary table, no session advisory lock). The
 *   hot queries go as named prepared statements (`preparedStatements`, on by
 *   default), the one thing a session keeps; `pooler: 'transaction'` says the
 *   URL is a transaction-mode pooler (config.ts), which turns them off by
 *   default and keeps anything that would need a session (LISTEN) off that URL.
 * - Delayed messages are rows with `run_at` set; the claim index holds no such
 *   row, so a million of them cost a claim nothing. Whether a `runAt` is still
 *   ahead is decided by the database's now(), like lease deadlines.
 *   `promoteDue` clears `run_at` of due rows (SKIP LOCKED, so concurrent
 *   callers split the work) and notifies like a write.
 * - Payloads and result records are stored as text when PostgreSQL can hold
 *   them exactly; strings it cannot (NUL, lone surrogates) go to a bytea
 *   column as UTF-16, so data round-trips unchanged.
 * - Rate limits and concurrency keys (startGated) are decided by one plpgsql
 *   function call (gates.ts); leases that hold a slot free it, and wake a
 *   parked job, in the statement that ends them.
 * - Every query has a deadline (queryTimeoutMs): one that misses it costs its
 *   connection and the pool's idle ones (deadline.ts), so a silent network
 *   path is left within one deadline; the LISTEN connection is pinged.
 * - Errors from the driver become QueueConnectionError with every URL and the
 *   password redacted (postgres-config.ts, which also parses the URL and
 *   options); the pool and the LISTEN client have error listeners, so a
 *   server restart never kills the process.
 */
import { inspect } from 'node:util';
import type pg from 'pg';
import { pg as loadPg } from '../drivers.js';
import { ConfigError, QueueConnectionError } from '../../shared/errors.js';
import {
  BaseQueue,
  checkKeyTtl,
  checkPriority,
  checkUniqueKey,
  type WriteOnceOptions,
  type WriteOnceResult,
  type FailedMessage,
  type QueueMessage,
  type QueueStats,
  type ResultRecord,
  type StartDecision,
  type StartGates,
  type StartOutcome,
  type TransactionWriteOptions,
  type WriteOptions,
} from '../base.js';
import { MIGRATION_QUERY_TIMEOUT_MS, migrate, SCHEMA_VERSION, statements, type Statements } from './schema.js';
import {
  checkText,
  checkTtl,
  decodeData,
  encodeData,
  compareRowIds,
  isRowId,
  isStorableText,
  rowIdArray,
  deliveryArray,
  resultParams,
  runAtParam,
  storableText,
  writeOptionsRunAt,
  splitLeases,
  validLeases,
  type JobRow,
} from './values.js';
import { connectionSettings, redactError, wrapDriverError, type PoolerMode, type PostgresQueueOptions } from './config.js';
import { gateParams, SlotHolders } from './gates.js';
import { NotifyListener } from './listener.js';
import { IdleClients, isQueryTimeout, QueryDeadlines, watchEveryMs } from './deadline.js';
import { WriteBatcher, type WriteRows } from './write-batcher.js';
import { PostgresControl } from './control.js';
import { ALL, AckClaim, type Acked } from './claim.js';
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
import { failedTransaction, isFailedTransaction, transactionClient } from './transaction.js';

export type { PostgresQueueOptions, DatabaseQueueOptions, PoolerMode } from './config.js';

/** Runs one statement: on this queue's pool, or on the application's transaction client. */
type Query = <R extends pg.QueryResultRow>(what: string, text: string, values: unknown[]) => Promise<pg.QueryResult<R>>;
export { DEFAULT_SCHEMA, SCHEMA_VERSION } from './schema.js';

/**
 * Calls whose work grows with the data (a whole queue, a whole failed store, a producer's batch,
 * the heads of up to 2,000 messages for findJob): they get the migrations' deadline instead of
 * queryTimeoutMs, which is sized for a consumer's calls.
 */
const LONG_CALLS: ReadonlySet<string> = new Set(['findJob', 'flush', 'purgeFailed', 'requeueFailed', 'writeBatch']);

/** The LISTEN connection is pinged every queryTimeoutMs, but never more often than this. */
const LISTEN_PING_MIN_MS = 250;

/** Rows one promoteDue statement makes ready: bounds its transaction and locks, however many are due. */
const PROMOTE_BATCH = 5000;
/** Most coalesced writes in one statement (write-batcher.ts), and most payload characters. */
const WRITE_ROWS_MAX = 1000;
const WRITE_CHARS_MAX = 1_000_000;

function checkMax(max: number, what = 'batch size'): number {
  if (!Number.isInteger(max) || max < 0) throw new ConfigError(`invalid ${what} ${String(max)}: must be an integer >= 0`);
  return max;
}

/** A claimed row. */
type ClaimRow = JobRow & { holds_slot: boolean };
/** ackClaim's rows: the claimed ones, and one more with id NULL that says what it acked. */
type AckClaimRow = ClaimRow & { acked: number | null; acked_ids: string[] | null };

export class PostgresQueue extends BaseQueue {
  override readonly blocking: boolean;
  readonly schema: string;
  readonly listen: boolean;
  /** `'transaction'`: the URL goes through a transaction-mode pooler (no session state, no named statements, LISTEN only on listenUrl). */
  readonly pooler: PoolerMode;
  readonly pollIntervalMs: number;
  readonly poolSize: number;
  /** Whether the hot queries run as named prepared statements (option `preparedStatements`). */
  readonly preparedStatements: boolean;
  /** The connection URL with its password replaced by `***`. */
  readonly redactedUrl: string;
  /** `listenUrl` with its password replaced by `***`, when one was given. */
  readonly redactedListenUrl: string | undefined;

  readonly #secrets: string[];
  readonly #pool: pg.Pool;
  readonly #deadlines: QueryDeadlines;
  readonly #idle: IdleClients;
  readonly #queryTimeoutMs: number;
  readonly #sql: Statements;
  /** Statement text → its prepared statement's name; empty with `preparedStatements: false`. */
  readonly #named = new Map<string, string>();
  readonly #channel: string;
  #opening: Promise<void> | undefined;
  /** open() has succeeded: a query need not wait a turn for it (a claim goes out at once; deadline.ts). */
  #opened = false;
  /** Set when close() starts: no new write is taken, those taken are written first. */
  #closing = false;
  #closed = false;
  #poolWarned = false;
  readonly #notify: NotifyListener;
  /** Leased ids whose rows hold a concurrency slot: their ack frees it. */
  readonly #holders = new SlotHolders();
  readonly #control: PostgresControl;
  /** Concurrent single writes share one statement and one commit. */
  readonly #writes: WriteBatcher;
  /** Acks ride the next claim when one is in flight (claim.ts). */
  readonly #acks = new AckClaim((ids, deliveries) => this.#ack(ids, deliveries));

  constructor(connectionString: string, options: PostgresQueueOptions = {}) {
    super(options);
    const settings = connectionSettings(connectionString, options, new.target.name);
    this.#secrets = settings.secrets;
    this.redactedUrl = settings.redactedUrl;
    this.schema = settings.schema;
    this.listen = settings.listen;
    this.pooler = settings.pooler;
    this.redactedListenUrl = settings.redactedListenUrl;
    this.blocking = this.listen;
    this.pollIntervalMs = settings.pollIntervalMs;
    this.poolSize = settings.poolSize;
    this.preparedStatements = settings.preparedStatements;
    // No query_timeout on the pool's clients: #deadlines keeps the deadlines of its queries (deadline.ts).
    const { query_timeout: _perQueryTimer, ...poolClientConfig } = settings.clientConfig;
    this.#pool = new (loadPg().Pool)({ ...poolClientConfig, max: this.poolSize, idleTimeoutMillis: 30_000 });
    this.#deadlines = new QueryDeadlines(this.#pool, watchEveryMs(settings.queryTimeoutMs), this.poolSize > 1);
    this.#idle = new IdleClients(this.#pool);
    this.#queryTimeoutMs = settings.queryTimeoutMs;
    this.#pool.on('error', (error) => {
      // An idle connection died (server restart, network). The pool drops it; the next query reconnects.
      // One warning per outage: the flag is cleared by the next query that succeeds.
      if (this.#poolWarned || this.#closed) return;
      this.#poolWarned = true;
      this.warn(`taskmill: PostgreSQL connection lost (${this.#redact(error)}); reconnecting on next use`);
    });
    this.#sql = statements(this.schema);
    if (this.preparedStatements) {
      // The statements run per job or per batch of jobs: parsed and planned once per connection.
      const hot = [
        this.#sql.claim,
        this.#sql.ack,
        this.#sql.ackClaim,
        this.#sql.ackHolders,
        this.#sql.writeRows,
        this.#sql.extend,
        this.#sql.setResults,
        this.#sql.fail,
        this.#sql.retry,
      ];
      for (const [i, text] of hot.entries()) this.#named.set(text, `taskmill_${i}`);
    }
    // One pool connection is left to reads, acks and the rest while writes pile up.
    this.#writes = new WriteBatcher({
      flush: (rows) => this.#writeRows(rows),
      maxInFlight: Math.max(1, this.poolSize - 1),
      maxRows: WRITE_ROWS_MAX,
      maxChars: WRITE_CHARS_MAX,
    });
    this.#control = new PostgresControl(
      this.schema,
      this.name,
      this.owner,
      (what, text, values) => this.#query(what, text, values),
      (id) => this.remove(id),
    );
    // Channel names are identifiers (max 63 bytes); a truncated collision only causes a spare wake-up.
    this.#channel = `taskmill_${this.schema}`.slice(0, 63);
    this.#notify = new NotifyListener({
      clientConfig: settings.listenClientConfig,
      channel: this.#channel,
      payload: this.name,
      pollIntervalMs: this.pollIntervalMs,
      pingEveryMs: Math.max(LISTEN_PING_MIN_MS, settings.queryTimeoutMs),
      warn: (message) => this.warn(message),
      redact: (error) => this.#redact(error),
    });
  }

  // ── connection, errors, inspection ────────────────────────────────────

  /** Creates/upgrades the schema and starts LISTENing. Idempotent; every other method calls it. */
  override open(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    this.#opening ??= (async () => {
      try {
        await migrate(this.#pool, this.schema, SCHEMA_VERSION, this.#queryTimeoutMs);
      } catch (error) {
        throw this.#wrap('open (schema migration)', error);
      }
      if (this.listen) await this.#notify.start();
      this.#opened = true;
    })().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    return this.#opening;
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    await this.#writes.drain();
    await this.#acks.drain();
    this.#closed = true;
    this.#holders.clear();
    this.#deadlines.releaseKept();
    await Promise.allSettled([this.#notify.close(), this.#pool.end()]);
    this.#deadlines.stop();
  }

  /** True while the LISTEN connection is up (always false with `listen: false`). */
  get listening(): boolean {
    return this.#notify.listening;
  }

  #closedError(): QueueConnectionError {
    return new QueueConnectionError(`PostgreSQL queue "${this.name}" (${this.redactedUrl}) is closed`);
  }

  #redact(error: unknown): string {
    return redactError(error, this.#secrets);
  }

  #wrap(what: string, error: unknown): Error {
    return wrapDriverError(what, error, this.#secrets, this.redactedUrl);
  }

  /** `keep`: a claim, sent on a client kept for claims when it is free (deadline.ts says why). */
  async #query<R extends pg.QueryResultRow>(what: string, text: string, values: unknown[], keep = false): Promise<pg.QueryResult<R>> {
    if (!this.#opened) await this.open();
    try {
      const name = this.#named.get(text);
      const result = await this.#deadlines.query<R>(
        name === undefined ? { text, values } : { name, text, values },
        LONG_CALLS.has(what) ? MIGRATION_QUERY_TIMEOUT_MS : this.#queryTimeoutMs,
        keep,
      );
      this.#poolWarned = false;
      return result;
    } catch (error) {
      // The pool has replaced the client this query timed out on; its idle ones went out over the same path.
      if (isQueryTimeout(error) && !this.#closed) {
        const reason = new Error(`a query got no reply within ${this.#queryTimeoutMs} ms; replacing the pool's idle connections`);
        this.#idle.destroyAll(reason);
        this.#deadlines.destroyKept(reason);
      }
      throw this.#closed ? this.#closedError() : this.#wrap(what, error);
    }
  }

  [inspect.custom](): string {
    const pooled = this.pooler === 'none' ? '' : `, pooler: ${JSON.stringify(this.pooler)}`;
    const listenUrl = this.redactedListenUrl === undefined ? '' : `, listenUrl: ${JSON.stringify(this.redactedListenUrl)}`;
    return `DatabaseQueue { name: ${JSON.stringify(this.name)}, url: ${JSON.stringify(this.redactedUrl)}, schema: ${JSON.stringify(this.schema)}, listen: ${this.listen}${pooled}${listenUrl} }`;
  }

  toJSON(): Record<string, unknown> {
    return {
      type: 'DatabaseQueue',
      name: this.name,
      url: this.redactedUrl,
      schema: this.schema,
      listen: this.listen,
      pooler: this.pooler,
      ...(this.redactedListenUrl === undefined ? {} : { listenUrl: this.redactedListenUrl }),
      owner: this.owner,
    };
  }

  // ── LISTEN / NOTIFY ──────────────────────────────────────────────────

  /**
   * Resolves on a NOTIFY for this queue, after min(timeoutMs, pollIntervalMs),
   * or at once on abort / close / when a notification came since the last read.
   */
  override waitForMessages(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (!this.listen || this.#closed || signal.aborted) return Promise.resolve();
    return this.#notify.wait(timeoutMs, signal, () => void this.open().catch(() => {}));
  }

  // ── the contract ─────────────────────────────────────────────────────

  /**
   * A `runAt` still ahead by the database clock stores the message delayed. Concurrent calls
   * are coalesced into one statement (write-batcher.ts); each resolves once its row is committed.
   */
  override async write(data: string, options?: WriteOptions): Promise<string> {
    const [text, bytes] = encodeData(data);
    const runAt = writeOptionsRunAt(options, this, 'write');
    const priority = checkPriority(options?.priority);
    if (this.#closing) throw this.#closedError();
    return this.#writes.add(text, bytes, runAt, priority);
  }

  async #writeRows(rows: WriteRows): Promise<string[]> {
    const count = rows.texts.length;
    const result = await this.#query<{ ids: string[] }>(count === 1 ? 'write' : `write (${count} concurrent writes in one statement)`, this.#sql.writeRows, [
      this.name,
      rows.texts,
      rows.bytes,
      rows.runAts,
      rows.priorities,
      this.#channel,
    ]);
    return result.rows[0]!.ids;
  }

  async #writeWith(query: Query, data: string, options: WriteOptions | undefined): Promise<string> {
    const [text, bytes] = encodeData(data);
    const runAt = writeOptionsRunAt(options, this, 'write');
    const priority = checkPriority(options?.priority);
    const result = await query<{ id: string }>('write', this.#sql.write, [this.name, text, bytes, this.#channel, runAt, priority]);
    return result.rows[0]!.id;
  }

  /**
   * The write (or writeOnce) goes through the application's client, so it commits or rolls back
   * with its transaction; its NOTIFY, being transactional, wakes consumers on the commit only.
   * The schema is made sure of first, on this queue's own pool, outside that transaction.
   */
  override async writeInTransaction(tx: unknown, data: string, options: TransactionWriteOptions = {}): Promise<WriteOnceResult> {
    const client = transactionClient(tx, this.name);
    const { uniqueKey, ...write } = options;
    await this.open();
    const query: Query = async (what, text, values) => {
      try {
        return (await client.query(text, values)) as pg.QueryResult<never>;
      } catch (error) {
        if (isFailedTransaction(error)) throw failedTransaction(this.name);
        throw this.#wrap(`${what} in your transaction`, error);
      }
    };
    if (uniqueKey === undefined) return { id: await this.#writeWith(query, data, write), duplicate: false };
    return this.#writeOnceWith(query, uniqueKey, data, write);
  }

  /** Insert-or-find under the unique index; a lapsed hold is let go and the insert tried again. */
  override async writeOnce(key: string, data: string, options?: WriteOnceOptions): Promise<WriteOnceResult> {
    return this.#writeOnceWith((what, text, values) => this.#query(what, text, values), key, data, options);
  }

  async #writeOnceWith(query: Query, key: string, data: string, options: WriteOnceOptions | undefined): Promise<WriteOnceResult> {
    checkText(checkUniqueKey(key), 'unique key');
    const [text, bytes] = encodeData(data);
    const runAt = writeOptionsRunAt(options, this, 'writeOnce');
    const priority = checkPriority(options?.priority);
    const ttl = checkKeyTtl(options?.keyTtlMs) ?? null;
    // Each turn either writes, finds a live holder, or sees the holder go (done, or lapsed and let go):
    // a few turns settle any race, since the unique index admits one holder at a time.
    for (let turn = 0; ; turn++) {
      const written = await query<{ id: string }>('writeOnce', this.#sql.writeOnce, [this.name, key, text, bytes, runAt, priority, ttl, this.#channel]);
      if (written.rows[0]) return { id: written.rows[0].id, duplicate: false };
      const held = await query<{ id: string; data: string | null; data_utf16: Buffer | null; lapsed: boolean | null }>('writeOnce', this.#sql.writeOnceHolder, [
        this.name,
        key,
      ]);
      const holder = held.rows[0];
      if (holder && !holder.lapsed) return { id: holder.id, duplicate: true, data: decodeData(holder) };
      if (holder) await query('writeOnce', this.#sql.dropLapsedKey, [this.name, holder.id]);
      if (turn >= 10) throw new QueueConnectionError(`writeOnce: the key of queue "${this.name}" kept changing hands; try again`);
    }
  }

  /** Writes several messages in one statement (all delayed until `options.runAt` if given); resolves with their ids in input order. */
  override async writeBatch(datas: readonly string[], options?: WriteOptions): Promise<string[]> {
    if (!Array.isArray(datas)) throw new ConfigError('writeBatch expects an array of strings');
    const encoded = datas.map(encodeData);
    const runAt = writeOptionsRunAt(options, this, 'writeBatch');
    const priority = checkPriority(options?.priority);
    if (encoded.length === 0) return [];
    const result = await this.#query<{ ids: string[] }>('writeBatch', this.#sql.writeBatch, [
      this.name,
      encoded.map(([text]) => text),
      encoded.map(([, bytes]) => bytes),
      this.#channel,
      runAt,
      priority,
    ]);
    return result.rows[0]!.ids;
  }

  async readBatch(max: number): Promise<QueueMessage[]> {
    checkMax(max);
    if (max === 0) return [];
    this.#notify.markRead();
    const delivery = this.nextDelivery();
    const claimed = await this.#acks.claim(async (acks): Promise<[ClaimRow[], Acked]> => {
      const params = [this.name, max, this.owner, this.leaseMs, delivery];
      if (!acks) return [(await this.#query<ClaimRow>('read', this.#sql.claim, params, true)).rows, ALL];
      const { rows } = await this.#query<AckClaimRow>(
        `read (with ${acks.ids.length} acks)`,
        this.#sql.ackClaim,
        [...params, rowIdArray(acks.ids), deliveryArray(acks.deliveries)],
        true,
      );
      const summary = rows.find((row) => row.id === null);
      return [rows.filter((row) => row.id !== null), summary?.acked_ids ?? ALL];
    });
    // RETURNING keeps no order: sort the (at most max) rows into read order.
    const rows = claimed.sort((a, b) => b.priority - a.priority || compareRowIds(a.id, b.id));
    return rows.map((row) => {
      if (row.holds_slot) this.#holders.add(row.id);
      return { id: row.id, data: decodeData(row), attempt: row.attempt, delivery };
    });
  }

  async ackBatch(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
    const [valid, tokens] = validLeases(ids, deliveries);
    if (valid.length === 0) return [...ids];
    const holding = this.#holders.among(valid);
    const acked =
      holding.length > 0 ? await this.#ackHolding(valid, tokens, holding) : tokens ? await this.#acks.ack(valid, tokens) : await this.#ack(valid, tokens);
    if (acked === ALL || acked.length === ids.length) return []; // every id acked (the common case): nothing to look up
    const done = new Set(acked);
    return ids.filter((id) => !done.has(id));
  }

  /** The ids acked, or ALL when every one of `ids` was (then the server sent back no id). */
  async #ack(ids: readonly string[], deliveries: readonly number[] | null): Promise<Acked> {
    const result = await this.#query<{ count: number; ids: string[] | null }>('ack', this.#sql.ack, [
      this.name,
      rowIdArray(ids),
      this.owner,
      deliveryArray(deliveries),
    ]);
    return result.rows[0]!.ids ?? ALL;
  }

  /** `holding` go through ackHolders (frees their slots, wakes parked jobs), the rest through the plain delete, side by side. */
  async #ackHolding(ids: readonly string[], deliveries: readonly number[] | null, holding: readonly string[]): Promise<string[]> {
    const [plain, plainTokens] = splitLeases(ids, deliveries, (id) => !this.#holders.has(id));
    const [, holdingTokens] = splitLeases(ids, deliveries, (id) => this.#holders.has(id));
    const [freed, acked] = await Promise.all([
      this.#query<{ ids: string[] }>('ack', this.#sql.ackHolders, [this.name, holding, this.owner, this.#channel, holdingTokens]),
      plain.length > 0 ? this.#ack(plain, plainTokens) : [],
    ]);
    this.#holders.forget(holding); // acked or refused (the lease is lost): held here no more
    return [...freed.rows[0]!.ids, ...(acked === ALL ? plain : acked)];
  }

  async release(ids: readonly string[], deliveries?: readonly number[]): Promise<void> {
    const [valid, tokens] = validLeases(ids, deliveries);
    if (valid.length === 0) return;
    await this.#query('release', this.#sql.release, [this.name, rowIdArray(valid), this.owner, this.#channel, deliveryArray(tokens)]);
    this.#holders.forget(valid);
  }

  async extend(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
    const [valid, tokens] = validLeases(ids, deliveries);
    if (valid.length === 0) return [...ids];
    const result = await this.#query<{ id: string }>('extend', this.#sql.extend, [
      this.name,
      rowIdArray(valid),
      this.owner,
      this.leaseMs,
      deliveryArray(tokens),
    ]);
    const done = new Set(result.rows.map((row) => row.id));
    const refused = ids.filter((id) => !done.has(id));
    this.#holders.forget(refused); // the lease is lost: its slot is not this instance's to free
    return refused;
  }

  async fail(id: string, error: string, delivery?: number): Promise<boolean> {
    if (!isRowId(id)) return false;
    const result = await this.#query<{ count: number }>('fail', this.#sql.fail, [
      this.name,
      id,
      this.owner,
      storableText(error),
      this.#channel,
      delivery ?? null,
    ]);
    this.#holders.delete(id);
    return (result.rows[0]?.count ?? 0) > 0;
  }

  async reclaim(): Promise<number> {
    const result = await this.#query<{ count: number }>('reclaim', this.#sql.reclaim, [this.name, this.#channel]);
    return result.rows[0]?.count ?? 0;
  }

  async failed(limit = 100): Promise<FailedMessage[]> {
    checkMax(limit, 'limit');
    const result = await this.#query<JobRow & { error: string; failed_at: Date }>('failed', this.#sql.failed, [this.name, limit]);
    return result.rows.map((row) => ({
      id: row.id,
      data: decodeData(row),
      attempt: row.attempt,
      error: row.error,
      failedAt: row.failed_at,
    }));
  }

  async requeueFailed(ids?: readonly string[]): Promise<number> {
    const chosen = ids === undefined ? null : ids.filter(isRowId);
    if (chosen && chosen.length === 0) return 0;
    const result = await this.#query<{ count: number }>('requeueFailed', this.#sql.requeueFailed, [this.name, chosen, this.#channel]);
    return result.rows[0]?.count ?? 0;
  }

  async purgeFailed(ids?: readonly string[]): Promise<number> {
    const chosen = ids === undefined ? null : ids.filter(isRowId);
    if (chosen && chosen.length === 0) return 0;
    const result = await this.#query('purgeFailed', this.#sql.purgeFailed, [this.name, chosen]);
    return result.rowCount ?? 0;
  }

  async stats(): Promise<QueueStats> {
    const result = await this.#query<Required<QueueStats>>('stats', this.#sql.stats, [this.name]);
    const row = result.rows[0];
    return { ready: row?.ready ?? 0, leased: row?.leased ?? 0, failed: row?.failed ?? 0, delayed: row?.delayed ?? 0 };
  }

  async length(): Promise<number> {
    const result = await this.#query<{ count: number }>('length', this.#sql.length, [this.name]);
    return result.rows[0]?.count ?? 0;
  }

  async flush(): Promise<void> {
    await this.#query('flush', this.#sql.flush, [this.name]);
    this.#holders.clear();
  }

  async writeUnique(key: string, data: string, ttlMs: number): Promise<string | null> {
    checkText(key, 'slot key');
    checkTtl(ttlMs, this, 'writeUnique', 'ttlMs');
    const [text, bytes] = encodeData(data);
    const result = await this.#query<{ id: string }>('writeUnique', this.#sql.writeUnique, [this.name, key, text, bytes, ttlMs, this.#channel]);
    return result.rows[0]?.id ?? null;
  }

  // ── job lifecycle ────────────────────────────────────────────────────

  override async retry(id: string, data: string, runAt: number, delivery?: number): Promise<boolean> {
    const [text, bytes] = encodeData(data);
    const at = runAtParam(runAt, this, 'retry');
    if (!isRowId(id)) return false;
    const result = await this.#query<{ count: number }>('retry', this.#sql.retry, [
      this.name,
      id,
      this.owner,
      text,
      bytes,
      at,
      this.#channel,
      delivery ?? null,
    ]);
    this.#holders.delete(id);
    return (result.rows[0]?.count ?? 0) > 0;
  }

  /** One call of start_gated() (gates.ts) decides; after 'started' with a concurrency gate the job holds a slot. */
  override async startGated(id: string, gates: StartGates, delivery?: number): Promise<StartOutcome> {
    const params = gateParams(gates);
    if (!isRowId(id)) return { decision: 'lost' };
    const result = await this.#query<{ decision: StartDecision; run_at: number | null }>('startGated', this.#sql.startGated, [
      this.name,
      id,
      this.owner,
      this.#channel,
      ...params,
      delivery ?? null,
    ]);
    const { decision, run_at: runAt } = result.rows[0] ?? { decision: 'lost' as const, run_at: null };
    if (decision === 'started' && gates.concurrency) this.#holders.add(id);
    else this.#holders.delete(id);
    return runAt === null ? { decision } : { decision, runAt: Math.ceil(runAt) };
  }

  /** Promotes in batches of PROMOTE_BATCH, each its own short transaction, until fewer are due. */
  override async promoteDue(): Promise<number> {
    let total = 0;
    for (;;) {
      const result = await this.#query<{ count: number }>('promoteDue', this.#sql.promoteDue, [this.name, this.#channel, PROMOTE_BATCH]);
      const count = result.rows[0]?.count ?? 0;
      total += count;
      if (count < PROMOTE_BATCH) return total;
    }
  }

  override async remove(id: string): Promise<boolean> {
    if (!isRowId(id)) return false;
    const result = await this.#query<{ count: number }>('remove', this.#sql.remove, [this.name, id, this.#channel]);
    return (result.rows[0]?.count ?? 0) > 0;
  }

  override async cancel(id: string, jobId: string): Promise<CancelOutcome> {
    checkCancel(id, jobId, this.name);
    return isRowId(id) ? this.#control.cancel(id, jobId) : false;
  }

  override control(): Promise<QueueControl> {
    return this.#control.control();
  }

  override async registerListener(listenerId: string): Promise<number> {
    checkListenerId(listenerId, this.name);
    return this.#control.listen(listenerId, LISTENER_TTL_MS);
  }

  override unregisterListener(listenerId: string): Promise<void> {
    return this.#control.unlisten(String(listenerId));
  }

  override publishEvents(events: readonly string[]): Promise<void> {
    return this.#control.publish(events);
  }

  override async readEvents(after: number, max: number): Promise<EventPage> {
    checkEventRead(after, max, this.name);
    return this.#control.read(after, max);
  }

  override async heartbeat(consumerId: string, state: string, counts: readonly ThroughputCount[] = []): Promise<void> {
    checkHeartbeat(consumerId, state, counts, this.name);
    return this.#control.heartbeat(consumerId, state, counts);
  }

  override forgetConsumer(consumerId: string): Promise<void> {
    return this.#control.forgetConsumer(String(consumerId));
  }

  override consumers(): Promise<ConsumerRecord[]> {
    return this.#control.consumers();
  }

  override async findJob(jobId: string, limit: number): Promise<FoundMessage | null> {
    checkFindJob(jobId, limit, this.name);
    return this.#control.findJob(jobNeedle(jobId), limit);
  }

  override throughput(): Promise<ThroughputBucket[]> {
    return this.#control.throughput();
  }

  override async setResults(records: readonly ResultRecord[], messageIds?: readonly string[], deliveries?: readonly number[]): Promise<void> {
    const [jobIds, texts, bytes, ttls, fenceIds, fenceDeliveries] = resultParams(records, this, messageIds, deliveries);
    if (jobIds.length === 0) return;
    await this.#query('setResults', this.#sql.setResults, [this.name, jobIds, texts, bytes, ttls, fenceIds, fenceDeliveries, this.owner]);
  }

  override async getResult(jobId: string): Promise<string | null> {
    if (typeof jobId !== 'string' || jobId === '') throw new ConfigError('jobId must be a non-empty string');
    // A job id text cannot hold was refused by setResults, so nothing is stored under it.
    if (!isStorableText(jobId)) return null;
    const result = await this.#query<{ record: string | null; record_utf16: Buffer | null }>('getResult', this.#sql.getResult, [this.name, jobId]);
    const row = result.rows[0];
    return row ? decodeData({ data: row.record, data_utf16: row.record_utf16 }) : null;
  }
}

/** The seed's name for the PostgreSQL queue (djutils.queue's DatabaseQueue). */
export { PostgresQueue as DatabaseQueue };
