/**
 * Reliability scenario 4 in a real `taskmill consume` process on every
 * durable backend: commands that throw or reject with non-Errors ('x',
 * undefined, null, a cyclic object, a BigInt), never resolve (stopped by
 * their `timeout`), return what a result cannot hold (a function, a cyclic
 * object, a symbol), or block the event loop for longer than their lease.
 * Each lands in the failed store with a readable error (or, for the blocked
 * loop, ends as described below); the consumer keeps going and stops cleanly.
 *
 * (test/consumer/failures.test.ts covers the thrown values in process, on
 * the memory queue, with the worker-replacement log lines.)
 */
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { type BaseQueue } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { ROOT, jsonLines, spawnCli, waitFor, type Spawned } from '../helpers/processes.js';
import { records } from '../fixtures/cli-helpers.js';
import { describeEachBackend, isDrained, type Suite } from './kit.js';

const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'misbehaving-commands.ts');
const MAX_DELIVERIES = 3;

const spawned: Spawned[] = [];
afterAll(() => spawned.forEach((c) => c.child.kill('SIGKILL')));

/** [command, args, what the failed store's error must say] */
const MISBEHAVING: [string, unknown[], RegExp][] = [
  ['throws', ['string'], /^NonError: non-Error thrown: x\n/],
  ['throws', ['undefined'], /^NonError: non-Error thrown: undefined\n/],
  ['throws', ['null'], /^NonError: non-Error thrown: null\n/],
  ['throws', ['cyclic'], /^NonError: non-Error thrown: <ref \*1> \{ name: 'loop', self: \[Circular \*1\] \}\n/],
  ['throws', ['bigint'], /^NonError: non-Error thrown: 10n\n/],
  ['rejects', ['string'], /^NonError: non-Error thrown: x\n/],
  ['rejects', ['undefined'], /^NonError: non-Error thrown: undefined\n/],
  ['rejects', ['null'], /^NonError: non-Error thrown: null\n/],
  ['rejects', ['cyclic'], /^NonError: non-Error thrown: <ref \*1> \{ name: 'loop', self: \[Circular \*1\] \}\n/],
  ['rejects', ['bigint'], /^NonError: non-Error thrown: 10n\n/],
  ['never-resolves', [], /^CommandTimeoutError: command "never-resolves" timed out after 500 ms\n/],
  ['returns', ['function'], /^SerializationError: cannot serialize result: .*function/],
  ['returns', ['cyclic'], /^SerializationError: cannot serialize result\.self: circular reference back to result\n/],
  ['returns', ['symbol'], /^SerializationError: cannot serialize result: .*symbol/],
];

interface Consume {
  consumer: Spawned;
  queue: BaseQueue;
  recordFile: string;
  logs(): Record<string, unknown>[];
}

/** `taskmill consume` on a fresh queue of this backend, with `jobs` written before it starts. */
async function consume(suite: Suite, label: string, jobs: [string, unknown[]][], args: string[]): Promise<Consume> {
  const url = suite.freshUrl();
  const recordFile = path.join(suite.dir, `${label}.records`);
  const queue = suite.openQueue(url);
  await queue.writeBatch(jobs.map(([command, jobArgs]) => encodeMessage(command, jobArgs).data));
  const consumer = spawnCli(['consume', '-q', url, '-n', '-d', '0.02', '-m', '0.2', ...args, COMMANDS], { env: { RECORD_FILE: recordFile }, cwd: suite.dir });
  spawned.push(consumer);
  const logs = () => jsonLines(consumer.stdout());
  await waitFor('consumer running', () => logs().some((l) => l.msg === 'consumer running') || consumer.child.exitCode !== null, 60_000);
  expect(consumer.child.exitCode, consumer.stderr()).toBeNull();
  return { consumer, queue, recordFile, logs };
}

const commandOf = (data: string) => JSON.parse(data) as { command: string; args: unknown[] };
/** "throws-bigint", "never-resolves": what a command records, and how the test tells failures apart. */
const keyOf = (command: string, args: unknown[]) => (args.length > 0 ? `${command}-${String(args[0])}` : command);

