/**
 * Issue 9, scenario 8: a `taskmill consume` child process against a
 * redis-server of this file's own, with an append-only file fsynced on every
 * write (a restart keeps every acknowledged job), through outages that
 * test/backends/redis-fault.test.ts does not cover:
 *   - a 30 s outage while the consumer has jobs leased and more waiting;
 *   - the server down when the consumer starts, up 5 s later (the consumer
 *     waits, by its default --connect-timeout of 30 s).
 * Both with the polling queue and with `?blocking=true`. Completions are
 * counted from outside: each run appends "<n> <pid>" to a record file. The
 * tests are concurrent (each has its own server) so the file takes ~45 s.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createQueue, type BaseQueue, type QueueStats } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { ROOT, jsonLines, spawnCli, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { RedisServer, hasRedisServer } from '../helpers/redis-server.js';

const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'backends-commands.ts');
const PERSISTENT = ['--appendonly', 'yes', '--appendfsync', 'always'];
const THREADS = 4;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const dir = tempDir('taskmill-redis-outage-');
const servers: RedisServer[] = [];
const children: Spawned[] = [];
const queues: BaseQueue[] = [];

afterAll(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  await Promise.allSettled(queues.map((q) => q.close()));
  await Promise.allSettled(servers.map((s) => s.dispose()));
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** The job numbers in the record file, one per completed run. */
function runs(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => Number(line.split(' ')[0]));
}

function isEmpty(stats: QueueStats): boolean {
  return stats.ready === 0 && stats.leased === 0 && stats.failed === 0 && stats.delayed === 0;
}

/** Stats, or null while the server is still coming back. */
async function statsOrNull(queue: BaseQueue): Promise<QueueStats | null> {
  try {
    return await queue.stats();
  } catch {
    return null;
  }
}

interface Setup {
  server: RedisServer;
  queue: BaseQueue;
  url: string;
  recordFile: string;
  logFile: string;
}

/** A persistent server with `jobs` record(n, sleepMs) jobs waiting on a queue of its own. */
async function setup(label: string, blocking: boolean, jobs: number, sleepMs: number): Promise<Setup> {
  const server = await RedisServer.start({ args: PERSISTENT });
  servers.push(server);
  const url = `${server.url}?prefix=${label}${blocking ? '&blocking=true' : ''}`;
  const queue = createQueue(url, { onWarning: () => {} }) as BaseQueue & { writeBatch(datas: string[]): Promise<string[]> };
  queues.push(queue);
  await queue.writeBatch(Array.from({ length: jobs }, (_, i) => encodeMessage('record', [i + 1, sleepMs]).data));
  return { server, queue, url, recordFile: path.join(dir, `${label}.records`), logFile: path.join(dir, `${label}.log`) };
}

function consume({ url, recordFile, logFile }: Setup): Spawned {
  const consumer = spawnCli(['consume', '-q', url, '-t', String(THREADS), '-n', '-d', '0.02', '-m', '0.5', '-l', logFile, COMMANDS], {
    env: { RECORD_FILE: recordFile },
  });
  children.push(consumer);
  return consumer;
}

function alive(consumer: Spawned): boolean {
  return consumer.child.exitCode === null && consumer.child.signalCode === null;
}

/** Every job 1..jobs ran (some may have run twice), and nothing is left ready, leased or failed. */
async function waitForAll(s: Setup, jobs: number, timeoutMs: number): Promise<number[]> {
  await waitFor(
    `all ${jobs} jobs done and an empty queue`,
    async () => {
      if (new Set(runs(s.recordFile)).size < jobs) return false;
      const stats = await statsOrNull(s.queue);
      return stats !== null && isEmpty(stats);
    },
    timeoutMs,
    200,
  );
  return runs(s.recordFile);
}

async function stopCleanly(consumer: Spawned): Promise<void> {
  consumer.child.kill('SIGTERM');
  expect(await consumer.exited, consumer.stderr()).toBe(0);
}

function logMessages(file: string): string[] {
  return existsSync(file) ? jsonLines(readFileSync(file, 'utf8')).map((l) => String(l.msg)) : [];
}

