/**
 * DatabaseQueue: the PostgreSQL backend on `pg`.
 *
 * - Claims are one statement (`UPDATE … FROM (SELECT … FOR UPDATE SKIP
 *   LOCKED)`), lease deadlines come from the database clock, and ack / fail /
 *   release / extend only touch rows this owner still holds. A crashed
 *   consumer's leases simply expire and are claimed again (at-least-once).
 * - Every write sends `pg_notify(channel, queue)` inside its own statement,
 *   so the wake-up is delivered on commit, never before the row is visible.
 * - With `listen` on, one dedicated client LISTENs; it reconnects in the
 *   background with backoff, LISTENs again and wakes waiters once (a
 *   notification may have been missed while it was down). `waitForMessages`
 *   never waits longer than `pollIntervalMs`, so a lost NOTIFY costs latency,
 *   never a job. With `listen` off (transaction-mode poolers) nothing LISTENs
 *   and the reader polls.
 * - Delayed messages are rows with `run_at` set; the claim index holds no such
 *   row, so a million of them cost a claim nothing. Whether a `runAt` is still
 *   ahead is decided by the database's now(), like lease deadlines.
 *   `promoteDue` clears `run_at` of due rows (SKIP LOCKED, so concurrent
 *   callers split the work) and notifies like a write.
 * - Payloads and result records are stored as text when PostgreSQL can hold
 *   them exactly; strings it cannot (NUL, lone surrogates) go to a bytea
 *   column as UTF-16, so data round-trips unchanged.
 * - Errors from the driver become QueueConnectionError with every URL and the
 *   password redacted; the pool and the LISTEN client have error listeners,
 *   so a server restart never kills the process.
 */
import { inspect } from 'node:util';
import type pg from 'pg';
import { pg as loadPg } from './drivers.js';
import { redactText, redactUrl } from '../config.js';
import { ConfigError, QueueConnectionError, TaskmillError } from '../errors.js';
import {
  BaseQueue,
  type FailedMessage,
  type QueueMessage,
  type QueueOptions,
  type QueueStats,
  type ResultRecord,
  type WriteOptions,
} from './base.js';
import {
  checkText,
  checkTtl,
  decodeData,
  DEFAULT_SCHEMA,
  encodeData,
  isRowId,
  isStorableText,
  migrate,
  resultParams,
  runAtParam,
  statements,
  storableText,
  validateSchemaName,
  writeOptionsRunAt,
  type JobRow,
  type Statements,
} from './postgres-schema.js';

export { DEFAULT_SCHEMA, SCHEMA_VERSION, validateSchemaName } from './postgres-schema.js';

export interface DatabaseQueueOptions extends QueueOptions {
  /** Schema holding taskmill's tables. Default `'taskmill'` (or `?schema=` in the URL). */
  schema?: string;
  /** LISTEN/NOTIFY wake-ups. Default true (or `?listen=false` in the URL); false = polling only, for transaction-mode poolers. */
  listen?: boolean;
  /** Longest `waitForMessages` waits without a notification. Default 2000 ms. */
  pollIntervalMs?: number;
  /** Pool connections (the LISTEN client is one more). Default 4. */
  poolSize?: number;
  /** How long acquiring a connection may take before the call fails. Default 5000 ms. */
  connectTimeoutMs?: number;
}

const DEFAULT_POLL_INTERVAL_MS = 2000;
const DEFAULT_POOL_SIZE = 4;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const LISTEN_RETRY_MIN_MS = 100;
const LISTEN_RETRY_MAX_MS = 5000;
/** Rows one promoteDue statement makes ready: bounds its transaction and locks, however many are due. */
const PROMOTE_BATCH = 5000;
/** URL query parameters that configure taskmill and are not passed on to `pg`. */
const OWN_URL_PARAMS = ['schema', 'listen'] as const;

function checkMax(max: number, what = 'batch size'): number {
  if (!Number.isInteger(max) || max < 0) throw new ConfigError(`invalid ${what} ${String(max)}: must be an integer >= 0`);
  return max;
}

function checkPositive(value: number, what: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new ConfigError(`invalid ${what} ${String(value)}: must be a number > 0`);
  return value;
}

/** Splits taskmill's own parameters off the URL; the rest goes to `pg` unchanged. */
function splitUrl(url: string): { pgUrl: string; own: Map<string, string> } {
  const own = new Map<string, string>();
  const q = url.indexOf('?');
  if (q === -1) return { pgUrl: url, own };
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash === -1 ? undefined : hash);
  const kept = query.split('&').filter((pair) => {
    const eq = pair.indexOf('=');
    const key = decodeURIComponent(eq === -1 ? pair : pair.slice(0, eq));
    if (!(OWN_URL_PARAMS as readonly string[]).includes(key)) return true;
    own.set(key, decodeURIComponent(eq === -1 ? '' : pair.slice(eq + 1).replace(/\+/g, ' ')));
    return false;
  });
  return { pgUrl: url.slice(0, q) + (kept.length > 0 ? `?${kept.join('&')}` : ''), own };
}

