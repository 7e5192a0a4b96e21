/**
 * QueryDeadlines (src/backends/postgres/deadline.ts): the deadlines of a
 * PostgreSQL queue's pool queries, kept by one watch timer instead of pg's
 * query_timeout (a timer per query). Against the real server; what the
 * deadline does to a silent network path end to end is in
 * test/reliability/silent-connections.test.ts.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { QueryDeadlines, watchEveryMs } from '../../src/backends/postgres/deadline.js';
import { waitFor } from '../helpers/processes.js';
import { POSTGRES_URL, hasPostgres } from '../helpers/services.js';

const activeTimers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;

describe('watchEveryMs', () => {
  it('looks a quarter of the deadline apart, never more often than 10 ms nor less than once a second', () => {
    expect(watchEveryMs(1_000)).toBe(250);
    expect(watchEveryMs(20)).toBe(10);
    expect(watchEveryMs(5_000)).toBe(1_000);
    expect(watchEveryMs(300_000)).toBe(1_000);
  });
});

describe.skipIf(!hasPostgres)('QueryDeadlines', () => {
  let pool: pg.Pool;
  let deadlines: QueryDeadlines | undefined;

  afterEach(async () => {
    deadlines?.stop();
    deadlines = undefined;
    await pool?.end();
  });

  const start = (timeoutMs: number, { max = 8, keepOne = false } = {}) => {
    pool = new pg.Pool({ connectionString: POSTGRES_URL, max });
    deadlines = new QueryDeadlines(pool, watchEveryMs(timeoutMs), keepOne);
    return deadlines;
  };
  const backendPid = async (queries: QueryDeadlines, keep: boolean) =>
    (await queries.query<{ pid: number }>({ text: 'SELECT pg_backend_pid() AS pid' }, 2_000, keep)).rows[0]!.pid;

  it('resolves a query answered in time and gives its client back to the pool', async () => {
    const queries = start(2_000);
    const result = await queries.query<{ n: number }>({ text: 'SELECT 1 + $1::int AS n', values: [41] }, 2_000);
    expect(result.rows).toEqual([{ n: 42 }]);
    expect(pool.totalCount).toBe(1);
    expect(pool.idleCount).toBe(1);
  });

  it('rejects a query past its deadline with "Query read timeout" and drops its connection', async () => {
    const queries = start(300);
    const startedAt = performance.now();
    await expect(queries.query({ text: 'SELECT pg_sleep(10)' }, 300)).rejects.toThrow(/^Query read timeout$/);
    const waited = performance.now() - startedAt;
    // Not before its deadline, and long before the statement would have answered.
    expect(waited).toBeGreaterThanOrEqual(300);
    expect(waited).toBeLessThan(9_000);
    await waitFor('the late client to leave the pool', () => pool.totalCount === 0, 5_000);
    // The pool opens a fresh connection for the next query.
    await expect(queries.query({ text: 'SELECT 1 AS one' }, 2_000)).resolves.toMatchObject({ rows: [{ one: 1 }] });
  });

  it('rejects a failing statement with its own error and, like pg-pool, does not reuse its client', async () => {
    const queries = start(2_000);
    await expect(queries.query({ text: 'SELECT * FROM taskmill_no_such_table' }, 2_000)).rejects.toThrow(/taskmill_no_such_table/);
    await waitFor('the failed client to leave the pool', () => pool.totalCount === 0, 5_000);
  });

  it("arms no timer per query: one unref'd watch serves all of them (pg's query_timeout would add six)", async () => {
    const queries = start(5_000);
    const before = activeTimers();
    const sleep = 'SELECT pg_sleep(1) AS deadlines_test';
    const running = Array.from({ length: 6 }, () => queries.query({ text: sleep }, 5_000));
    const watcher = new pg.Client({ connectionString: POSTGRES_URL });
    await watcher.connect();
    try {
      const runningOnServer = async () =>
        (await watcher.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1 AND state = 'active'`, [sleep])).rows[0]!.n === 6;
      await waitFor('six queries running on the server', runningOnServer, 5_000, 10);
      // process.getActiveResourcesInfo() lists the timers that keep the process alive; the watch is not one.
      // Other timers of the test process come and go meanwhile (CI once saw one fewer), so this allows one
      // either way; pg's query_timeout would add six.
      expect(Math.abs(activeTimers() - before)).toBeLessThanOrEqual(1);
    } finally {
      await watcher.end();
    }
    await Promise.all(running);
  });

  describe('a kept client for claims (keep)', () => {
    it('runs every keep query on one client held out of the pool, and gives it back on releaseKept', async () => {
      const queries = start(2_000, { keepOne: true });
      const first = await backendPid(queries, true);
      expect(await backendPid(queries, true)).toBe(first);
      expect(await backendPid(queries, true)).toBe(first);
      // Held between queries: the pool does not count it idle, and other queries get another client.
      expect(pool.idleCount).toBe(0);
      expect(await backendPid(queries, false)).not.toBe(first);
      queries.releaseKept();
      expect(pool.idleCount).toBe(2);
      // Released for good: a later keep query borrows and returns like any other.
      await backendPid(queries, true);
      expect(pool.idleCount).toBe(2);
    });

    it('writes a keep query at once, where a pool query waits for the microtasks to run out', async () => {
      const queries = start(5_000, { keepOne: true });
      await backendPid(queries, true); // the kept client exists from now on
      // A chain of promise callbacks busy for 300 ms, as a consumer running a backlog's synchronous jobs is.
      const busyChain = async () => {
        const until = Date.now() + 300;
        while (Date.now() < until) {
          const spinUntil = Date.now() + 1;
          while (Date.now() < spinUntil);
          await Promise.resolve();
        }
        return Date.now();
      };
      const sent = async (keep: boolean) => {
        const answered = queries.query<{ at: string }>({ text: `SELECT (extract(epoch from clock_timestamp()) * 1000)::text AS at` }, 5_000, keep);
        const chainEnded = await busyChain();
        return Number((await answered).rows[0]!.at) - chainEnded;
      };
      // The server ran the kept client's query while the chain was still busy ...
      expect(await sent(true)).toBeLessThan(-150);
      // ... and the pool's only once it had ended (pg-pool hands out a client on process.nextTick).
      expect(await sent(false)).toBeGreaterThan(-50);
    });

    it('drops a kept client that dies between queries and keeps a fresh one', async () => {
      const queries = start(2_000, { keepOne: true });
      const first = await backendPid(queries, true);
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      try {
        await admin.query('SELECT pg_terminate_backend($1)', [first]);
      } finally {
        await admin.end();
      }
      await waitFor('the dead client to leave the pool', () => pool.totalCount === 0, 5_000);
      const second = await backendPid(queries, true);
      expect(second).not.toBe(first);
      expect(await backendPid(queries, true)).toBe(second);
    });

    it('drops a kept client whose query failed, like any other', async () => {
      const queries = start(2_000, { keepOne: true });
      const first = await backendPid(queries, true);
      await expect(queries.query({ text: 'SELECT * FROM taskmill_no_such_table' }, 2_000, true)).rejects.toThrow(/taskmill_no_such_table/);
      await waitFor('the failed client to leave the pool', () => pool.totalCount === 0, 5_000);
      expect(await backendPid(queries, true)).not.toBe(first);
    });

    it('keeps nothing when told not to (a pool of one connection would be left without one)', async () => {
      const queries = start(2_000, { max: 1 });
      const first = await backendPid(queries, true);
      expect(pool.idleCount).toBe(1);
      expect(await backendPid(queries, false)).toBe(first);
    });
  });
});
