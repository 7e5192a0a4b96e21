/**
 * Reliability scenario 9 with real consumer processes on a PostgreSQL server
 * of the test's own (initdb in a temp dir, free port):
 *   - the server stopped for 10 s (twice its lease) under a consumer running
 *     jobs: every job completes; the runs that ended during the outage could
 *     not be acked before their leases lapsed, so they run again — at most
 *     the jobs in flight as it went down; it carries on and stops cleanly;
 *   - only the LISTEN session terminated (pg_terminate_backend) under an idle
 *     consumer: the next job still starts (within the 2 s poll bound), and
 *     LISTEN comes back, so later jobs start at once again;
 *   - the server down when `taskmill consume` starts and up 5 s later: the
 *     consumer waits (--connect-timeout), then runs jobs.
 * test/backends/postgres-fault.test.ts covers these one level down (a read
 * loop on the queue API).
 */
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BaseQueue } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { jsonLines, spawnCli, waitFor, type Spawned } from '../helpers/processes.js';
import { canStartPostgres, startPgServer, type PgServer } from '../helpers/pg-server.js';
import { uniqueName } from '../helpers/services.js';
import { CLI_COMMANDS, records } from '../fixtures/cli-helpers.js';
import { countBy, isDrained, readRecords, sleep, terminate, useSuite } from './kit.js';

const JOBS = 200;
const WORKERS = 5;
const JOB_MS = 100;
const LEASE_MS = 5000;