/** Every form the password may take in the URL or environment, for redacting driver messages. */
function passwordsIn(url: string): string[] {
  const found: string[] = [];
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(url)?.[1]; // to the last '@', as pg reads it
  const colon = userinfo?.indexOf(':') ?? -1;
  if (userinfo && colon !== -1) found.push(userinfo.slice(colon + 1));
  for (const match of url.matchAll(/[?&]password=([^&#]*)/gi)) found.push(match[1]!);
  if (process.env.PGPASSWORD) found.push(process.env.PGPASSWORD);
  const decoded = found.map((p) => {
    try {
      return decodeURIComponent(p.replace(/\+/g, ' '));
    } catch {
      return p;
    }
  });
  return [...new Set([...found, ...decoded])].filter((p) => p.length > 0);
}

export class DatabaseQueue extends BaseQueue {
  override readonly blocking: boolean;
  readonly schema: string;
  readonly listen: boolean;
  readonly pollIntervalMs: number;
  readonly poolSize: number;
  /** The connection URL with its password replaced by `***`. */
  readonly redactedUrl: string;

  readonly #secrets: string[];
  readonly #clientConfig: pg.ClientConfig;
  readonly #pool: pg.Pool;
  readonly #sql: Statements;
  readonly #channel: string;
  #opening: Promise<void> | undefined;
  #closed = false;
  #poolWarned = false;

  #listener: pg.Client | null = null;
  #listenerStarting: Promise<void> | undefined;
  #listenRetryMs = LISTEN_RETRY_MIN_MS;
  #listenRetryTimer: NodeJS.Timeout | undefined;
  #listenWarned = false;
  /** A notification (or reconnect) arrived since the last read: the next wait returns at once. */
  #notified = true;
  readonly #waiters = new Set<() => void>();

  constructor(connectionString: string, options: DatabaseQueueOptions = {}) {
    super(options);
    if (typeof connectionString !== 'string' || !/^postgres(ql)?:\/\//i.test(connectionString.trim())) {
      const shown = typeof connectionString === 'string' ? redactUrl(connectionString) : String(connectionString);
      throw new ConfigError(`invalid PostgreSQL URL "${shown}": use postgres://user:password@host:port/database`);
    }
    const url = connectionString.trim();
    this.#secrets = passwordsIn(url);
    this.redactedUrl = redactText(redactUrl(url), this.#secrets);
    const { pgUrl, own } = splitUrl(url);

    this.schema = validateSchemaName(options.schema ?? own.get('schema') ?? DEFAULT_SCHEMA);
    const listenParam = own.get('listen');
    if (listenParam !== undefined && listenParam !== 'true' && listenParam !== 'false') {
      throw new ConfigError(`PostgreSQL URL "${this.redactedUrl}": listen must be true or false`);
    }
    this.listen = options.listen ?? listenParam !== 'false';
    this.blocking = this.listen;
    this.pollIntervalMs = checkPositive(options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS, 'pollIntervalMs');
    const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
    if (!Number.isInteger(poolSize) || poolSize < 1) throw new ConfigError(`invalid poolSize ${String(poolSize)}: must be an integer >= 1`);
    this.poolSize = poolSize;
    const connectTimeoutMs = checkPositive(options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeoutMs');

    this.#clientConfig = {
      connectionString: pgUrl,
      connectionTimeoutMillis: connectTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'taskmill',
    };
    this.#pool = new (loadPg().Pool)({ ...this.#clientConfig, max: poolSize, idleTimeoutMillis: 30_000 });
    this.#pool.on('error', (error) => {
      // An idle connection died (server restart, network). The pool drops it; the next query reconnects.
      // One warning per outage: the flag is cleared by the next query that succeeds.
      if (this.#poolWarned || this.#closed) return;
      this.#poolWarned = true;
      this.warn(`taskmill: PostgreSQL connection lost (${this.#redact(error)}); reconnecting on next use`);
    });
    this.#sql = statements(this.schema);
    // Channel names are identifiers (max 63 bytes); a truncated collision only causes a spare wake-up.
    this.#channel = `taskmill_${this.schema}`.slice(0, 63);
  }

  // ── connection, errors, inspection ────────────────────────────────────

  /** Creates/upgrades the schema and starts LISTENing. Idempotent; every other method calls it. */
  override open(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    this.#opening ??= (async () => {
      try {
        await migrate(this.#pool, this.schema);
      } catch (error) {
        throw this.#wrap('open (schema migration)', error);
      }
      if (this.listen) await this.#startListener();
    })().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    return this.#opening;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#listenRetryTimer);
    this.#wake();
    const listener = this.#listener;
    this.#listener = null;
    await Promise.allSettled([listener?.end(), this.#listenerStarting, this.#pool.end()]);
  }

  /** True while the LISTEN connection is up (always false with `listen: false`). */
  get listening(): boolean {
    return this.#listener !== null;
  }

  #closedError(): QueueConnectionError {
    return new QueueConnectionError(`PostgreSQL queue "${this.name}" (${this.redactedUrl}) is closed`);
  }

  #redact(error: unknown): string {
    const message = error instanceof Error ? error.message || error.name : String(error);
    return redactText(message, this.#secrets);
  }

  /** Driver errors become QueueConnectionError; the cause is a redacted copy, never the driver's object. */
  #wrap(what: string, error: unknown): Error {
    if (error instanceof TaskmillError) return error;
    const message = this.#redact(error);
    const cause = new Error(message);
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string') Object.assign(cause, { code });
    return new QueueConnectionError(`PostgreSQL ${what} failed (${this.redactedUrl}): ${message}`, { cause });
  }

  async #query<R extends pg.QueryResultRow>(what: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    await this.open();
    try {
      const result = await this.#pool.query<R>(text, values);
      this.#poolWarned = false;
      return result;
    } catch (error) {
      throw this.#closed ? this.#closedError() : this.#wrap(what, error);
    }
  }

  [inspect.custom](): string {
    return `DatabaseQueue { name: ${JSON.stringify(this.name)}, url: ${JSON.stringify(this.redactedUrl)}, schema: ${JSON.stringify(this.schema)}, listen: ${this.listen} }`;
  }

  toJSON(): Record<string, unknown> {
    return { type: 'DatabaseQueue', name: this.name, url: this.redactedUrl, schema: this.schema, listen: this.listen, owner: this.owner };
  }

  // ── LISTEN / NOTIFY ──────────────────────────────────────────────────

  #startListener(): Promise<void> {
    if (this.#closed || this.#listener) return Promise.resolve();
    this.#listenerStarting ??= this.#connectListener().finally(() => {
      this.#listenerStarting = undefined;
    });
    return this.#listenerStarting;
  }

  async #connectListener(): Promise<void> {
    const client = new (loadPg().Client)(this.#clientConfig);
    let lost = false;
    const onLost = (error?: Error) => {
      if (lost) return;
      lost = true;
      if (this.#listener === client) this.#listener = null;
      client.end().catch(() => {});
      if (this.#closed) return;
      if (error && !this.#listenWarned) {
        this.#listenWarned = true;
        this.warn(`taskmill: PostgreSQL LISTEN connection lost (${this.#redact(error)}); polling every ${this.pollIntervalMs} ms until it is back`);
      }
      this.#scheduleListenRetry();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) => {
      if (message.channel === this.#channel && message.payload === this.name) this.#wake();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${loadPg().escapeIdentifier(this.#channel)}`);
    } catch (error) {
      onLost(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (lost) return;
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#listener = client;
    this.#listenRetryMs = LISTEN_RETRY_MIN_MS;
    this.#listenWarned = false;
    // Anything written while nobody listened sent its NOTIFY into the void: read once.
    this.#wake();
  }

  #scheduleListenRetry(): void {
    if (this.#closed || this.#listenRetryTimer) return;
    const delay = this.#listenRetryMs * (0.5 + Math.random() / 2);
    this.#listenRetryMs = Math.min(this.#listenRetryMs * 2, LISTEN_RETRY_MAX_MS);
    this.#listenRetryTimer = setTimeout(() => {
      this.#listenRetryTimer = undefined;
      void this.#startListener();
    }, delay);
    this.#listenRetryTimer.unref();
  }

  #wake(): void {
    this.#notified = true;
    for (const waiter of [...this.#waiters]) waiter();
  }

  /**
   * Resolves on a NOTIFY for this queue, after min(timeoutMs, pollIntervalMs),
   * or at once on abort / close / when a notification came since the last read.
   */
  override waitForMessages(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (!this.listen || this.#closed || signal.aborted) return Promise.resolve();
    if (this.#notified) {
      this.#notified = false;
      return Promise.resolve();
    }
    if (!this.#listener) void this.open().catch(() => {});
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#waiters.delete(done);
        this.#notified = false;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(timeoutMs, this.pollIntervalMs)));
      signal.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }

  // ── the contract ─────────────────────────────────────────────────────

  /** A `runAt` still ahead by the database clock stores the message delayed. */
  override async write(data: string, options?: WriteOptions): Promise<string> {
    const [text, bytes] = encodeData(data);
    const runAt = writeOptionsRunAt(options);
    const result = await this.#query<{ id: string }>('write', this.#sql.write, [this.name, text, bytes, this.#channel, runAt]);
    return result.rows[0]!.id;
  }

  /** Writes several messages in one statement (all delayed until `options.runAt` if given); resolves with their ids in input order. */
  override async writeBatch(datas: readonly string[], options?: WriteOptions): Promise<string[]> {
    if (!Array.isArray(datas)) throw new ConfigError('writeBatch expects an array of strings');
    const encoded = datas.map(encodeData);
    const runAt = writeOptionsRunAt(options);
    if (encoded.length === 0) return [];
    const result = await this.#query<{ ids: string[] }>('writeBatch', this.#sql.writeBatch, [
      this.name,
      encoded.map(([text]) => text),
      encoded.map(([, bytes]) => bytes),
      this.#channel,
      runAt,
    ]);
    return result.rows[0]!.ids;
  }

  async readBatch(max: number): Promise<QueueMessage[]> {
    checkMax(max);
    if (max === 0) return [];
    this.#notified = false;
    const result = await this.#query<JobRow>('read', this.#sql.claim, [this.name, max, this.owner, this.leaseMs]);
    return result.rows
      .map((row) => ({ id: row.id, data: decodeData(row), attempt: row.attempt }))
      .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
  }

  async ackBatch(ids: readonly string[]): Promise<string[]> {
    const valid = ids.filter(isRowId);
    if (valid.length === 0) return [...ids];
    const result = await this.#query<{ id: string }>('ack', this.#sql.ack, [this.name, valid, this.owner]);
    const done = new Set(result.rows.map((row) => row.id));
    return ids.filter((id) => !done.has(id));
  }

  async release(ids: readonly string[]): Promise<void> {
    const valid = ids.filter(isRowId);
    if (valid.length === 0) return;
    await this.#query('release', this.#sql.release, [this.name, valid, this.owner, this.#channel]);
  }

  async extend(ids: readonly string[]): Promise<string[]> {
    const valid = ids.filter(isRowId);
    if (valid.length === 0) return [...ids];
    const result = await this.#query<{ id: string }>('extend', this.#sql.extend, [this.name, valid, this.owner, this.leaseMs]);
    const done = new Set(result.rows.map((row) => row.id));
    return ids.filter((id) => !done.has(id));
  }

  async fail(id: string, error: string): Promise<boolean> {
    if (!isRowId(id)) return false;
    const result = await this.#query('fail', this.#sql.fail, [this.name, id, this.owner, storableText(error)]);
    return (result.rowCount ?? 0) > 0;
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
  }

  async writeUnique(key: string, data: string, ttlMs: number): Promise<string | null> {
    checkText(key, 'slot key');
    checkTtl(ttlMs, 'slot ttlMs');
    const [text, bytes] = encodeData(data);
    const result = await this.#query<{ id: string }>('writeUnique', this.#sql.writeUnique, [
      this.name,
      key,
      text,
      bytes,
      ttlMs,
      this.#channel,
    ]);
    return result.rows[0]?.id ?? null;
  }

  // ── job lifecycle ────────────────────────────────────────────────────

  override async retry(id: string, data: string, runAt: number): Promise<boolean> {
    const [text, bytes] = encodeData(data);
    const at = runAtParam(runAt);
    if (!isRowId(id)) return false;
    const result = await this.#query<{ count: number }>('retry', this.#sql.retry, [this.name, id, this.owner, text, bytes, at, this.#channel]);
    return (result.rows[0]?.count ?? 0) > 0;
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
    const result = await this.#query('remove', this.#sql.remove, [this.name, id]);
    return (result.rowCount ?? 0) > 0;
  }

  override async setResults(records: readonly ResultRecord[]): Promise<void> {
    const [jobIds, texts, bytes, ttls] = resultParams(records);
    if (jobIds.length === 0) return;
    await this.#query('setResults', this.#sql.setResults, [this.name, jobIds, texts, bytes, ttls]);
  }

  override async getResult(jobId: string): Promise<string | null> {
    if (typeof jobId !== 'string' || jobId === '') throw new ConfigError('jobId must be a non-empty string');
    // A job id text cannot hold was refused by setResults, so nothing is stored under it.
    if (!isStorableText(jobId)) return null;
    const result = await this.#query<{ record: string | null; record_utf16: Buffer | null }>('getResult', this.#sql.getResult, [
      this.name,
      jobId,
    ]);
    const row = result.rows[0];
    return row ? decodeData({ data: row.record, data_utf16: row.record_utf16 }) : null;
  }
}
