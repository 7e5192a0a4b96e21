/**
 * Deadlines on PostgreSQL connections: what happens when a query misses its
 * `queryTimeoutMs` (pg's `query_timeout`).
 *
 * pg rejects the query with "Query read timeout"; the pool then removes the
 * client, and since a query is still active on it, destroys its socket. So
 * the connection a silent path swallowed is replaced by the driver itself.
 * What the driver does not do is suspect the pool's idle connections, which
 * went out over the same path: each would cost one more deadline when next
 * used. `IdleClients` remembers which clients sit idle and destroys their
 * sockets when any query misses its deadline; the pool sees an idle client
 * die, drops it, and opens a fresh one on demand. Busy clients meet their own
 * deadline.
 */
import type pg from 'pg';

/** pg's rejection of a query past its query_timeout. */
const QUERY_TIMED_OUT = 'Query read timeout';

/** True for a query that got no (complete) reply within its deadline. */
export function isQueryTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === QUERY_TIMED_OUT;
}

/**
 * Destroys a pg client's socket (an RST-less close that waits for nothing). `end()` would send a
 * Terminate and a FIN first, and on a silent path wait for ever for the server's side to close.
 */
export function destroySocket(client: pg.ClientBase, reason: Error): void {
  // pg keeps its socket on `connection.stream`, not in its typings.
  const stream = (client as unknown as { connection?: { stream?: { destroyed?: boolean; destroy(error?: Error): void } } }).connection?.stream;
  if (stream && !stream.destroyed) stream.destroy(reason);
}

/** The idle clients of a pool, to close at once when the path they share went silent. */
export class IdleClients {
  readonly #idle = new Set<pg.PoolClient>();

  constructor(pool: pg.Pool) {
    pool.on('acquire', (client) => this.#idle.delete(client));
    pool.on('release', (error: Error | undefined, client: pg.PoolClient) => {
      if (!error) this.#idle.add(client);
    });
    pool.on('remove', (client) => this.#idle.delete(client));
  }

  /** Destroys every idle client's socket; the pool drops each (its 'error' event) and reconnects on demand. */
  destroyAll(reason: Error): number {
    const clients = [...this.#idle];
    this.#idle.clear();
    for (const client of clients) destroySocket(client, reason);
    return clients.length;
  }
}
