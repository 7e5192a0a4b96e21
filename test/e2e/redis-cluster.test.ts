/**
 * A real `taskmill consume` process on a private Redis Cluster (three
 * masters, three replicas; test/helpers/redis-cluster.ts), in polling and
 * blocking mode: jobs run through it while the master that owns the queue's
 * slot is SIGKILLed and its replica takes over, and every job still
 * completes; a producer in this process writes through the failover,
 * retrying each write until it lands. With TASKMILL_SLOW_TESTS=1 (.ci/run sets it) the whole e2e
 * suite of the other backends (test/fixtures/backends-e2e.ts) runs on a
 * cluster too.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage } from '../../src/codec/message.js';
import { RedisQueue } from '../../src/backends/redis/queue.js';
import { QueueConnectionError } from '../../src/shared/errors.js';
import { defineBackendTests } from '../fixtures/backends-e2e.js';
import { RedisCluster, hasRedisCluster } from '../helpers/redis-cluster.js';
import { ROOT, spawnCli, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { uniqueName } from '../helpers/services.js';

const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'backends-commands.ts');
const SLOW = Boolean(process.env.TASKMILL_SLOW_TESTS);
/**
 * Each job sleeps this long: slow enough that the consumer's leases barely change between counting
 * them and the kill (the bound below), fast enough that the run goes on before and after the outage.
 */
const JOB_MS = 20;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function runs(file: string): number[] {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => Number(line.split(' ')[0]))
    : [];
}

/** The QueueStats of `queue`, or null while the cluster cannot answer (mid-failover). */
async function statsOrNull(queue: RedisQueue) {
  return queue.stats().catch(() => null);
}

/** Jobs record(PRODUCED_FROM + i): apart from the backlog's 1..total. */
const PRODUCED_FROM = 1_000_000;

/** Writes record jobs one after another, each tried again (every 50 ms) until the queue takes it, until stop(). */
class ProducerLoop {
  readonly written: { n: number; attempts: number; at: number }[] = [];
  running = true;
  readonly #done: Promise<void>;

  constructor(private readonly queue: RedisQueue) {
    this.#done = this.#loop();
  }

  async #loop(): Promise<void> {
    for (let n = PRODUCED_FROM; this.running; n++) {
      for (let attempts = 1; ; attempts++) {
        try {
          await this.queue.write(encodeMessage('record', [n, JOB_MS]).data);
          this.written.push({ n, attempts, at: Date.now() });
          break;
        } catch (error) {
          expect(error).toBeInstanceOf(QueueConnectionError);
          await sleep(50);
        }
      }
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.#done;
    await this.queue.close();
  }
}