describe.skipIf(!hasRedisServer).concurrent('Redis outages under a `taskmill consume` process (own persistent redis-server)', () => {
  for (const blocking of [false, true]) {
    const kind = blocking ? 'blocking' : 'polling';

    it(
      `${kind}: a 30 s outage while jobs are leased and more wait — the consumer survives and completes every job afterwards`,
      { timeout: 120_000 },
      async () => {
        const jobs = 60;
        const s = await setup(`outage-${kind}`, blocking, jobs, 400);
        const consumer = consume(s);
        await waitFor('a few jobs done', () => runs(s.recordFile).length >= 2 * THREADS, 60_000, 20);
        await sleep(200); // mid-job (the workers run in step): the last acks are written, the next jobs are running
        const atCrash = await s.queue.stats();
        expect(atCrash.leased, 'jobs leased when the server goes').toBeGreaterThan(0);
        expect(atCrash.ready, 'jobs waiting when the server goes').toBeGreaterThan(0);

        await s.server.stop('SIGKILL'); // a crash: only the append-only file survives
        const doneAtCrash = runs(s.recordFile).length;
        await sleep(30_000);
        expect(alive(consumer), `the consumer exited during the outage: ${consumer.stderr()}`).toBe(true);
        // Nothing new could be read while the server was away: only what was already running finished.
        const doneInOutage = runs(s.recordFile).length - doneAtCrash;
        expect(doneInOutage).toBeLessThanOrEqual(THREADS);

        const doneBeforeRestart = runs(s.recordFile).length;
        await s.server.start();
        const all = await waitForAll(s, jobs, 60_000);
        expect(alive(consumer)).toBe(true);
        expect([...new Set(all)].sort((a, b) => a - b)).toEqual(Array.from({ length: jobs }, (_, i) => i + 1));
        // At least once: a job runs again only when its ack could not be written before its lease (30 s)
        // ran out — one that finished during the outage, or just before the crash with its ack not yet
        // flushed. After the restart no job runs twice.
        const before = new Set(all.slice(0, doneBeforeRestart));
        const after = all.slice(doneBeforeRestart);
        expect(new Set(after).size, 'a job ran twice after the restart').toBe(after.length);
        const again = after.filter((n) => before.has(n));
        expect(again.length).toBeLessThanOrEqual(doneInOutage + THREADS);
        const twice = all.length - new Set(all).size;
        expect(twice).toBe(again.length);
        // The outage was noticed (and reported) by the consumer, not hidden.
        expect(logMessages(s.logFile).some((m) => m.startsWith('queue unreachable'))).toBe(true);
        await stopCleanly(consumer);
        console.info(`[redis-outage] ${kind}: ${doneAtCrash} done at the crash, ${doneInOutage} finished during the outage, ${twice} ran twice`);
      },
    );

    it(
      `${kind}: Redis down when the consumer starts and up 5 s later — the consumer waits (default --connect-timeout) and then runs the jobs`,
      { timeout: 90_000 },
      async () => {
        const jobs = 20;
        const s = await setup(`late-${kind}`, blocking, jobs, 20);
        await s.server.stop('SIGTERM'); // the jobs are on disk (AOF); nothing listens on the port now
        const consumer = consume(s);
        // From its first failed connection attempt (not from the spawn: loading the CLI takes seconds on a busy machine).
        await waitFor('the consumer finds Redis down', () => jsonLines(consumer.stdout()).some((l) => String(l.msg).startsWith('queue unreachable')), 60_000);
        await sleep(5_000);
        expect(alive(consumer), `the consumer gave up while the server was down: ${consumer.stderr()}`).toBe(true);
        expect(runs(s.recordFile)).toEqual([]);

        await s.server.start();
        const all = await waitForAll(s, jobs, 60_000);
        expect([...new Set(all)].sort((a, b) => a - b)).toEqual(Array.from({ length: jobs }, (_, i) => i + 1));
        expect(all).toHaveLength(jobs); // nothing was leased before the server came: no job twice
        await stopCleanly(consumer);
      },
    );
  }
});
