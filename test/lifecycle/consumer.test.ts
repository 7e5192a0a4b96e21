/**
 * Issue 7, consumer level: every job-lifecycle feature through a real
 * in-process consumer (createConsumer, 2 workers, its own registry) on
 * memory, SQLite, Redis and PostgreSQL — results, status, retries with
 * backoff, Retry, delayed jobs, revoke, expiry, timeouts, hooks, result
 * TTL — and, on SQLite, the failed-store CLI (failed / retry / purge-failed).
 *
 * Timing assertions are lower bounds ("not before its time"), except the
 * documented promotion promise (a delayed job starts within about a second
 * of its time), checked with half a second of slack.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CommandTimeoutError,
  JobExpiredError,
  JobFailedError,
  JobResultTimeoutError,
  JobRevokedError,
  configure,
  createConsumer,
  jobEvents,
  type Consumer,
  type JobEventName,
} from '../../src/index.js';
import { decodeMessage } from '../../src/codec/message.js';
import { getSettings, resolveQueue } from '../../src/producer/settings.js';
import { spawnCli, waitFor } from '../helpers/processes.js';
import { BACKENDS, Probe, recordHooks, sleep } from '../fixtures/lifecycle-kit.js';
import { DoomError, defineLocalCommands, richValue } from '../fixtures/lifecycle-local-commands.js';

const logger = pino({ level: 'silent' });
/** Clock reads of two processes/servers on this machine may disagree by a few ms. */
const CLOCK_SLACK_MS = 25;

async function failureOf(promise: Promise<unknown>): Promise<any> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: unknown) => error,
  );
}

/** process.emitWarning calls (throwing hook listeners are reported there), kept instead of printed. */
const warnings: string[] = [];
beforeAll(() => {
  vi.spyOn(process, 'emitWarning').mockImplementation((warning: string | Error) => void warnings.push(String(warning)));
});
afterAll(() => vi.restoreAllMocks());

async function cli(args: string[]): Promise<string> {
  const run = spawnCli(args);
  const code = await run.exited;
  expect(code, run.stderr()).toBe(0);
  return run.stdout();
}

