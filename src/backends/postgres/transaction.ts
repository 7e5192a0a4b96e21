/**
 * Writes through the application's own transaction (BaseQueue.writeInTransaction):
 * what a `tx` must be, checked before anything is sent.
 *
 * A `pg` Client or PoolClient says whether it is inside a transaction
 * (`getTransactionStatus()`, from pg 8.13): 'T' in one, 'E' in one that failed,
 * 'I' idle. Only 'T' is taken. A client outside a transaction is refused rather
 * than written through at once: whoever passes `tx` asked for "exists if and only
 * if my transaction commits", and an autocommitted write would break that
 * silently. A Pool is refused too: each of its queries may run on another client,
 * in no transaction of the caller's.
 */
import { ConfigError, describeValue } from '../../shared/errors.js';

/** The part of a pg Client / PoolClient a transactional write uses. */
export interface TransactionClient {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[] }>;
  getTransactionStatus(): string | null;
}

/**
 * pg settles a failed query on the server's ErrorResponse, before the ReadyForQuery that
 * moves getTransactionStatus() to 'E' has been read, so a write right after a caught error
 * may still see 'T'. The server then refuses it (SQLSTATE 25P02); both paths say the same.
 */
export function failedTransaction(queue: string): ConfigError {
  return new ConfigError(`schedule({ tx }) on PostgreSQL queue "${queue}": tx's transaction has failed (a statement in it raised an error); roll it back`);
}

/** True for the server's "current transaction is aborted" refusal. */
export function isFailedTransaction(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '25P02';
}

/** `tx` as a client inside a transaction; a ConfigError naming what it is otherwise. */
export function transactionClient(tx: unknown, queue: string): TransactionClient {
  const where = `schedule({ tx }) on PostgreSQL queue "${queue}"`;
  const candidate = tx as (Partial<TransactionClient> & { totalCount?: unknown; prepare?: unknown }) | null;
  if (candidate === null || typeof candidate !== 'object' || typeof candidate.query !== 'function') {
    throw new ConfigError(`${where}: tx must be the pg Client or PoolClient of your transaction, got ${describeValue(tx)}`);
  }
  if (typeof candidate.getTransactionStatus !== 'function') {
    const what = typeof candidate.totalCount === 'number' ? 'a pg Pool (its queries may each run on another client)' : 'not a pg client';
    throw new ConfigError(`${where}: tx is ${what}; pass the client you ran BEGIN on (const client = await pool.connect())`);
  }
  const status = candidate.getTransactionStatus();
  if (status === 'E') throw failedTransaction(queue);
  if (status !== 'T') throw new ConfigError(`${where}: tx is not inside a transaction (run BEGIN on it first); nothing was written`);
  return candidate as TransactionClient;
}
