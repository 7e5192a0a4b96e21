/**
 * Reliability scenario 8 with real consumer processes on a redis-server of
 * the test's own (free port, temp dir, AOF with `appendfsync always`, so a
 * restart keeps what was acknowledged):
 *   - the server killed and restarted while consumers (polling and blocking)
 *     hold leases on running jobs: every job completes, duplicates ≤ the jobs
 *     in flight at the restart, both consumers carry on and stop cleanly;
 *   - the server frozen (SIGSTOP) for longer than the blocking wait's
 *     timeout while a consumer is blocked in it: after SIGCONT the consumer
 *     runs new jobs again, and no job runs twice.
 * test/backends/redis-fault.test.ts covers the same faults one level down
 * (a read loop on the queue API); the 30 s outage and a server down at
 * consumer start are test/reliability/redis-outage.test.ts.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BaseQueue } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { RedisServer, hasRedisServer } from '../helpers/redis-server.js';
import { uniqueName } from '../helpers/services.js';
import { countBy, isDrained, readRecords, sleep, terminate, useSuite, waitFor } from './kit.js';

const JOBS = 300;
const WORKERS = 10;
const JOB_MS = 200;
const LEASE_MS = 5000;
/** RedisBlockingQueue's default longest single wait on the server. */
const BLOCK_TIMEOUT_MS = 5000;

describe.skipIf(!hasRedisServer)('Redis restarted or frozen under running consumers (own redis-server, AOF)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  });
  afterAll(async () => {
    await server?.dispose();
  });
  const suite = useSuite({
    name: 'own redis-server',
    available: hasRedisServer,
    freshUrl: () => `${server.url}?prefix=${uniqueName('restart')}`,
    dispose: async () => {}, // the server and its files go with it
  });

  /** Writes `count` hold jobs of `ms` each, numbered from `from`. */
  async function writeJobs(queue: BaseQueue, count: number, ms: number, from = 1): Promise<string[]> {
    const messages = Array.from({ length: count }, (_, i) => encodeMessage('hold', [from + i, ms]));
    await queue.writeBatch(messages.map((m) => m.data));
    return messages.map((m) => m.id);
  }

  it(
    `killed and restarted while two consumers (polling, blocking) hold leases: all ${JOBS} jobs of each complete, duplicates ≤ jobs in flight`,
    { timeout: 120_000 },
    async () => {
      const started = Date.now();
      const runs = await Promise.all(
        ['', '&blocking=true'].map(async (blocking) => {
          const url = `${suite.freshUrl()}${blocking}`;
          const recordFile = path.join(suite.dir, `restart${blocking ? '-blocking' : ''}.jsonl`);
          const queue = suite.openQueue(url);
          const consumer = await suite.startConsumer(url, { recordFile, workers: WORKERS, leaseMs: LEASE_MS });
          const jobs = await writeJobs(queue, JOBS, JOB_MS);
          return { blocking: Boolean(blocking), queue, consumer, recordFile, jobs };
        }),
      );
      const done = (file: string) => readRecords(file).filter((r) => r.phase === 'done');
      await waitFor('both consumers a fifth of the way', () => runs.every((r) => done(r.recordFile).length >= JOBS / 5), 60_000, 20);

      // In flight: started and not done, on each consumer, as the server dies.
      const inFlight = runs.map((r) => {
        const records = readRecords(r.recordFile);
        const finished = new Set(records.filter((x) => x.phase === 'done').map((x) => x.job));
        return records.filter((x) => x.phase === 'start' && !finished.has(x.job)).length;
      });
      await server.stop('SIGKILL');
      await sleep(1500); // runs end while the server is gone: their acks cannot land yet
      await server.start();

      for (const r of runs) {
        await waitFor(
          `every job done (${r.blocking ? 'blocking' : 'polling'})`,
          async () => new Set(done(r.recordFile).map((x) => x.job)).size >= JOBS && isDrained(await r.queue.stats()),
          60_000,
          200,
        );
      }
      for (const [i, r] of runs.entries()) {
        const finished = done(r.recordFile);
        expect(new Set(finished.map((x) => x.job))).toEqual(new Set(r.jobs));
        const twice = [...countBy(finished.map((x) => x.job))].filter(([, count]) => count > 1);
        // A job runs twice when its run ended and its ack was lost with the server, or its lease lapsed meanwhile.
        expect(twice.length, `${r.blocking ? 'blocking' : 'polling'}: duplicates`).toBeLessThanOrEqual(WORKERS);
        expect(await r.queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
        console.info(`[reliability] redis restart, ${r.blocking ? 'blocking' : 'polling'}: ${inFlight[i]} in flight at the kill, ${twice.length} ran twice`);
        expect(r.consumer.child.exitCode, 'the consumer survived the restart').toBeNull();
        expect(await terminate(r.consumer), r.consumer.stderr()).toBe(0);
      }
      console.info(`[reliability] redis restart while leased: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    },
  );

  it(
    `frozen (SIGSTOP) for longer than the ${BLOCK_TIMEOUT_MS / 1000} s blocking wait while a consumer is blocked in it: after SIGCONT it runs new jobs, none twice`,
    { timeout: 120_000 },
    async () => {
      const url = `${suite.freshUrl()}&blocking=true`;
      const recordFile = path.join(suite.dir, 'frozen.jsonl');
      const queue = suite.openQueue(url);
      const consumer = await suite.startConsumer(url, { recordFile, workers: 2, leaseMs: LEASE_MS });
      const before = await writeJobs(queue, 5, 10);
      await waitFor('the first jobs done', () => readRecords(recordFile).filter((r) => r.phase === 'done').length === 5, 30_000);
      await sleep(500); // back in its blocking wait

      server.pause();
      await sleep(BLOCK_TIMEOUT_MS + 3000);
      server.resume();
      expect(consumer.child.exitCode, 'the consumer survived the freeze').toBeNull();

      const after = await writeJobs(queue, 5, 10, 6);
      const resumed = Date.now();
      await waitFor(
        'the jobs written after SIGCONT done',
        async () => readRecords(recordFile).filter((r) => r.phase === 'done').length >= 10 && isDrained(await queue.stats()),
        30_000,
        50,
      );
      console.info(`[reliability] redis frozen ${(BLOCK_TIMEOUT_MS + 3000) / 1000} s: new jobs done ${Date.now() - resumed} ms after SIGCONT`);
      const finished = readRecords(recordFile)
        .filter((r) => r.phase === 'done')
        .map((r) => r.job);
      expect(finished.sort()).toEqual([...before, ...after].sort());
      expect(await terminate(consumer), consumer.stderr()).toBe(0);
    },
  );
});