for (const backend of BACKENDS) {
  const { kind } = backend;

  // The four backends run side by side; the tests of one backend run in order (they share its consumer).
  (backend.available ? describe.concurrent : describe.skip)(`job lifecycle through a consumer on ${kind}`, () => {
    const url = backend.freshUrl();
    const probe = new Probe();
    const c = defineLocalCommands(kind, url, probe);
    const hooks = recordHooks();
    let consumer: Consumer;
    const eventsOf = (jobId: string, name: JobEventName) =>
      hooks
        .of(jobId)
        .filter((e) => e.name === name)
        .map((e) => e.event as any);
    const attemptsOf = (jobId: string) => probe.runsOf(jobId).map((r) => r.attempt);
    /** Both workers busy with `hold` jobs until the returned function opens their gates. */
    const occupyWorkers = async (label: string) => {
      const keys = [`${label}-a`, `${label}-b`];
      const jobs = await Promise.all(keys.map((key) => c.hold(key)));
      await waitFor('both workers busy', () => jobs.every((job) => probe.runsOf(job.id).length === 1), 10_000);
      return async () => {
        keys.forEach((key) => probe.open(key));
        for (const job of jobs) await job.result({ timeout: 10_000 });
      };
    };

    beforeAll(async () => {
      consumer = createConsumer({ queue: url, registry: c.registry, logger, workers: 2, periodic: false, pollDelayMs: 5, maxPollDelayMs: 50 });
      await consumer.start();
    });
    afterAll(async () => {
      hooks.stop();
      await consumer?.stop({ timeout: 2_000 });
      // Only this backend's producer queue: the others are still in use.
      await resolveQueue(url).close();
      await backend.dispose(url);
    });

    it.sequential('job.result() returns the return value; Date, Map, Set, BigInt, Uint8Array and undefined round-trip', async () => {
      const job = await c.rich();
      const value = await job.result({ timeout: 10_000 });
      expect(value).toEqual(richValue());
      expect(value.when).toBeInstanceOf(Date);
      expect(typeof value.big).toBe('bigint');
      expect([...value.map.keys()]).toEqual(['a', 2]);
      expect('nothing' in value).toBe(true);
      expect(await job.status()).toBe('completed');
      // The same through an argument and back.
      const echoed = await c.echo(richValue());
      expect(await echoed.result({ timeout: 10_000 })).toEqual(richValue());
    });

    it.sequential('an unserializable return value fails the attempt with a SerializationError', async () => {
      const job = await c.unserializable();
      const error = await failureOf(job.result({ timeout: 10_000 }));
      expect(error).toBeInstanceOf(JobFailedError);
      expect(error.remote.name).toBe('SerializationError');
      expect(error.remote.message).toContain('result');
    });

    it.sequential('results: false stores nothing: the job runs and is acked, status() stays pending', async () => {
      const job = await c.quiet();
      await waitFor(
        'the job to be acked',
        async () => {
          const stats = await consumer.queue.stats();
          return probe.runsOf(job.id).length === 1 && stats.ready === 0 && stats.leased === 0;
        },
        10_000,
      );
      // Results are written before the ack of the same flush: had there been one, it would be there.
      expect(await job.status()).toBe('pending');
      expect(await failureOf(job.result({ timeout: 300 }))).toBeInstanceOf(JobResultTimeoutError);
      expect(eventsOf(job.id, 'completed')).toHaveLength(1);
    });

    it.sequential('status(): pending while queued and running, retrying between attempts, completed at the end', async () => {
      const job = await c.stages();
      expect(await job.status()).toBe('pending');
      await waitFor('attempt 1 running', () => probe.runsOf(job.id).length === 1, 10_000);
      expect(await job.status()).toBe('pending');
      probe.open(`${job.id}:1`);
      await waitFor('status retrying', async () => (await job.status()) === 'retrying', 10_000);
      await waitFor('attempt 2 running', () => probe.runsOf(job.id).length === 2, 10_000);
      expect(await job.status()).toBe('retrying');
      probe.open(`${job.id}:2`);
      expect(await job.result({ timeout: 10_000 })).toBe('staged');
      expect(await job.status()).toBe('completed');
      expect(attemptsOf(job.id)).toEqual([1, 2]);
    });

    it.sequential('retries: 2 — failing twice then succeeding runs exactly 3 times and result() gives the value', async () => {
      const job = await c.flaky(2);
      expect(await job.result({ timeout: 10_000 })).toEqual({ attempt: 3, at: new Date(3) });
      await sleep(300);
      expect(attemptsOf(job.id)).toEqual([1, 2, 3]);
      expect(eventsOf(job.id, 'started').map((e) => e.attempt)).toEqual([1, 2, 3]);
      const retrying = eventsOf(job.id, 'retrying');
      expect(retrying.map((e) => [e.attempt, e.error.message, e.delayMs])).toEqual([
        [1, 'flaky attempt 1', 0],
        [2, 'flaky attempt 2', 0],
      ]);
      expect(eventsOf(job.id, 'completed').map((e) => e.attempt)).toEqual([3]);
      expect(eventsOf(job.id, 'failed')).toEqual([]);
    });

    it.sequential('retries spent: JobFailedError with the remote name, message and stack, attempt 3, in the failed store, ran 3 times', async () => {
      const job = await c.doomed();
      const error = await failureOf(job.result({ timeout: 10_000 }));
      expect(error).toBeInstanceOf(JobFailedError);
      expect(error.jobId).toBe(job.id);
      expect(error.attempt).toBe(3);
      expect(error.remote).toMatchObject({ name: 'DoomError', message: `doomed ${job.id} on attempt 3` });
      expect(error.remote.stack).toMatch(/^DoomError: doomed \S+ on attempt 3\n\s+at /);
      expect(await job.status()).toBe('failed');

      // The result record is stored before the message moves to the failed store (so it exists once the
      // job has left the queue): the failed store may be a moment behind the result.
      const entry = await waitFor(
        'the failed-store entry',
        async () => (await consumer.queue.failed(1_000)).find((f) => decodeMessage(f.data).id === job.id),
        5_000,
        10,
      );
      expect(entry.error).toMatch(new RegExp(`^DoomError: doomed ${job.id} on attempt 3\\n\\s+at `));
      expect(decodeMessage(entry.data).attempt).toBe(3);

      await sleep(300);
      expect(attemptsOf(job.id)).toEqual([1, 2, 3]);
      const failed = eventsOf(job.id, 'failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ jobId: job.id, command: c.doomed.commandName, attempt: 3 });
      expect(failed[0].error).toBeInstanceOf(DoomError);
      expect(eventsOf(job.id, 'retrying').map((e) => e.attempt)).toEqual([1, 2]);
    });

    it.sequential('retryDelay 400 ms × retryBackoff 2: attempts start no earlier than ≈400 ms and ≈800 ms (±20 %) after each failure', async () => {
      const job = await c.backoff();
      expect(await job.result({ timeout: 15_000 })).toBe('third time');
      const [first, second, third] = probe.runsOf(job.id);
      expect(attemptsOf(job.id)).toEqual([1, 2, 3]);
      const delays = eventsOf(job.id, 'retrying').map((e) => e.delayMs as number);
      expect(delays).toHaveLength(2);
      expect(delays[0]).toBeGreaterThanOrEqual(320);
      expect(delays[0]).toBeLessThanOrEqual(480);
      expect(delays[1]).toBeGreaterThanOrEqual(640);
      expect(delays[1]).toBeLessThanOrEqual(960);
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(delays[0]! - CLOCK_SLACK_MS);
      expect(third!.at - second!.at).toBeGreaterThanOrEqual(delays[1]! - CLOCK_SLACK_MS);
    });

    it.sequential('throw new Retry({ delay }) runs again after that delay; Retry from a command without retries stops after 3 retries', async () => {
      const job = await c.asksRetry();
      expect(await job.result({ timeout: 10_000 })).toBe('ready');
      const [first, second] = probe.runsOf(job.id);
      expect(attemptsOf(job.id)).toEqual([1, 2]);
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(700 - CLOCK_SLACK_MS);
      const [retrying] = eventsOf(job.id, 'retrying');
      expect(retrying).toMatchObject({ attempt: 1, delayMs: 700 });
      expect(retrying.error).toMatchObject({ name: 'Retry', message: 'not ready yet' });

      const forever = await c.retryForever();
      const error = await failureOf(forever.result({ timeout: 10_000 }));
      expect(error).toBeInstanceOf(JobFailedError);
      expect(error.attempt).toBe(4);
      expect(error.remote).toMatchObject({ name: 'Retry', message: 'retry requested' });
      await sleep(300);
      expect(attemptsOf(forever.id)).toEqual([1, 2, 3, 4]);
    });

    it.sequential('schedule({ delay: 1500 }) and schedule({ eta }) do not start before their time, and start within about a second of it', async () => {
      const before = Date.now();
      const delayed = await c.stamp.schedule({ delay: 1_500 });
      const eta = new Date(Date.now() + 1_200);
      const byEta = await c.stamp.schedule({ eta });
      expect(await delayed.status()).toBe('pending');
      const [enqueued] = eventsOf(delayed.id, 'enqueued');
      expect(enqueued).toMatchObject({ command: c.stamp.commandName, messageId: delayed.messageId });
      expect(enqueued.runAt).toBeGreaterThanOrEqual(before + 1_500);
      expect(eventsOf(byEta.id, 'enqueued')[0].runAt).toBe(eta.getTime());

      const delayedStart = await delayed.result({ timeout: 10_000 });
      const etaStart = await byEta.result({ timeout: 10_000 });
      expect(delayedStart).toBeGreaterThanOrEqual(enqueued.runAt - CLOCK_SLACK_MS);
      expect(etaStart).toBeGreaterThanOrEqual(eta.getTime() - CLOCK_SLACK_MS);
      // Promotion runs once a second (documented); half a second of slack for polling and load.
      expect(delayedStart - enqueued.runAt).toBeLessThan(1_500);
      expect(etaStart - eta.getTime()).toBeLessThan(1_500);
      expect(attemptsOf(delayed.id)).toEqual([1]);
      expect(attemptsOf(byEta.id)).toEqual([1]);
    });

    it.sequential('revoke() before it runs: true, never runs, status revoked, JobRevokedError — for a delayed and a ready job', async () => {
      const delayedVictim = await c.stamp.schedule({ delay: 700 });
      const delayedWitness = await c.stamp.schedule({ delay: 900 });
      expect(await delayedVictim.revoke()).toBe(true);
      expect(await delayedVictim.revoke()).toBe(false);

      const release = await occupyWorkers(`${kind}-revoke`);
      const readyVictim = await c.echo('never');
      expect(await readyVictim.revoke()).toBe(true);
      const readyWitness = await c.echo('after');
      await release();

      // The witnesses were due with (or after) the victims: once they ran, the victims would have.
      expect(typeof (await delayedWitness.result({ timeout: 10_000 }))).toBe('number');
      expect(await readyWitness.result({ timeout: 10_000 })).toBe('after');
      await sleep(300);
      for (const victim of [delayedVictim, readyVictim]) {
        expect(probe.runsOf(victim.id)).toEqual([]);
        expect(await victim.status()).toBe('revoked');
        expect(await failureOf(victim.result({ timeout: 1_000 }))).toBeInstanceOf(JobRevokedError);
        expect(eventsOf(victim.id, 'revoked')).toEqual([{ jobId: victim.id, command: victim.command, messageId: victim.messageId }]);
        expect(eventsOf(victim.id, 'started')).toEqual([]);
      }
    });

    it.sequential('revoke() after it ran: false, and the result stays', async () => {
      const job = await c.echo(7);
      expect(await job.result({ timeout: 10_000 })).toBe(7);
      expect(await job.revoke()).toBe(false);
      expect(await job.status()).toBe('completed');
      expect(await job.result()).toBe(7);
      expect(eventsOf(job.id, 'revoked')).toEqual([]);
    });

    it.sequential('expires: a job not started within expires (ms, or by a Date) is skipped, recorded as expired, never run', async () => {
      const release = await occupyWorkers(`${kind}-expires`);
      const enqueuedAt = Date.now();
      const late = await c.shortLived();
      await sleep(450);
      await release();
      const pastDeadline = await c.pastDeadline();

      for (const job of [late, pastDeadline]) {
        expect(await failureOf(job.result({ timeout: 10_000 }))).toBeInstanceOf(JobExpiredError);
        expect(await job.status()).toBe('expired');
        expect(probe.runsOf(job.id)).toEqual([]);
        expect(eventsOf(job.id, 'started')).toEqual([]);
        const [expired] = eventsOf(job.id, 'expired');
        expect(expired).toMatchObject({ jobId: job.id, command: job.command, attempt: 1 });
        expect(expired.workerId).toMatch(/^worker-\d+/);
      }
      const [expired] = eventsOf(late.id, 'expired');
      expect(expired.expiresAt).toBeGreaterThanOrEqual(enqueuedAt + 300);
      expect(expired.expiresAt).toBeLessThanOrEqual(Date.now());
    });

    it.sequential('timeout: the AbortSignal aborts, the attempt fails retryably with CommandTimeoutError, a late resolve is ignored', async () => {
      const job = await c.slowOnce();
      expect(await job.result({ timeout: 10_000 })).toBe('second');
      const note = await waitFor('attempt 1 to resume after its timeout', () => probe.notes.find((n) => n.jobId === job.id), 5_000);
      expect(note.aborted).toBe(true);
      expect(note.reason).toBeInstanceOf(CommandTimeoutError);
      const [retrying] = eventsOf(job.id, 'retrying');
      expect(retrying.attempt).toBe(1);
      expect(retrying.error).toBeInstanceOf(CommandTimeoutError);
      expect(retrying.error.message).toContain('timed out after 150 ms');
      await sleep(100); // the late 'late' of attempt 1 has settled by now
      expect(await job.result()).toBe('second');
      expect(eventsOf(job.id, 'completed').map((e) => e.attempt)).toEqual([2]);

      const always = await c.slowAlways();
      const error = await failureOf(always.result({ timeout: 10_000 }));
      expect(error).toBeInstanceOf(JobFailedError);
      expect(error.attempt).toBe(1);
      expect(error.remote).toMatchObject({ name: 'CommandTimeoutError', message: `command "${always.command}" timed out after 100 ms` });
      const alwaysNote = await waitFor('the timed-out command to resume', () => probe.notes.find((n) => n.jobId === always.id), 5_000);
      expect(alwaysNote.aborted).toBe(true);
      await sleep(100);
      expect(await always.status()).toBe('failed');
      expect(eventsOf(always.id, 'completed')).toEqual([]);
      expect(attemptsOf(always.id)).toEqual([1]);
    });

    it.sequential('hooks: enqueued → started → completed with their payloads; throwing listeners are reported and break nothing', async () => {
      const job = await c.echo('hooked');
      expect(await job.result({ timeout: 10_000 })).toBe('hooked');
      await waitFor('completed hook', () => eventsOf(job.id, 'completed').length === 1, 5_000);
      // `enqueued` is emitted once the write resolves; in one process the consumer may start the job first.
      const consumerSide = (jobId: string) =>
        hooks
          .of(jobId)
          .map((e) => e.name)
          .filter((name) => name !== 'enqueued');
      expect(consumerSide(job.id)).toEqual(['started', 'completed']);
      expect(eventsOf(job.id, 'enqueued')).toEqual([{ jobId: job.id, command: job.command, messageId: job.messageId, runAt: undefined }]);
      const [started] = eventsOf(job.id, 'started');
      expect(started).toMatchObject({ jobId: job.id, command: job.command, attempt: 1 });
      expect(started.workerId).toMatch(/^worker-\d+/);
      const [completed] = eventsOf(job.id, 'completed');
      expect(completed).toMatchObject({ jobId: job.id, command: job.command, attempt: 1, workerId: started.workerId });
      expect(completed.durationMs).toBeGreaterThanOrEqual(0);

      const names: JobEventName[] = ['enqueued', 'started', 'completed', 'retrying'];
      const offs = names.map((name) =>
        jobEvents.on(name, () => {
          throw new Error(`${name} listener boom`);
        }),
      );
      try {
        const plain = await c.echo('still fine');
        const retried = await c.flaky(1);
        expect(await plain.result({ timeout: 10_000 })).toBe('still fine');
        expect(await retried.result({ timeout: 10_000 })).toEqual({ attempt: 2, at: new Date(2) });
        await waitFor('completed hooks', () => eventsOf(retried.id, 'completed').length === 1, 5_000);
        for (const name of names) expect(warnings).toContain(`taskmill: a "${name}" listener threw: ${name} listener boom`);
        // The recording listeners registered before the throwing ones still saw everything.
        expect(consumerSide(retried.id)).toEqual(['started', 'retrying', 'started', 'completed']);
        expect(eventsOf(retried.id, 'enqueued')).toHaveLength(1);
      } finally {
        offs.forEach((off) => off());
      }
    });

    it.sequential('resultTtl: 300 — the result is readable at once and gone after ~1 s (status pending again, result() times out)', async () => {
      const job = await c.ephemeral();
      // Poll tightly: result()'s own interval grows past 300 ms and could miss the record.
      await waitFor('the result', async () => (await job.status()) === 'completed', 10_000, 10);
      expect(await job.result()).toBe('soon gone');
      await sleep(1_000);
      expect(await job.status()).toBe('pending');
      expect(await failureOf(job.result({ timeout: 200 }))).toBeInstanceOf(JobResultTimeoutError);
    });

    (kind === 'sqlite' ? it.sequential : it.skip)('taskmill failed / retry / purge-failed on a failed job', { timeout: 60_000 }, async () => {
      const job = await c.cliDoomed();
      expect(await failureOf(job.result({ timeout: 10_000 }))).toBeInstanceOf(JobFailedError);
      const [human, json] = await Promise.all([cli(['failed', '-q', url]), cli(['failed', '-q', url, '--json'])]);
      const listed = json
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { id: string; attempt: number; error: string; data: string });
      const entry = listed.find((f) => decodeMessage(f.data).id === job.id)!;
      expect(entry, 'the job in taskmill failed --json').toBeDefined();
      expect(entry.error).toMatch(new RegExp(`^Error: cli doomed ${job.id} on attempt 2\\n\\s+at `));
      expect(decodeMessage(entry.data).attempt).toBe(2);
      expect(human).toContain(`${entry.id}  `);
      expect(human).toContain(`attempt ${entry.attempt}  ${job.command}\n  Error: cli doomed ${job.id} on attempt 2\n`);

      expect(await cli(['retry', entry.id, '-q', url])).toBe('requeued 1 message\n');
      await waitFor(
        'the job to fail again',
        async () => (await consumer.queue.failed(1_000)).some((f) => decodeMessage(f.data).id === job.id) && probe.runsOf(job.id).length > 2,
        10_000,
      );
      await sleep(300);
      // "attempt count reset" (README, Job lifecycle): the retried job gets its retries again.
      expect(attemptsOf(job.id)).toEqual([1, 2, 1, 2]);

      const count = (await consumer.queue.failed(1_000)).length;
      expect(await cli(['purge-failed', '-q', url])).toBe(`deleted ${count} failed message${count === 1 ? '' : 's'}\n`);
      expect(await consumer.queue.failed()).toEqual([]);
      expect(await cli(['failed', '-q', url])).toBe('no failed messages\n');
    });
  });
}

describe('configure({ resultTtlMs }): the default time to live of results', () => {
  it('applies to results a consumer stores and to revoke records', async () => {
    const backend = BACKENDS.find((b) => b.kind === 'memory')!;
    const url = backend.freshUrl();
    const probe = new Probe();
    const c = defineLocalCommands('memory-ttl', url, probe);
    const previous = getSettings().resultTtlMs!;
    configure({ resultTtlMs: 300 });
    const consumer = createConsumer({ queue: url, registry: c.registry, logger, periodic: false });
    try {
      await consumer.start();
      const job = await c.plain();
      const revoked = await c.plain.schedule({ delay: 60_000 });
      expect(await revoked.revoke()).toBe(true);
      expect(await revoked.status()).toBe('revoked');
      await waitFor('the result', async () => (await job.status()) === 'completed', 10_000, 10);
      await sleep(1_000);
      expect(await revoked.status()).toBe('pending');
      expect(await job.status()).toBe('pending');
    } finally {
      configure({ resultTtlMs: previous });
      await consumer.stop({ timeout: 2_000 });
      await resolveQueue(url).close();
    }
  });
});