describe.skipIf(!hasRedisCluster)('taskmill consume on a Redis Cluster, real processes', () => {
  for (const blocking of [false, true]) {
    describe(blocking ? 'blocking' : 'polling', () => {
      let cluster: RedisCluster;
      let dir: string;
      const children: Spawned[] = [];
      beforeAll(async () => {
        cluster = await RedisCluster.start();
        dir = tempDir('taskmill-cluster-');
      }, 90_000);
      afterAll(async () => {
        for (const c of children) c.child.kill('SIGKILL');
        await Promise.all(children.map((c) => c.exited));
        await cluster?.dispose();
      }, 30_000);

      it(
        "the master of the queue's slot is SIGKILLed mid-run and its replica takes over: every job completes, duplicates ≤ what was leased at the kill + one read; a producer writing through it loses at most its last 100 ms",
        { timeout: 120_000 },
        async () => {
          const total = 1500;
          const threads = 4;
          const name = uniqueName('failover');
          const url = `${cluster.url}&prefix=tm${blocking ? '&blocking=true' : ''}`;
          const recordFile = path.join(dir, `${name}.txt`);
          const warnings: string[] = [];
          const queue = new RedisQueue(url, { name, onWarning: (message) => warnings.push(message) });
          let producer: ProducerLoop | undefined;
          try {
            for (let first = 1; first <= total; first += 500) {
              const datas = Array.from({ length: Math.min(500, total - first + 1) }, (_, i) => encodeMessage('record', [first + i, JOB_MS]).data);
              await queue.writeBatch(datas);
            }
            const master = await cluster.masterOf(`tm:{${name}}:ready`);
            // A 3 s lease: a lease the outage outlives comes back within seconds, and the consumer
            // extends its leases every second, so a loaded machine does not let a live one lapse.
            const consumer = spawnCli(['consume', '-Q', name, '-t', String(threads), '--lease', '3', '-d', '0.02', '-m', '0.2', '-n', COMMANDS], {
              env: { TASKMILL_QUEUE: url, RECORD_FILE: recordFile },
            });
            children.push(consumer);
            // A producer writing through the failover, one job at a time, each write tried again until it lands.
            const writer = new ProducerLoop(new RedisQueue(url, { name, onWarning: () => {} }));
            producer = writer;
            await waitFor('a fifth of the jobs done', () => runs(recordFile).length >= total / 5, 60_000, 5);

            // What the consumer holds now: any of it may run twice (its acks may die with the master).
            const leasedAtKill = (await queue.stats()).leased;
            const doneAtKill = runs(recordFile).length;
            await master.stop('SIGKILL');
            const killedAt = Date.now();
            let backAt: number | undefined;

            await waitFor(
              'every job done and an empty queue after the failover',
              async () => {
                // Asked every time, so this process's own connection lives through the outage too.
                const stats = await statsOrNull(queue);
                if (stats !== null) backAt ??= Date.now();
                if (backAt !== undefined && Date.now() - backAt > 1000) await writer.stop();
                if (writer.running || new Set(runs(recordFile)).size < total) return false;
                return stats !== null && stats.ready === 0 && stats.leased === 0 && stats.delayed === 0;
              },
              90_000,
              100,
            );
            const recoveredMs = Date.now() - killedAt;

            // It was a real failover: the slot has a new master, one of the former replicas.
            const promoted = await cluster.masterOf(`tm:{${name}}:ready`);
            expect(promoted.port).not.toBe(master.port);
            expect(await cluster.isMaster(promoted)).toBe(true);
            expect(consumer.child.exitCode, consumer.stderr()).toBe(null);
            expect((await queue.stats()).failed).toBe(0);
            // The outage was reported once when it began and once when it ended, not per failed call.
            expect(warnings.map((w) => w.replace(/^.*?: (connection lost|connection restored).*$/s, '$1'))).toEqual(['connection lost', 'connection restored']);

            const done = runs(recordFile);
            const counts = new Map<number, number>();
            for (const n of done) counts.set(n, (counts.get(n) ?? 0) + 1);
            const ran = (n: number) => counts.get(n) ?? 0;

            // The producer's jobs: a write that resolved after the kill went to the new master and runs; one
            // that resolved in the last moment before it may be lost with the master's unreplicated writes
            // (asynchronous replication: docs/backends/redis.md), so only the last 100 ms are let off.
            const { written } = writer;
            expect(written.filter((w) => w.at > killedAt).length).toBeGreaterThan(0);
            expect(written.some((w) => w.attempts > 1)).toBe(true);
            const lost = written.filter((w) => ran(w.n) === 0);
            for (const w of lost) expect(w.at).toBeGreaterThan(killedAt - 100);
            // A write that failed may still have landed, so its retry makes a second job: ≤ one run per attempt,
            // plus one if it was in flight at the kill.
            for (const w of written) expect(ran(w.n)).toBeLessThanOrEqual(w.attempts + 1);

            const initial = [...counts.keys()].filter((n) => n <= total);
            expect(initial.sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
            const twice = initial.filter((n) => ran(n) > 1);
            // A job runs twice only when its lease or ack died with the master: it was leased at the
            // kill, or read in the moment between the count above and the kill (one read: ≤ threads).
            expect(twice.length).toBeLessThanOrEqual(leasedAtKill + threads);
            // …and none of them had finished long before the kill (no old ack was lost).
            for (const n of twice) expect(done.indexOf(n)).toBeGreaterThanOrEqual(doneAtKill - leasedAtKill - threads);
            console.info(
              `[e2e] cluster failover (${blocking ? 'blocking' : 'polling'}): ${doneAtKill} of ${total} done at the kill, ${leasedAtKill} leased; ` +
                `the queue answered again ${(((backAt ?? killedAt) - killedAt) / 1000).toFixed(1)} s after it, all done after ${(recoveredMs / 1000).toFixed(1)} s, ${twice.length} ran twice; ` +
                `the producer wrote ${written.length} (${written.filter((w) => w.attempts > 1).length} after failed attempts), ${lost.length} lost, ` +
                `${written.filter((w) => ran(w.n) > 1).length} ran twice`,
            );
            consumer.child.kill('SIGTERM');
            expect(await consumer.exited, consumer.stderr()).toBe(0);
          } finally {
            await producer?.stop().catch(() => {});
            await queue.close();
          }
        },
      );
    });
  }

  describe.skipIf(!SLOW)('the whole backends e2e suite on a cluster (TASKMILL_SLOW_TESTS=1)', () => {
    let cluster: RedisCluster;
    beforeAll(async () => {
      cluster = await RedisCluster.start();
    }, 90_000);
    afterAll(async () => {
      await cluster?.dispose();
    });
    defineBackendTests({
      jobs: 3000,
      backlog: 30_000,
      freshUrl: () => `${cluster.url}&prefix=${uniqueName('e2e')}`,
      // The cluster is this file's own and goes with it.
      dispose: async () => {},
    });
  });
});