describeEachBackend(
  'misbehaving commands in a real consumer',
  (backend, suite) => {
    it(
      'non-Errors thrown or rejected, a command that never resolves, unserialisable results: each in the failed store with a readable error; the consumer keeps going',
      { timeout: 90_000 },
      async () => {
        const jobs: [string, unknown[]][] = [...MISBEHAVING.map(([command, args]) => [command, args] as [string, unknown[]]), ['ok', [1]]];
        const { consumer, queue, recordFile, logs } = await consume(suite, 'misbehaving', jobs, ['-t', '2']);
        await waitFor(
          'every job failed or done',
          async () => (await queue.stats()).failed === MISBEHAVING.length && isDrained(await queue.stats()),
          60_000,
          100,
        );

        const failed = await queue.failed(100);
        expect(failed).toHaveLength(MISBEHAVING.length);
        for (const [command, args, expected] of MISBEHAVING) {
          const label = keyOf(command, args);
          const entry = failed.find((f) => keyOf(commandOf(f.data).command, commandOf(f.data).args) === label);
          expect(entry, label).toBeDefined();
          expect(entry!.error, label).toMatch(expected);
          expect(entry!.attempt, label).toBe(1);
        }
        // Each ran once (no retries configured), and the good job after them ran too.
        expect(
          records(recordFile)
            .map((line) => line.split(' ')[0])
            .sort(),
        ).toEqual([...MISBEHAVING.map(([command, args]) => keyOf(command, args)), 'ok-1'].sort());
        // One error line per failure, each naming its command; workers replaced, the process alive.
        // The logger writes asynchronously, so the last failure's line may reach the pipe after its failed-store record.
        const failureLines = () => logs().filter((l) => l.msg === 'command failed; worker replaced');
        await waitFor('a log line per failure', () => failureLines().length >= MISBEHAVING.length, 10_000);
        const failures = failureLines();
        expect(failures.map((l) => l.command).sort()).toEqual(MISBEHAVING.map(([command]) => command).sort());
        expect(consumer.child.exitCode).toBeNull();

        await queue.write(encodeMessage('ok', [2]).data);
        await waitFor('a job written afterwards to run', () => records(recordFile).some((line) => line.startsWith('ok-2 ')), 30_000);
        consumer.child.kill('SIGTERM');
        expect(await consumer.exited, consumer.stderr()).toBe(0);
        expect(consumer.stderr()).toBe('');
        console.info(`[reliability] misbehaving commands on ${backend.name}: ok`);
      },
    );

    it(
      `a command that blocks the event loop for 2.5× its lease: no heartbeat can run, so its lease lapses, its late ack is refused and it runs again — ${MAX_DELIVERIES} times, then it is failed as "worker lost"; the consumer keeps going`,
      { timeout: 90_000 },
      async () => {
        const jobs: [string, unknown[]][] = [
          ['blocks-loop', [2500]],
          ['ok', [1]],
        ];
        const { consumer, queue, recordFile, logs } = await consume(suite, 'blocking', jobs, ['-t', '1', '--lease', '1']);
        await waitFor(
          'the blocked job and the next one to end',
          async () => records(recordFile).some((l) => l.startsWith('ok-1 ')) && isDrained(await queue.stats()),
          60_000,
          100,
        );

        const runs = records(recordFile).filter((line) => line.startsWith('blocks-loop-'));
        const failed = await queue.failed();
        console.info(
          `[reliability] a loop blocked 2.5 s with a 1 s lease on ${backend.name}: ran ${runs.length} times; ${failed.length ? `failed: ${failed[0]!.error.split('\n')[0]}` : 'acked'}; ` +
            `${logs().filter((l) => String(l.msg).startsWith('ack refused')).length} ack(s) refused`,
        );
        // It did run again: one run cannot keep a lease it has no chance to extend, and its late ack is fenced by
        // its delivery, so not even the ack of a run that ends after this consumer read the message again lands.
        expect(runs.length).toBe(MAX_DELIVERIES);
        // Every run is the same envelope attempt (1): these are re-deliveries, not retries.
        expect(runs.every((line) => line.startsWith('blocks-loop-attempt-1 '))).toBe(true);
        expect(failed).toHaveLength(1);
        expect(failed[0]!.error).toMatch(/^WorkerLostError: worker lost: command "blocks-loop"/);
        // No error but a "worker lost" failure (the runs ended normally; only their acks were refused), and it is
        // logged only when it is in the failed store: a run's late ack is fenced by its delivery, so it cannot land
        // after this consumer read the message again and make the next delivery's "worker lost" fail be refused.
        // The logger writes asynchronously: the failure's line may reach the pipe after its failed-store record.
        const errorLines = () => logs().filter((l) => (l.level as number) >= 50);
        await waitFor('the failure logged', () => errorLines().length >= failed.length, 10_000);
        expect(errorLines().map((l) => (l.err as { name?: string } | undefined)?.name)).toEqual(failed.length > 0 ? ['WorkerLostError'] : []);
        consumer.child.kill('SIGTERM');
        expect(await consumer.exited, consumer.stderr()).toBe(0);
      },
    );
  },
  { concurrent: true },
);
