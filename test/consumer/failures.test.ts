/**
 * A command that throws or rejects with ANY value makes its worker fail: the
 * message lands in the failed store with a readable error, the failure is
 * logged once with worker id, command and job id, and the pool stays at N.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CommandRegistry, MemoryQueue, createConsumer, jobEvents, queueCommand, type Consumer } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { waitFor } from '../helpers/processes.js';
import { capturedLogger, children, enqueue, freshMemoryQueue, registryOf, workerIds, type CommandFn } from '../fixtures/cli-consumer-kit.js';

const running: Consumer[] = [];
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((c) => c.stop({ timeout: 0 })));
});

const cyclic: Record<string, unknown> = { name: 'loop' };
cyclic.self = cyclic;

// [label, the thrown/rejected value, what the recorded error must say]
const thrown: [string, () => unknown, RegExp][] = [
  ['an Error', () => new Error('plain failure'), /^Error: plain failure\n\s+at /],
  ['a string', () => 'just a string', /^NonError: non-Error thrown: just a string/],
  ['undefined', () => undefined, /^NonError: non-Error thrown: undefined/],
  ['null', () => null, /^NonError: non-Error thrown: null/],
  ['a cyclic object', () => cyclic, /^NonError: non-Error thrown: <ref \*1> \{ name: 'loop', self: \[Circular \*1\] \}/],
  ['a BigInt', () => 10n, /^NonError: non-Error thrown: 10n/],
  ['a number', () => 42, /^NonError: non-Error thrown: 42/],
  ['a symbol', () => Symbol('odd'), /^NonError: non-Error thrown: Symbol\(odd\)/],
];

describe('a command that throws or rejects with any value', () => {
  for (const mode of ['throws', 'rejects'] as const) {
    it(`${mode}: each lands in the failed store with a readable error, logged once; the pool stays at 2`, async () => {
      const queue = freshMemoryQueue();
      const commands: Record<string, CommandFn> = {};
      for (const [label, value] of thrown) {
        commands[label] =
          mode === 'throws'
            ? () => {
                throw value();
              }
            : () => Promise.reject(value());
      }
      commands.ok = () => 'fine';
      const { logger, lines } = capturedLogger();
      const consumer = createConsumer({ queue, registry: registryOf(commands), logger, workers: 2, pollDelayMs: 5, maxPollDelayMs: 20 });
      running.push(consumer);
      await consumer.start();
      for (const [label] of thrown) await enqueue(queue, label, []);
      await enqueue(queue, 'ok');

      await waitFor('every failure recorded', async () => (await queue.stats()).failed === thrown.length && (await queue.length()) === 0, 10_000, 10);
      await waitFor('ok acked', async () => (await queue.stats()).leased === 0, 10_000, 10);

      const failed = await queue.failed();
      expect(failed).toHaveLength(thrown.length);
      for (const [label, , expected] of thrown) {
        const entry = failed.find((f) => (JSON.parse(f.data) as { command: string }).command === label);
        expect(entry, label).toBeDefined();
        expect(entry!.error, label).toMatch(expected);
        expect(entry!.attempt).toBe(1);
      }

      // Logged once per failure, with worker id, command and job id.
      const logged = lines.filter((l) => l.msg === 'command failed; worker replaced');
      expect(logged.map((l) => l.command).sort()).toEqual(thrown.map(([label]) => label).sort());
      for (const line of logged) {
        expect(line.worker).toMatch(/^worker-[12](-r\d+)?$/);
        expect(line.job).toEqual(expect.any(String));
        expect(line.level).toBe(50);
      }

      // Still 2 workers, both alive, after one replacement per failure.
      const snapshot = consumer.actor.getSnapshot();
      expect(workerIds(consumer)).toHaveLength(2);
      for (const id of workerIds(consumer)) expect(children(consumer)[id]).toBe('active');
      expect(snapshot.context.restarts).toBe(thrown.length);
      expect(snapshot.value).toBe('running');

      // And the replacements work.
      await enqueue(queue, 'ok');
      await waitFor('the queue empty again', async () => {
        const stats = await queue.stats();
        return stats.ready === 0 && stats.leased === 0;
      });
      expect(await consumer.stop()).toEqual({ forced: false });
    });
  }

  // Bug: toError() (src/shared/errors.ts) evaluates `thrown instanceof Error`, which runs the Proxy's
  // getPrototypeOf trap and throws, so run-command's fail() throws instead of reporting
  // COMMAND_FAILED. The worker then crashes with that error (not a WorkerCommandError): the
  // supervisor logs "worker crashed; replaced", sends no FAIL, and tells the reader busy: false.
  // The message stays leased (the adapter's heartbeat keeps extending it), the reader's
  // in-flight count never drops, and the next graceful stop waits out the drain deadline and
  // is forced — then the message is released and runs again (a poison message forever).
  // Fix: (1) make toError/describeError total: wrap `instanceof`, inspect and `.stack` reads in
  // try/catch, falling back to `typeof thrown`; (2) in the supervisor's recordFailure, when the
  // error is not a WorkerCommandError, read the failed worker's snapshot `context.job` and, if
  // set, FAIL that message with describeError(error) and report busy: true to the reader.
  it('a hostile thrown value (a Proxy whose every trap throws) still fails only that job', async () => {
    const hostile = new Proxy(
      {},
      Object.fromEntries(
        ['get', 'getPrototypeOf', 'ownKeys', 'has', 'getOwnPropertyDescriptor'].map((trap) => [
          trap,
          () => {
            throw new Error(`trap ${trap}`);
          },
        ]),
      ),
    );
    const queue = freshMemoryQueue();
    const registry = registryOf({
      hostile: () => {
        throw hostile;
      },
      ok: () => {},
    });
    const consumer = createConsumer({ queue, registry, logger: capturedLogger().logger, pollDelayMs: 5, maxPollDelayMs: 20 });
    running.push(consumer);
    await consumer.start();
    await enqueue(queue, 'hostile');
    await enqueue(queue, 'ok');
    await waitFor(
      'both settled',
      async () => {
        const stats = await queue.stats();
        return stats.failed === 1 && stats.ready === 0 && stats.leased === 0;
      },
      3_000,
      10,
    );
    const [entry] = await queue.failed();
    expect(entry!.error).toMatch(/non-Error thrown/);
    expect(consumer.actor.getSnapshot().value).toBe('running');
    expect(workerIds(consumer)).toHaveLength(1);
    expect(await consumer.stop({ timeout: 5_000 })).toEqual({ forced: false });
  });

  it('a restart limit makes the consumer fail (done rejects) instead of replacing forever', async () => {
    const queue = freshMemoryQueue();
    const registry = registryOf({
      boom: () => {
        throw new Error('boom');
      },
    });
    const { logger, messages } = capturedLogger();
    const consumer = createConsumer({ queue, registry, logger, maxRestarts: 2, pollDelayMs: 5, maxPollDelayMs: 20 });
    running.push(consumer);
    await consumer.start();
    for (let i = 0; i < 5; i++) await enqueue(queue, 'boom');
    await expect(consumer.done).rejects.toThrow(/boom/);
    expect(consumer.actor.getSnapshot().value).toBe('failed');
    expect(messages()).toContain('restart limit reached; consumer failing');
    // Every job that was started is in the failed store; none is lost.
    const stats = await queue.stats();
    expect(stats.failed).toBe(3);
    expect(stats.leased).toBe(0);
    expect(stats.ready).toBe(2);
  });
});

describe('a job whose earlier deliveries had no outcome (the consumer running it died)', () => {
  /** Leases the store's oldest message `times` times through a dying "consumer" whose leases lapse. */
  async function loseDeliveries(store: string, times: number): Promise<void> {
    const dying = new MemoryQueue(store, { leaseMs: 100 });
    for (let i = 0; i < times; i++) {
      const [message] = await dying.readBatch(1);
      expect(message?.attempt).toBe(i + 1);
      await new Promise((resolve) => setTimeout(resolve, 120)); // the lease lapses: nobody acks or fails it
    }
  }

  it('after maxDeliveries deliveries without an outcome it is not run again: failed as "worker lost", not retried', async () => {
    const queue = freshMemoryQueue();
    let runs = 0;
    const registry = new CommandRegistry();
    registry.register({ name: 'crashy', fn: () => void runs++, options: { name: 'crashy', retries: 5 }, schedule: null, module: 'test' });
    const jobId = JSON.parse((await enqueueEnvelope(queue, 'crashy')).data).id as string;
    await loseDeliveries(queue.store, 3);

    const events = recordFailedHooks();
    const { logger, lines } = capturedLogger();
    const consumer = createConsumer({ queue, registry, logger, pollDelayMs: 5, maxPollDelayMs: 20 });
    running.push(consumer);
    await consumer.start();
    await waitFor('the job in the failed store', async () => (await queue.stats()).failed === 1, 10_000, 10);
    events.stop();

    expect(runs).toBe(0);
    const [entry] = await queue.failed();
    expect(entry!.error).toMatch(/^WorkerLostError: worker lost: command "crashy" was delivered 3 times without an outcome/);
    expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, delayed: 0, failed: 1 });
    expect(events.failed).toEqual([jobId]);
    const logged = lines.filter((l) => String(l.msg).includes('failed') && JSON.stringify(l).includes('worker lost'));
    expect(logged).toHaveLength(1);
  });

  it('fewer lost deliveries than the limit: it runs; a command may lower the limit, the consumer may raise it', async () => {
    const queue = freshMemoryQueue();
    const ran: string[] = [];
    const registry = new CommandRegistry();
    registry.register({ name: 'tolerant', fn: () => void ran.push('tolerant'), options: { name: 'tolerant' }, schedule: null, module: 'test' });
    registry.register({ name: 'strict', fn: () => void ran.push('strict'), options: { name: 'strict', maxDeliveries: 1 }, schedule: null, module: 'test' });
    await enqueueEnvelope(queue, 'tolerant');
    await loseDeliveries(queue.store, 3);
    await enqueueEnvelope(queue, 'strict');
    const dying = new MemoryQueue(queue.store, { leaseMs: 100 });
    await dying.readBatch(2); // 'tolerant' a 4th time (over the default 3, within this consumer's 5) and 'strict' once
    await new Promise((resolve) => setTimeout(resolve, 120));

    const consumer = createConsumer({ queue, registry, logger: capturedLogger().logger, maxDeliveries: 5, pollDelayMs: 5, maxPollDelayMs: 20 });
    running.push(consumer);
    await consumer.start();
    await waitFor(
      'both settled',
      async () => {
        const stats = await queue.stats();
        return stats.ready === 0 && stats.leased === 0 && ran.length + stats.failed === 2;
      },
      10_000,
      10,
    );
    expect(ran).toEqual(['tolerant']);
    const [entry] = await queue.failed();
    expect(entry!.error).toMatch(/command "strict" was delivered 1 times without an outcome/);
  });

  it('maxDeliveries must be an integer ≥ 1', () => {
    expect(() => createConsumer({ queue: freshMemoryQueue(), maxDeliveries: 0 })).toThrow(/createConsumer: invalid maxDeliveries 0: must be an integer ≥ 1/);
    expect(() => queueCommand({ name: 'bad-deliveries', maxDeliveries: 1.5 }, () => {})).toThrow(
      /queueCommand: invalid maxDeliveries 1\.5: must be an integer ≥ 1/,
    );
  });
});

function recordFailedHooks(): { failed: string[]; stop(): void } {
  const failed: string[] = [];
  const stop = jobEvents.on('failed', (event) => void failed.push(event.jobId));
  return { failed, stop };
}

async function enqueueEnvelope(queue: MemoryQueue, command: string): Promise<{ data: string }> {
  const message = encodeMessage(command, []);
  await queue.write(message.data);
  return message;
}
