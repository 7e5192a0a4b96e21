/**
 * Deadlines on PostgreSQL connections: what happens when a query misses its
 * `queryTimeoutMs`.
 *
 * The pool's queries run through `QueryDeadlines`: a query past its deadline
 * has its client's socket destroyed and is rejected with "Query read timeout"
 * (pg's own words for its `query_timeout`, which the LISTEN connection and
 * migrations still use); the pool then drops the client. So the connection a
 * silent path swallowed is replaced. One timer watches every query, where
 * pg's `query_timeout` arms one per query and wraps its callback: with those,
 * more of each claimed batch outlived the young generation's collections and
 * was promoted (measured, not explained; bench/heap-spaces.ts --postgres on
 * 20,000 jobs: 1.3-1.5 MiB kept young and 1.0 promoted per scavenge, against
 * 1.0 and 0.7 through this watch; 3.8 against 3.1 KB allocated per job).
 * What the driver does not do is suspect the pool's idle connections, which
 * went out over the same path: each would cost one more deadline when next
 * used. `IdleClients` remembers which clients sit idle and destroys their
 * sockets when any query misses its deadline; the pool sees an idle client
 * die, drops it, and opens a fresh one on demand. Busy clients meet their own
 * deadline.
 */
import type pg from 'pg';

/** The rejection of a query past its deadline (pg's, for its query_timeout). */
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

/** A query in flight on a client of the pool, and when it must have had its reply. */
interface InFlight {
  readonly client: pg.PoolClient;
  readonly dueAt: number;
  expired: boolean;
}

/** How often the watch looks for late queries: a quarter of the deadline, within 10 ms – 1 s. */
export function watchEveryMs(timeoutMs: number): number {
  return Math.min(1_000, Math.max(10, Math.floor(timeoutMs / 4)));
}

/**
 * The pool's queries with a deadline each, watched by one interval timer (unref'd: it never keeps
 * the process alive). A query is found late within watchEveryMs of its deadline.
 *
 * Queries that ask to `keep` their client (a consumer's claims) keep one checked out between
 * them, so each is written to its socket at once. pg-pool hands out an idle client on
 * process.nextTick, and Node runs a tick queued from a promise callback only once the microtask
 * queue is empty: a consumer running a backlog's jobs on one chain of microtasks sent its next
 * claim only when it had run out of jobs, then waited out the whole round trip (a trace of
 * bench/throughput.ts on PostgreSQL: READ at 48.6 ms, the claim written at 50.5, the workers idle
 * from 50.4). With `keepOne` false (a pool of one connection, which the kept client would take
 * from every other query) they go through the pool like any other.
 */
export class QueryDeadlines {
  readonly #inFlight = new Set<InFlight>();
  #watch: NodeJS.Timeout | undefined;
  /** The client kept for `keep` queries, and whether one of them is running on it. */
  #kept: pg.PoolClient | undefined;
  #keptBusy = false;
  #stopped = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly everyMs: number,
    private readonly keepOne = false,
  ) {}

  /**
   * Runs `config` on a client of the pool (`keep`: on the kept client when it is free); rejects
   * with "Query read timeout" once `timeoutMs` has passed without its reply. Like pg-pool's query:
   * a client whose query failed leaves the pool.
   */
  query<R extends pg.QueryResultRow>(config: pg.QueryConfig, timeoutMs: number, keep = false): Promise<pg.QueryResult<R>> {
    return new Promise((resolve, reject) => {
      const kept = keep ? this.#kept : undefined;
      if (kept && !this.#keptBusy) {
        this.#keptBusy = true;
        kept.removeListener('error', this.#keptFailed);
        this.#run(kept, config, timeoutMs, true, resolve, reject);
        return;
      }
      this.pool.connect((connectError: Error | undefined, client: pg.PoolClient | undefined) => {
        if (connectError || !client) return reject(connectError ?? new Error('the pool gave no client'));
        this.#run(client, config, timeoutMs, keep && this.keepOne, resolve, reject);
      });
    });
  }

  #run<R extends pg.QueryResultRow>(
    client: pg.PoolClient,
    config: pg.QueryConfig,
    timeoutMs: number,
    keep: boolean,
    resolve: (result: pg.QueryResult<R>) => void,
    reject: (error: Error) => void,
  ): void {
    const entry: InFlight = { client, dueAt: performance.now() + timeoutMs, expired: false };
    let settled = false;
    const settle = (error: Error | null | undefined, result?: pg.QueryResult<R>) => {
      if (settled) return;
      settled = true;
      this.#inFlight.delete(entry);
      client.removeListener('error', settle);
      const failure = entry.expired ? new Error(QUERY_TIMED_OUT) : (error ?? undefined);
      this.#giveBack(client, keep && !failure, failure);
      if (failure) reject(failure);
      else resolve(result!);
    };
    // A checked-out client has no error listener of the pool's: a dropped connection would crash the process.
    client.once('error', settle);
    this.#inFlight.add(entry);
    this.#watch ??= setInterval(this.#expire, this.everyMs).unref();
    try {
      // The callback form: pg's promise form wraps each query in two more promises.
      client.query<R>(config, (error: Error | null, result: pg.QueryResult<R>) => settle(error, result));
    } catch (error) {
      settle(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** After a query: keeps its client for the next `keep` query, or releases it (with its failure, the pool drops it). */
  #giveBack(client: pg.PoolClient, keep: boolean, failure: Error | undefined): void {
    if (keep && !this.#stopped && (this.#kept === undefined || this.#kept === client)) {
      this.#kept = client;
      this.#keptBusy = false;
      client.on('error', this.#keptFailed);
      return;
    }
    if (this.#kept === client) {
      this.#kept = undefined;
      this.#keptBusy = false;
    }
    client.release(failure);
  }

  /** The kept client died between queries: the pool drops it; the next `keep` query checks out another. */
  readonly #keptFailed = (error: Error): void => {
    const client = this.#kept;
    if (!client) return;
    client.removeListener('error', this.#keptFailed);
    this.#kept = undefined;
    client.release(error);
  };

  /** Destroys the kept client's socket if no query runs on it (its path went silent: see IdleClients). */
  destroyKept(reason: Error): void {
    if (this.#kept && !this.#keptBusy) destroySocket(this.#kept, reason);
  }

  /** Keeps no client from now on and gives the kept one back: before the pool ends, which waits for every client. */
  releaseKept(): void {
    this.#stopped = true;
    const client = this.#kept;
    if (!client || this.#keptBusy) return; // its query's end gives it back
    client.removeListener('error', this.#keptFailed);
    this.#kept = undefined;
    client.release();
  }

  /** Stops the watch (the queue is closing; its queries have settled or will fail with their connections). */
  stop(): void {
    this.releaseKept();
    clearInterval(this.#watch);
    this.#watch = undefined;
  }

  readonly #expire = (): void => {
    const now = performance.now();
    for (const entry of this.#inFlight) {
      if (entry.expired || entry.dueAt > now) continue;
      entry.expired = true;
      destroySocket(entry.client, new Error(QUERY_TIMED_OUT));
    }
  };
}
