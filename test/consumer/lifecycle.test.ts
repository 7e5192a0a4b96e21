/**
 * createConsumer() as a library, in-process: start/stop/drain/force, a queue
 * that cannot open, periodic: false, and no global side effects (signal
 * handlers) — what a service embedding the consumer relies on.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryQueue, SqliteQueue, createConsumer, type Consumer } from '../../src/index.js';
import { spawnTsx, ROOT, tempDir, waitFor } from '../helpers/processes.js';
import { capturedLogger, children, enqueue, freshMemoryQueue, registryOf, workerIds } from '../fixtures/cli-consumer-kit.js';

const running: Consumer[] = [];
afterEach(async () => {
  // A failed test must not leave a consumer polling in this worker.
  await Promise.allSettled(running.splice(0).map((c) => c.stop({ timeout: 0 })));
});

function track(consumer: Consumer): Consumer {
  running.push(consumer);
  return consumer;
}

const fast = { pollDelayMs: 5, maxPollDelayMs: 20 };

describe('createConsumer: start and stop', () => {
  it('start() resolves once running, with the reader and N workers spawned', async () => {
    const queue = freshMemoryQueue();
    const { logger, messages } = capturedLogger();
    const consumer = track(createConsumer({ queue, registry: registryOf({}), logger, workers: 3, ...fast }));
    await consumer.start();
    expect(consumer.actor.getSnapshot().value).toBe('running');
    expect(children(consumer)).toMatchObject({ queue: 'active', reader: 'active', 'worker-1': 'active', 'worker-2': 'active', 'worker-3': 'active' });
    expect(workerIds(consumer)).toHaveLength(3);
    expect(messages()).toContain('consumer running');
    expect(await consumer.stop()).toEqual({ forced: false });
  });

  it('stop() on an idle consumer resolves { forced: false }, closes nothing it does not own, and is idempotent', async () => {
    const queue = freshMemoryQueue();
    const consumer = track(createConsumer({ queue, registry: registryOf({}), logger: capturedLogger().logger, ...fast }));
    await consumer.start();
    const first = consumer.stop();
    const second = consumer.stop();
    expect(await first).toEqual({ forced: false });
    expect(await second).toEqual({ forced: false });
    expect(await consumer.done).toEqual({ forced: false });
    expect(consumer.actor.getSnapshot().status).toBe('done');
    expect(consumer.actor.getSnapshot().value).toBe('stopped');
    // The caller's queue instance stays usable.
    await queue.write('still open');
    expect(await queue.length()).toBe(1);
  });

  it('stop() before start() resolves { forced: false }', async () => {
    const consumer = createConsumer({ queue: freshMemoryQueue(), registry: registryOf({}), logger: capturedLogger().logger });
    expect(await consumer.stop()).toEqual({ forced: false });
  });

  it('start() twice is one start', async () => {
    const consumer = track(createConsumer({ queue: freshMemoryQueue(), registry: registryOf({}), logger: capturedLogger().logger, ...fast }));
    const a = consumer.start();
    const b = consumer.start();
    expect(a).toBe(b);
    await a;
    expect(workerIds(consumer)).toEqual(['worker-1']);
  });

  it('runs jobs, and a graceful stop waits for the running one, which is acked', async () => {
    const queue = freshMemoryQueue();
    const events: string[] = [];
    let startedSlow!: () => void;
    const slowStarted = new Promise<void>((resolve) => (startedSlow = resolve));
    const registry = registryOf({
      quick: (n) => void events.push(`quick ${String(n)}`),
      slow: async () => {
        events.push('slow started');
        startedSlow();
        await new Promise((resolve) => setTimeout(resolve, 300));
        events.push('slow finished');
      },
    });
    const consumer = track(createConsumer({ queue, registry, logger: capturedLogger().logger, ...fast }));
    await consumer.start();
    await enqueue(queue, 'quick', [1]);
    await enqueue(queue, 'slow');
    await slowStarted;
    const stopped = await consumer.stop();
    expect(stopped).toEqual({ forced: false });
    expect(events).toEqual(['quick 1', 'slow started', 'slow finished']);
    expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, failed: 0 });
  });

  it('a drain does not start messages still waiting in the queue', async () => {
    const queue = freshMemoryQueue();
    const ran: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const registry = registryOf({
      job: async (n) => {
        ran.push(n as number);
        await gate;
      },
    });
    const consumer = track(createConsumer({ queue, registry, logger: capturedLogger().logger, ...fast }));
    await consumer.start();
    for (let n = 1; n <= 3; n++) await enqueue(queue, 'job', [n]);
    await waitFor('job 1 running', () => ran.length === 1, 5000, 5);
    const stopping = consumer.stop();
    release();
    expect(await stopping).toEqual({ forced: false });
    expect(ran).toEqual([1]);
    expect(await queue.stats()).toMatchObject({ ready: 2, leased: 0, failed: 0 });
  });

  it('stop({ timeout }) with a hung command forces: { forced: true }, its signal aborted, its lease released', async () => {
    const queue = freshMemoryQueue();
    let signal: AbortSignal | undefined;
    const registry = registryOf({
      hang: function () {
        signal = this.signal;
        return new Promise(() => {});
      },
    });
    const { logger, messages } = capturedLogger();
    const consumer = track(createConsumer({ queue, registry, logger, ...fast }));
    await consumer.start();
    await enqueue(queue, 'hang');
    await waitFor('the command to start', () => signal, 5000, 5);
    expect(await queue.stats()).toMatchObject({ ready: 0, leased: 1, failed: 0 });

    expect(await consumer.stop({ timeout: 100 })).toEqual({ forced: true });
    expect(signal!.aborted).toBe(true);
    expect((signal!.reason as Error).message).toBe('consumer forced to stop');
    // Released, not failed: it runs again on the next consumer, and its attempt is not counted.
    expect(await queue.stats()).toMatchObject({ ready: 1, leased: 0, failed: 0 });
    const again = await new MemoryQueue(queue.store).read();
    expect(again?.attempt).toBe(1);
    expect(messages()).toContain('forcing stop: aborting running commands and releasing their leases');
  });

  // Bug: stop({ timeout }) sets its own FORCE timer, but the supervisor's draining state also
  // forces after ITS drainTimeoutMs (the option, default 30 s), whichever comes first — so a
  // caller's longer timeout is ignored. Fix: let STOP carry the deadline
  // (`{ type: 'STOP', timeoutMs }`), assign it to context.drainTimeoutMs on the STOP
  // transition in the supervisor, and drop consumer.ts's separate forceTimer.
  it('stop({ timeout }) longer than drainTimeoutMs waits for the running command', async () => {
    const queue = freshMemoryQueue();
    let started = false;
    const registry = registryOf({
      slow: async () => {
        started = true;
        await new Promise((resolve) => setTimeout(resolve, 300));
      },
    });
    const consumer = track(createConsumer({ queue, registry, logger: capturedLogger().logger, drainTimeoutMs: 50, ...fast }));
    await consumer.start();
    await enqueue(queue, 'slow');
    await waitFor('the command to start', () => started, 5000, 5);
    expect(await consumer.stop({ timeout: 10_000 })).toEqual({ forced: false });
    expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, failed: 0 });
  });

  it('a second stop() during a drain forces at once', async () => {
    const queue = freshMemoryQueue();
    let started = false;
    const registry = registryOf({
      hang: () => {
        started = true;
        return new Promise(() => {});
      },
    });
    const consumer = track(createConsumer({ queue, registry, logger: capturedLogger().logger, drainTimeoutMs: 60_000, ...fast }));
    await consumer.start();
    await enqueue(queue, 'hang');
    await waitFor('the command to start', () => started, 5000, 5);
    const first = consumer.stop();
    await waitFor('draining', () => consumer.actor.getSnapshot().value === 'draining', 5000, 5);
    consumer.actor.send({ type: 'STOP' }); // what a second signal does in a host
    expect(await first).toEqual({ forced: true });
    expect(await queue.stats()).toMatchObject({ ready: 1, leased: 0, failed: 0 });
  });
});

describe('createConsumer: a queue that cannot open', () => {
  it('start() rejects with the backend error when a SQLite file cannot be created', async () => {
    const dir = tempDir('taskmill-consumer-');
    const file = path.join(dir, 'no-such-dir', 'queue.sqlite');
    const consumer = createConsumer({ queue: `sqlite:${file}`, registry: registryOf({}), logger: capturedLogger().logger, openTimeoutMs: 300 });
    await expect(consumer.start()).rejects.toThrow(/SQLite queue "default" \(.*no-such-dir.*\): open failed/);
    await expect(consumer.done).rejects.toThrow(/open failed/);
    expect(consumer.actor.getSnapshot().value).toBe('failed');
  });

  it('start() keeps retrying open() until openTimeoutMs, then rejects with its error', async () => {
    let attempts = 0;
    class DownQueue extends MemoryQueue {
      override async open(): Promise<void> {
        attempts += 1;
        throw new Error('backend is down');
      }
    }
    const { logger, messages } = capturedLogger();
    const consumer = createConsumer({ queue: new DownQueue('down'), registry: registryOf({}), logger, openTimeoutMs: 500 });
    await expect(consumer.start()).rejects.toThrow('backend is down');
    expect(attempts).toBeGreaterThan(1);
    // The outage is logged once, not once per attempt.
    expect(messages().filter((m) => m.startsWith('queue unreachable'))).toHaveLength(1);
  });

  it('start() succeeds when the backend comes up within openTimeoutMs', async () => {
    let attempts = 0;
    class LateQueue extends MemoryQueue {
      override async open(): Promise<void> {
        attempts += 1;
        if (attempts < 3) throw new Error('not yet');
      }
    }
    const consumer = track(
      createConsumer({
        queue: new LateQueue(freshMemoryQueue().store),
        registry: registryOf({}),
        logger: capturedLogger().logger,
        openTimeoutMs: 10_000,
        ...fast,
      }),
    );
    await consumer.start();
    expect(attempts).toBe(3);
    expect(await consumer.stop()).toEqual({ forced: false });
  });

  // Bug: the open-retry timer in src/actors/queue-adapter.ts is unref()'d, so a host whose only
  // pending work is `await consumer.start()` on a down backend exits silently (code 13,
  // "unsettled top-level await") instead of seeing the rejection. Fix: keep that timer ref'd
  // (clear it on CLOSE / cleanup).
  it('a host process awaiting start() on a down backend sees the rejection', { timeout: 90_000 }, async () => {
    const host = spawnTsx([path.join(ROOT, 'test', 'fixtures', 'cli-host.ts'), 'open-fails']);
    expect(await host.exited).toBe(0);
    expect(host.stdout()).toBe('start rejected: backend is down\n');
  });
});

describe('createConsumer: options and side effects', () => {
  // The scheduler may run either way (it also promotes delayed jobs); periodic: false means it
  // is handed no periodic commands, so none is ever enqueued.
  it('periodic: false enqueues no periodic commands; the default enqueues them', async () => {
    const periodicOf = (consumer: Consumer): string[] => {
      const scheduler = consumer.actor.getSnapshot().children.scheduler;
      const context = scheduler?.getSnapshot().context as { periodic?: { name: string }[] } | undefined;
      return (context?.periodic ?? []).map((p) => p.name);
    };
    let ticks = 0;
    const registry = registryOf({}, { tick: '* * * * *' });
    // registryOf gives periodic commands a no-op body; count runs instead.
    const tick = registry.get('tick')!;
    registry.unregister('tick');
    registry.register({ ...tick, fn: () => void (ticks += 1) });

    const withPeriodic = track(createConsumer({ queue: freshMemoryQueue(), registry, logger: capturedLogger().logger, ...fast }));
    await withPeriodic.start();
    expect(periodicOf(withPeriodic)).toEqual(['tick']);
    await waitFor('the start minute of * * * * * to fire', () => ticks > 0, 10_000, 10);
    await withPeriodic.stop();

    const ticksBefore = ticks;
    const queue = freshMemoryQueue();
    const without = track(createConsumer({ queue, registry, logger: capturedLogger().logger, periodic: false, ...fast }));
    await without.start();
    expect(periodicOf(without)).toEqual([]);
    expect(await without.stop()).toEqual({ forced: false });
    expect(ticks).toBe(ticksBefore);
    expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, failed: 0 });
  });

  it('never installs process signal handlers', async () => {
    const signals = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'] as const;
    const count = () => signals.map((s) => process.listenerCount(s));
    const before = count();
    const consumer = track(createConsumer({ queue: freshMemoryQueue(), registry: registryOf({}), logger: capturedLogger().logger, ...fast }));
    expect(count()).toEqual(before);
    await consumer.start();
    expect(count()).toEqual(before);
    await consumer.stop();
    expect(count()).toEqual(before);
  });

  it('rejects bad options with a ConfigError naming the option', () => {
    const base = { queue: freshMemoryQueue(), registry: registryOf({}), logger: capturedLogger().logger };
    expect(() => createConsumer({ ...base, workers: 0 })).toThrow(/^createConsumer: invalid workers 0: must be an integer ≥ 1$/);
    expect(() => createConsumer({ ...base, workers: 1.5 })).toThrow(/invalid workers 1\.5: must be an integer ≥ 1/);
    expect(() => createConsumer({ ...base, pollBackoff: 0.5 })).toThrow(/invalid pollBackoff 0\.5: must be a number ≥ 1/);
    expect(() => createConsumer({ ...base, pollDelayMs: 100, maxPollDelayMs: 10 })).toThrow(
      /invalid maxPollDelayMs 10: must be a number of milliseconds ≥ 100 \(pollDelayMs\)/,
    );
    expect(() => createConsumer({ ...base, drainTimeoutMs: -1 })).toThrow(/invalid drainTimeoutMs -1: must be a number of milliseconds ≥ 0/);
    expect(() => createConsumer({ ...base, prefetch: 1.5 })).toThrow(/invalid prefetch 1\.5: must be an integer ≥ 0/);
    expect(() => createConsumer({ ...base, queue: 'ftp://x' })).toThrow(/unsupported queue URL/);
  });

  it('a consumer on a SQLite URL closes the queue it opened when it stops', async () => {
    const file = path.join(tempDir('taskmill-consumer-'), 'q.sqlite');
    mkdirSync(path.dirname(file), { recursive: true });
    const consumer = track(createConsumer({ queue: `sqlite:${file}`, registry: registryOf({}), logger: capturedLogger().logger, ...fast }));
    await consumer.start();
    expect(consumer.queue).toBeInstanceOf(SqliteQueue);
    await consumer.stop();
    await expect(consumer.queue.length()).rejects.toThrow(/closed/);
  });
});