describe.skipIf(!canStartPostgres)('PostgreSQL stopped, its LISTEN session killed, or down at start, under real consumers (private server)', () => {
  let server: PgServer;
  const spawned: Spawned[] = [];
  beforeAll(async () => {
    server = await startPgServer();
  }, 60_000);
  afterAll(async () => {
    for (const c of spawned) c.child.kill('SIGKILL');
    await server?.destroy();
  }, 60_000);
  const suite = useSuite({
    name: 'private PostgreSQL',
    available: canStartPostgres,
    freshUrl: () => `${server.url}?schema=${uniqueName('outage').replace(/-/g, '_')}`,
    dispose: async () => {}, // the server and its data go with it
  });

  async function sql<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      return (await client.query<T>(text)).rows;
    } finally {
      await client.end();
    }
  }

  /** `taskmill consume` on `url` with the CLI test commands; resolves once it logged 'consumer running'. */
  async function consume(url: string, recordFile: string, extra: string[] = []): Promise<Spawned> {
    const consumer = spawnCli(['consume', '-q', url, '-n', ...extra, CLI_COMMANDS], { env: { RECORD_FILE: recordFile }, cwd: suite.dir });
    spawned.push(consumer);
    return consumer;
  }
  const running = (c: Spawned) => jsonLines(c.stdout()).some((l) => l.msg === 'consumer running');

  it(
    `stopped for 10 s under a consumer running ${JOBS} jobs: every job completes, duplicates ≤ jobs in flight (+ one per worker taken as it went down), it stops cleanly`,
    { timeout: 120_000 },
    async () => {
      const url = suite.freshUrl();
      const recordFile = path.join(suite.dir, 'stopped.jsonl');
      const queue = suite.openQueue(url);
      const consumer = await suite.startConsumer(url, { recordFile, workers: WORKERS, leaseMs: LEASE_MS });
      const messages = Array.from({ length: JOBS }, (_, i) => encodeMessage('hold', [i + 1, JOB_MS]));
      await queue.writeBatch(messages.map((m) => m.data));
      const done = () => readRecords(recordFile).filter((r) => r.phase === 'done');
      await waitFor('a third done', () => done().length >= JOBS / 3, 60_000, 20);

      // In flight at the fault: what the consumer leases as the server goes down. While it goes down, a worker
      // whose ack just failed may still take one more job before reads fail too, so duplicates are bounded by
      // this plus one job per worker.
      const leasedAtStop = (await queue.stats()).leased;
      await server.stop('fast');
      const doneAtStop = done().length;
      await sleep(10_000);
      expect(consumer.child.exitCode, 'the consumer survived the outage').toBeNull();
      await server.start();

      await waitFor(
        'every job done, the queue drained',
        async () => new Set(done().map((r) => r.job)).size >= JOBS && isDrained(await queue.stats()),
        60_000,
        200,
      );
      const finished = done();
      expect(new Set(finished.map((r) => r.job))).toEqual(new Set(messages.map((m) => m.id)));
      const twiceJobs = [...countBy(finished.map((r) => r.job))].filter(([, count]) => count > 1).map(([job]) => job);
      const twice = twiceJobs.length;
      const diagnosis = () =>
        [
          `done at the stop: ${doneAtStop}, leased ${leasedAtStop}; ran twice: ${twiceJobs.map((job) => finished.find((r) => r.job === job)!.n).join(', ')}`,
          ...readRecords(recordFile)
            .filter((r) => twiceJobs.includes(r.job))
            .map((r) => JSON.stringify(r)),
          ...consumer
            .logs()
            .filter((l) => (l.level as number) >= 40)
            .map((l) => JSON.stringify(l).slice(0, 300)),
        ].join('\n');
      expect(twice, diagnosis()).toBeLessThanOrEqual(leasedAtStop + WORKERS);
      expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
      expect(consumer.logs().some((l) => String(l.msg).startsWith('queue unreachable'))).toBe(true);
      console.info(`[reliability] postgres stopped 10 s: ${doneAtStop}/${JOBS} done and ${leasedAtStop} leased at the stop, ${twice} ran twice`);
      expect(await terminate(consumer), consumer.stderr()).toBe(0);
    },
  );

  it(
    'only its LISTEN session terminated: the next job still starts within the poll bound, LISTEN comes back, later jobs start at once',
    { timeout: 90_000 },
    async () => {
      const url = suite.freshUrl();
      const recordFile = path.join(suite.dir, 'listen.records');
      const queue: BaseQueue = suite.openQueue(url);
      const consumer = await consume(url, recordFile, ['-d', '5', '-m', '10']);
      await waitFor('consumer running', () => running(consumer), 60_000);
      const listenPid = async () => (await sql<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN %' AND state = 'idle'`))[0]?.pid;
      const before = await waitFor('the LISTEN session', listenPid, 30_000, 100);

      await sql(`SELECT pg_terminate_backend(${Number(before)})`);
      const written = Date.now();
      await queue.write(encodeMessage('cli-ok', [1]).data);
      await waitFor('the job after the termination', () => records(recordFile).includes('ok 1'), 15_000, 20);
      const firstMs = Date.now() - written;
      const after = await waitFor(
        'LISTEN again, on a new session',
        async () => {
          const pid = await listenPid();
          return pid !== undefined && pid !== before ? pid : null;
        },
        30_000,
        100,
      );
      expect(after).not.toBe(before);

      await sleep(1000); // idle in its wait again
      const again = Date.now();
      await queue.write(encodeMessage('cli-ok', [2]).data);
      await waitFor('the job after LISTEN came back', () => records(recordFile).includes('ok 2'), 15_000, 10);
      const secondMs = Date.now() - again;
      console.info(`[reliability] LISTEN session terminated: next job started after ${firstMs} ms, after LISTEN came back ${secondMs} ms`);
      // A 5-10 s reader poll: the first start is the backend's 2 s poll bound (or the reconnect's read), the second a NOTIFY.
      expect(firstMs).toBeLessThan(4000);
      expect(secondMs).toBeLessThan(1000);
      consumer.child.kill('SIGTERM');
      expect(await consumer.exited, consumer.stderr()).toBe(0);
    },
  );

  it('down when taskmill consume starts, up 5 s later: the consumer waits, then runs jobs', { timeout: 90_000 }, async () => {
    const url = suite.freshUrl();
    const recordFile = path.join(suite.dir, 'down-at-start.records');
    await server.stop('fast');
    let consumer: Spawned | undefined;
    try {
      consumer = await consume(url, recordFile, ['--connect-timeout', '60', '-d', '0.05', '-m', '0.5']);
      await waitFor('the outage logged', () => consumer!.stdout().includes('retrying with backoff'), 60_000);
      await sleep(5000);
      expect(consumer.child.exitCode, 'the consumer gave up while the server was down').toBeNull();
      expect(running(consumer)).toBe(false);
    } finally {
      await server.start();
    }
    await waitFor('consumer running', () => running(consumer), 60_000, 100);
    const queue = suite.openQueue(url);
    await queue.write(encodeMessage('cli-ok', [1]).data);
    await waitFor('the job done', () => records(recordFile).includes('ok 1'), 30_000);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited, consumer.stderr()).toBe(0);
  });
});
