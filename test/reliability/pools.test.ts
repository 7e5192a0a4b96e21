/**
 * Commands in worker threads and child processes (docs/isolation.md), in
 * real `taskmill consume --pool threads|processes` processes on SQLite:
 *
 * - crashes — an error thrown in a timer, process.exit(1), out of memory
 *   (--pool-memory), a busy loop past its timeout — fail their own job only
 *   ("worker lost"; the loop: timed out, its thread or process terminated);
 *   the jobs running beside them are not delivered again; the consumer stays
 *   up, replaces the child, runs what comes next and stops cleanly;
 * - arguments, results, progress and cancel cross the boundary; a result
 *   that cannot be stored fails as it does inline; an argument that cannot
 *   be sent is refused at enqueue, nothing written; an `inline` command
 *   stays in the consumer;
 * - a module that cannot be imported in a thread or process fails start,
 *   naming the module and why; a bad --pool is refused naming the value;
 * - a Ctrl-C to the consumer's process group still drains: a child process
 *   ignores the signal and finishes its job.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobFailedError, SerializationError, configure, createQueue, type BaseQueue, type Job } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { CLI, ROOT, TSX_LOADER, jsonLines, spawnCli, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { records } from '../fixtures/cli-helpers.js';
import { isDrained } from './kit.js';
import { echo, inThread, returnsFunction, stages, stayInline, waits } from '../fixtures/pool-commands.js';

const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'pool-commands.ts');
const BROKEN = path.join(ROOT, 'test', 'fixtures', 'pool-broken.ts');
const NOUN = { threads: 'worker thread', processes: 'child process' } as const;

const spawned: Spawned[] = [];
const queues: BaseQueue[] = [];
afterAll(async () => {
  spawned.forEach((c) => c.child.kill('SIGKILL'));
  await Promise.all(queues.map((q) => q.close()));
});

interface Running {
  consumer: Spawned;
  queue: BaseQueue;
  url: string;
  recordFile: string;
  logs(): Record<string, unknown>[];
}

async function consume(pool: 'inline' | 'threads' | 'processes', label: string, jobs: [string, unknown[]][], args: string[] = []): Promise<Running> {
  const dir = tempDir(`taskmill-pool-${label}-`);
  const url = `sqlite:${path.join(dir, 'queue.sqlite')}`;
  const recordFile = path.join(dir, 'records');
  const queue = createQueue(url);
  queues.push(queue);
  await queue.open();
  if (jobs.length > 0) await queue.writeBatch(jobs.map(([command, jobArgs]) => encodeMessage(command, jobArgs).data));
  const consumer = spawnCli(['consume', '-q', url, '-n', '-d', '0.02', '-m', '0.2', '--pool', pool, ...args, COMMANDS], {
    env: { RECORD_FILE: recordFile },
    cwd: dir,
  });
  spawned.push(consumer);
  const logs = () => jsonLines(consumer.stdout());
  await waitFor('consumer running', () => logs().some((l) => l.msg === 'consumer running') || consumer.child.exitCode !== null, 60_000);
  expect(consumer.child.exitCode, consumer.stderr()).toBeNull();
  return { consumer, queue, url, recordFile, logs };
}

const commandOf = (data: string) => (JSON.parse(data) as { command: string }).command;
const names = (file: string) => records(file).map((line) => line.split(' ')[0]!);

describe.each(['threads', 'processes'] as const)('--pool %s', (pool) => {
  it(
    'a crash (error in a timer, process.exit(1), out of memory, a busy loop past its timeout; processes: process.abort()) fails its own job only; neighbours are not delivered again; the consumer stays up',
    { timeout: 120_000 },
    async () => {
      const jobs: [string, unknown[]][] = [
        ['slow', [1, 1500]],
        ['exits', []],
        ['slow', [2, 1500]],
        ['throws-later', []],
        ['slow', [3, 1500]],
        ['eats-memory', []],
        ['slow', [4, 1500]],
        ['spins', []],
        ['slow', [5, 1500]],
        // A native crash takes a thread's whole process: only processes are tried with it.
        ...(pool === 'processes'
          ? ([
              ['aborts', []],
              ['slow', [6, 1500]],
            ] as [string, unknown[]][])
          : []),
      ];
      const slowCount = pool === 'processes' ? 6 : 5;
      const crashes = pool === 'processes' ? 5 : 4;
      const { consumer, queue, recordFile, logs } = await consume(pool, 'crash', jobs, ['-t', '2', '--pool-memory', '64']);
      await waitFor(
        'every job failed or done',
        async () => {
          const stats = await queue.stats();
          return stats.failed === crashes && isDrained(stats) && names(recordFile).filter((n) => n.startsWith('slow-end-')).length === slowCount;
        },
        90_000,
        100,
      );

      const failed = await queue.failed(100);
      const errorOf = (command: string) => failed.find((f) => commandOf(f.data) === command)?.error ?? '';
      const lost = `^WorkerLostError: worker lost: command "%s" took its ${NOUN[pool]} down: it `;
      expect(errorOf('exits')).toMatch(new RegExp(`${lost.replace('%s', 'exits')}exited with code 1 \\(delivery 1\\); not run again`));
      expect(errorOf('throws-later')).toMatch(new RegExp(`${lost.replace('%s', 'throws-later')}threw Error: boom from a timer that nothing caught`));
      expect(errorOf('eats-memory')).toMatch(
        new RegExp(`${lost.replace('%s', 'eats-memory')}${pool === 'threads' ? 'ran out of memory' : '(was killed by SIGABRT|exited with code 134)'}`),
      );
      expect(errorOf('spins')).toMatch(/^CommandTimeoutError: command "spins" timed out after 300 ms/);
      if (pool === 'processes') expect(errorOf('aborts')).toMatch(new RegExp(`${lost.replace('%s', 'aborts')}was killed by SIGABRT`));
      expect(failed.every((f) => f.attempt === 1)).toBe(true);

      // Each ran once: no neighbour lost a delivery, no crash ran again.
      expect(names(recordFile).sort()).toEqual(
        [
          'eats-memory',
          'exits',
          'spins-1',
          'throws-later',
          ...(pool === 'processes' ? ['aborts'] : []),
          ...Array.from({ length: slowCount }, (_, i) => [`slow-start-${i + 1}`, `slow-end-${i + 1}`]).flat(),
        ].sort(),
      );
      // The spinning child ignored its aborted signal: it was terminated after the grace period.
      await waitFor('the spinning child to be terminated', () => logs().some((l) => String(l.msg).includes("ignored its job's aborted signal")), 10_000);
      expect(consumer.child.exitCode).toBeNull();

      // The consumer goes on in fresh children.
      await queue.write(encodeMessage('echo', ['after']).data);
      await waitFor('a job written afterwards to run', () => names(recordFile).includes('echo'), 30_000);
      consumer.child.kill('SIGTERM');
      expect(await consumer.exited, consumer.stderr()).toBe(0);
      console.info(`[pools] crashes in --pool ${pool}: ${failed.map((f) => f.error.split('\n')[0]).join(' | ')}`);
    },
  );

  it(
    'arguments, results, progress and cancel cross the boundary; an unstorable result fails as inline; an unsendable argument is refused at enqueue; inline commands stay inline',
    { timeout: 90_000 },
    async () => {
      const { consumer, queue, url, recordFile } = await consume(pool, 'cross', [], ['-t', '2']);
      configure({ queue: url });
      const consumerPid = consumer.child.pid;

      const when = new Date('2024-02-03T04:05:06.007Z');
      const args = [
        when,
        new Map<string, unknown>([['big', 12n]]),
        new Set([1, 'two']),
        new Uint8Array([1, 2, 3]),
        { nested: [null, undefined, -0, Number.NaN] },
      ];
      const echoed = (await (await echo(...args)).result({ timeout: 30_000 })) as { pid: number; threadId: number; attempt: number; args: unknown[] };
      expect(echoed.args).toEqual(args);
      expect(echoed.args[0]).toBeInstanceOf(Date);
      expect(echoed.attempt).toBe(1);
      if (pool === 'threads') {
        expect(echoed.pid).toBe(consumerPid);
        expect(echoed.threadId).not.toBe(0);
      } else {
        expect(echoed.pid).not.toBe(consumerPid);
      }

      const staged = await stages(4);
      const seen = await waitFor('progress from the child', async () => (await staged.progress()) as { stage: number } | undefined, 20_000, 20);
      expect(seen.stage).toBeGreaterThanOrEqual(1);
      expect(await staged.result({ timeout: 20_000 })).toBe('all stages');
      expect(await staged.progress()).toEqual({ stage: 4, of: 4 });

      const waiting: Job<unknown> = await waits();
      await waitFor('the waiting job to start', () => names(recordFile).includes('waits'), 20_000);
      expect(await waiting.cancel()).toBe('cancelled');
      await waitFor('its signal aborted in the child', () => names(recordFile).includes('waits-aborted-JobCancelledError'), 20_000);
      await waitFor('the job recorded as cancelled', async () => (await waiting.status()) === 'cancelled', 20_000);

      const unstorable = await returnsFunction();
      const failure = await unstorable.result({ timeout: 20_000 }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(JobFailedError);
      expect((failure as JobFailedError).remote.name).toBe('SerializationError');
      expect((failure as JobFailedError).remote.message).toMatch(/^cannot serialize result: .*function/);

      const before = await queue.stats();
      await expect(echo(() => 1)).rejects.toThrow(SerializationError);
      expect(await queue.stats()).toEqual(before);

      const inline = await (await stayInline()).result({ timeout: 20_000 });
      expect(inline).toEqual({ pid: consumerPid, threadId: 0 });

      expect(consumer.child.exitCode).toBeNull();
      consumer.child.kill('SIGTERM');
      expect(await consumer.exited, consumer.stderr()).toBe(0);
    },
  );

  it(
    'a command that blocks its loop for 2.5× the lease runs once: the consumer keeps extending the lease meanwhile (inline it runs again)',
    { timeout: 60_000 },
    async () => {
      const { consumer, queue, recordFile, logs } = await consume(pool, 'blocks', [['blocks', [2500]]], ['-t', '1', '--lease', '1']);
      await waitFor('the blocking job to be acked', async () => names(recordFile).includes('blocks') && isDrained(await queue.stats()), 30_000, 100);
      await new Promise((resolve) => setTimeout(resolve, 1500)); // a second delivery would show by now
      expect(names(recordFile)).toEqual(['blocks']);
      expect((await queue.stats()).failed).toBe(0);
      expect(logs().filter((l) => String(l.msg).startsWith('ack refused'))).toEqual([]);
      consumer.child.kill('SIGTERM');
      expect(await consumer.exited, consumer.stderr()).toBe(0);
    },
  );

  it('a forced stop (the grace ran out) aborts the signal of the job running in the child', { timeout: 60_000 }, async () => {
    const { consumer, recordFile } = await consume(pool, 'forced', [['waits', []]], ['-t', '1', '-g', '0.5']);
    await waitFor('the job to start', () => names(recordFile).includes('waits'), 20_000);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited, consumer.stderr()).toBe(2); // forced
    expect(names(recordFile)).toEqual(['waits', 'waits-aborted-Error']);
  });

  it('a module that cannot be imported in the pool fails start, naming it and why', { timeout: 60_000 }, async () => {
    const dir = tempDir('taskmill-pool-broken-');
    const run = spawnCli(['consume', '-q', `sqlite:${path.join(dir, 'q.sqlite')}`, '-n', '--pool', pool, BROKEN], { cwd: dir });
    spawned.push(run);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toMatch(
      new RegExp(
        `cannot start consumer on .*: createConsumer: pool '${pool}' cannot start: importing .*pool-broken\\.[jt]s in a ${NOUN[pool]} failed: Error: this module needs the main process`,
      ),
    );
  });
});

it("a command's own pool wins: in an inline consumer, pool: 'threads' runs in a thread and the rest inline", { timeout: 60_000 }, async () => {
  const { consumer, url } = await consume('inline', 'own-pool', []);
  configure({ queue: url });
  const threaded = await (await inThread()).result({ timeout: 20_000 });
  expect(threaded.pid).toBe(consumer.child.pid);
  expect(threaded.threadId).not.toBe(0);
  const echoed = (await (await echo()).result({ timeout: 20_000 })) as { threadId: number; pid: number };
  expect(echoed).toMatchObject({ pid: consumer.child.pid, threadId: 0 });
  consumer.child.kill('SIGTERM');
  expect(await consumer.exited, consumer.stderr()).toBe(0);
});

it('a module whose commands all stay inline is not imported in the pool (it may need the main thread)', { timeout: 60_000 }, async () => {
  const run = await consume('threads', 'main-only', [['main-only', []]], [path.join(ROOT, 'test', 'fixtures', 'pool-main-only.ts')]);
  await waitFor('the inline job to be done', async () => isDrained(await run.queue.stats()), 20_000);
  expect((await run.queue.stats()).failed).toBe(0);
  run.consumer.child.kill('SIGTERM');
  expect(await run.consumer.exited, run.consumer.stderr()).toBe(0);
});

it(
  "--pool processes: a Ctrl-C to the consumer's process group drains; the job running in a child process finishes (the child ignores the signal)",
  { timeout: 60_000 },
  async () => {
    const dir = tempDir('taskmill-pool-sigint-');
    const url = `sqlite:${path.join(dir, 'queue.sqlite')}`;
    const recordFile = path.join(dir, 'records');
    const queue = createQueue(url);
    queues.push(queue);
    await queue.open();
    await queue.write(encodeMessage('slow', [1, 2000]).data);
    // Its own process group, as a shell gives a foreground job: the signal reaches the children too.
    const child = spawn(process.execPath, ['--import', TSX_LOADER, CLI, 'consume', '-q', url, '-n', '-d', '0.02', '--pool', 'processes', COMMANDS], {
      cwd: dir,
      detached: true,
      env: { ...process.env, RECORD_FILE: recordFile },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    spawned.push({ child, stdout: () => '', stderr: () => '', exited: Promise.resolve(0) });
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    await waitFor('the job to start in its child process', () => names(recordFile).includes('slow-start-1'), 30_000);
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    expect(names(recordFile)).toEqual(['slow-start-1', 'slow-end-1']);
    expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
  },
);

it('--pool with an unknown value is refused, naming it', { timeout: 30_000 }, async () => {
  const run = spawnCli(['consume', '--pool', 'fibers', COMMANDS], { cwd: tempDir() });
  spawned.push(run);
  expect(await run.exited).toBe(1);
  expect(run.stderr()).toMatch(/invalid --pool "fibers": must be one of inline, threads, processes/);
});
