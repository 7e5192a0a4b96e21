/**
 * Composition: `cmd.with(...)`, `pipeline(...)`, `group([...]).then(...)`.
 * Bad input is refused before anything is written (the queue's stats stay
 * empty); immediate mode runs the steps in-process; and on every backend
 * (memory, SQLite, PostgreSQL, Redis polling and blocking, real servers) a
 * consumer runs a 3-step pipeline, stops one at a failing step, and runs a
 * group's callback once with the members' results in order. Exactly-once
 * under kill -9 is test/e2e/composition.test.ts.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  JobExpiredError,
  JobFailedError,
  JobRevokedError,
  closeQueues,
  configure,
  createConsumer,
  createQueue,
  group,
  GroupJob,
  pipeline,
  queueCommand,
  registry,
  type BaseQueue,
  type Consumer,
  type QueuedCommand,
} from '../../src/index.js';
import { decodeMessage, encodeMessage } from '../../src/codec/message.js';
import { MessageDecodeError, SerializationError } from '../../src/shared/errors.js';
import { tempDir } from '../helpers/processes.js';
import { POSTGRES_URL, REDIS_URL, dropPostgresSchema, hasPostgres, hasRedis, uniqueName } from '../helpers/services.js';
import { freshMemoryQueue } from '../fixtures/cli-consumer-kit.js';

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const defined: string[] = [];
function define<A extends unknown[], R>(
  options: { name?: string; queue?: BaseQueue | string; retries?: number; results?: boolean; expires?: number },
  fn: (...args: A) => R,
) {
  const cmd = queueCommand({ ...options, name: uniqueName(options.name ?? 'step') }, fn);
  defined.push(cmd.commandName);
  return cmd;
}

let consumer: Consumer | undefined;
afterEach(async () => {
  await consumer?.stop();
  consumer = undefined;
  for (const name of defined.splice(0)) registry.unregister(name);
  configure({ immediate: false });
});

async function startConsumer(queue: BaseQueue | string, workers = 3): Promise<Consumer> {
  consumer = createConsumer({ queue, workers, periodic: false, logger: silent, pollDelayMs: 10, maxPollDelayMs: 50 });
  await consumer.start();
  return consumer;
}

const nothingWritten = { ready: 0, leased: 0, failed: 0, delayed: 0 };

// ── bad input ──────────────────────────────────────────────────────────────

describe('composition refuses bad input before anything is written', () => {
  it('pipeline(): no steps, a step that is not cmd.with(...), steps on different queues', async () => {
    const queue = freshMemoryQueue();
    const other = freshMemoryQueue();
    const add = define({ queue }, (a: number, b: number) => a + b);
    const elsewhere = define({ name: 'elsewhere', queue: other }, (n: number) => n);
    await expect(pipeline()).rejects.toThrow(ConfigError);
    await expect(pipeline()).rejects.toThrow('pipeline() needs at least one step (cmd.with(...))');
    await expect(pipeline(add.with(1, 2), 42 as never)).rejects.toThrow(new TypeError('pipeline(): step 2 is not a step (cmd.with(...)), got 42'));
    await expect(pipeline(add as never)).rejects.toThrow(/^pipeline\(\): step 1 is not a step \(cmd\.with\(\.\.\.\)\), got a function/);
    await expect(pipeline(add.with(1, 2), { command: add, args: [] } as never)).rejects.toThrow(/step 2 is not a step/); // a look-alike is not a step
    await expect(pipeline(add.with(1, 2), elsewhere.with())).rejects.toThrow(
      new RegExp(
        `^pipeline\\(\\): step 2 \\(${elsewhere.commandName}\\) is on queue "${other.name}" \\(MemoryQueue\\), step 1 .* every step must be on one queue$`,
      ),
    );
    expect(await queue.stats()).toEqual(nothingWritten);
    expect(await other.stats()).toEqual(nothingWritten);
  });

  it('group(): no members, a member or callback that is not a step, a callback on another queue', async () => {
    const queue = freshMemoryQueue();
    const other = freshMemoryQueue();
    const one = define({ queue }, (n: number) => n);
    const elsewhere = define({ queue: other }, (results: unknown[]) => results);
    expect(() => group([])).toThrow(new ConfigError('group() needs at least one member (cmd.with(...))'));
    expect(() => group('x' as never)).toThrow(/^group\(\) takes an array of steps \(cmd\.with\(\.\.\.\)\), got "x"$/);
    expect(() => group([one.with(1), null as never])).toThrow(new TypeError('group(): member 2 is not a step (cmd.with(...)), got null'));
    await expect(group([one.with(1)]).then('done' as never)).rejects.toThrow(
      new TypeError('group().then(): the callback is not a step (cmd.with(...)), got "done"'),
    );
    await expect(group([one.with(1)]).then(elsewhere.with())).rejects.toThrow(/^group\(\): the callback .* every step must be on one queue$/);
    expect(await queue.stats()).toEqual(nothingWritten);
    expect(await other.stats()).toEqual(nothingWritten);
  });

  it('cmd.with() serializes its arguments at once: one that cannot be sent throws there, naming it', () => {
    const one = define({ queue: freshMemoryQueue() }, (value: unknown) => value);
    expect(() => one.with({ fn: () => 1 })).toThrow(SerializationError);
    expect(() => one.with({ fn: () => 1 })).toThrow(/args\[0\]\.fn/);
    const step = one.with(new Date(0));
    expect(Object.isFrozen(step)).toBe(true);
    expect(step.command).toBe(one);
    expect(step.args).toEqual([new Date(0)]);
  });

  it("the envelope's flow field is checked on decode, and a consumer without the feature would keep it as an unknown field", () => {
    const flow = { next: [{ command: 'b', args: '[1]', id: 'job-2' }] };
    const { data } = encodeMessage('a', [1], { flow });
    expect(decodeMessage(data).flow).toEqual(flow);
    const bad = JSON.stringify({ ...JSON.parse(data), flow: { next: 'b' } });
    expect(() => decodeMessage(bad)).toThrow(MessageDecodeError);
    expect(() => decodeMessage(bad)).toThrow(/field flow must be an object/);
  });
});

describe('composition under configure({ immediate: true })', () => {
  it('runs a pipeline and a group in-process, with the same results and failures', async () => {
    configure({ immediate: true });
    const add = define({}, (a: number, b: number) => a + b);
    const double = define({}, (n: number) => n * 2);
    const label = define({}, (n: number, prefix: string) => `${prefix}:${n}`);
    const boom = define({}, (n: number): number => {
      throw new Error(`boom ${n}`);
    });
    const job = await pipeline(add.with(1, 2), double.with(), label.with('x'));
    expect(await job.result()).toBe('x:6');
    const failed = await pipeline(add.with(1, 2), boom.with(), label.with('x'));
    await expect(failed.result()).rejects.toThrow(JobFailedError);
    await expect(failed.result()).rejects.toThrow(/boom 3/);
    const summary = define({}, (results: unknown[], tag: string) => `${tag} ${JSON.stringify(results)}`);
    const g = await group([double.with(1), boom.with(2), double.with(3)]).then(summary.with('done'));
    expect(await g.result()).toEqual([2, null, 6]);
    expect(await g.callback!.result()).toBe('done [2,null,6]');
  });
});

// ── every backend ─────────────────────────────────────────────────────────

interface Server {
  kind: string;
  available: boolean;
  url(): string;
  dispose(url: string): Promise<void>;
}

const sqliteDirs: string[] = [];
const SERVERS: Server[] = [
  { kind: 'memory', available: true, url: () => `memory://${uniqueName('compose')}`, dispose: async () => {} },
  {
    kind: 'SQLite',
    available: true,
    url: () => {
      const dir = tempDir('taskmill-compose-');
      sqliteDirs.push(dir);
      return `sqlite:${path.join(dir, 'queue.sqlite')}`;
    },
    dispose: async () => {},
  },
  {
    kind: 'PostgreSQL',
    available: hasPostgres,
    url: () => `${POSTGRES_URL}?schema=${uniqueName('compose').replace(/-/g, '_')}`,
    dispose: dropPostgresSchema,
  },
  ...[false, true].map((blocking): Server => ({
    kind: blocking ? 'Redis (blocking)' : 'Redis (polling)',
    available: hasRedis,
    url: () => `${REDIS_URL}?prefix=${uniqueName('compose')}${blocking ? '&blocking=true' : ''}`,
    dispose: async (url) => {
      const queue = createQueue(url, { onWarning: () => {} });
      try {
        await queue.flush();
      } finally {
        await queue.close();
      }
    },
  })),
];

afterAll(() => {
  for (const dir of sqliteDirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs `body` with a producer queue on a fresh URL of `server` and a consumer of its own on the same URL. */
async function onServer(server: Server, body: (producer: BaseQueue) => Promise<void>): Promise<void> {
  const url = server.url();
  // memory:// is per process and per name: the consumer shares the producer's instance.
  const producer = createQueue(url);
  try {
    await startConsumer(server.kind === 'memory' ? producer : url);
    await body(producer);
  } finally {
    await consumer?.stop();
    consumer = undefined;
    await producer.close();
    await server.dispose(url);
  }
}

const wait = { timeout: 15_000 };

describe.each(SERVERS)('composition on $kind', (server) => {
  it.skipIf(!server.available)('a 3-step pipeline: each step gets the previous result first; result() is the last one (results: false too)', async () => {
    await onServer(server, async (queue) => {
      const runs: string[] = [];
      const add = define({ queue }, (a: number, b: number) => (runs.push(`add ${a} ${b}`), a + b));
      const double = define({ queue, results: false }, (n: number) => (runs.push(`double ${n}`), { n: n * 2, at: new Date(0) }));
      const label = define(
        { queue },
        (value: { n: number; at: Date }, prefix: string) => (runs.push(`label ${value.n}`), `${prefix}:${value.n}:${value.at.getTime()}`),
      );
      const job = await pipeline(add.with(1, 2), double.with(), label.with('x'));
      expect(job.command).toBe(label.commandName);
      expect(await job.result(wait)).toBe('x:6:0');
      expect(runs).toEqual(['add 1 2', 'double 3', 'label 6']);
      expect(await job.status()).toBe('completed');
    });
  });

  it.skipIf(!server.available)('a step that fails for good stops the pipeline: result() rejects with its JobFailedError, later steps never run', async () => {
    await onServer(server, async (queue) => {
      const runs: string[] = [];
      const add = define({ queue }, (a: number, b: number) => (runs.push('add'), a + b));
      const boom = define({ queue, retries: 1 }, (n: number): number => {
        runs.push('boom');
        throw new RangeError(`no ${n}`);
      });
      const label = define({ queue }, (n: number) => (runs.push('label'), `${n}`));
      const job = await pipeline(add.with(1, 2), boom.with(), label.with());
      const error = (await job.result(wait).catch((e: unknown) => e)) as JobFailedError;
      expect(error).toBeInstanceOf(JobFailedError);
      expect(error.remote).toMatchObject({ name: 'RangeError', message: 'no 3' });
      expect(error.attempt).toBe(2);
      expect(error.jobId).not.toBe(job.id); // the step's own id, not the pipeline's
      expect(error.message).toMatch(/^job .* failed after 2 attempts: RangeError: no 3$/);
      expect(await job.status()).toBe('failed');
      await sleep(300); // time for a wrongly written last step to run
      expect(runs).toEqual(['add', 'boom', 'boom']);
      expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, delayed: 0, failed: 1 });
    });
  });

  it.skipIf(!server.available)("a group's callback runs once, after every member, with their results in order (a failed member's is null)", async () => {
    await onServer(server, async (queue) => {
      const callbacks: unknown[][] = [];
      const resize = define({ queue }, async (n: number) => {
        await sleep((5 - n) * 30); // finish out of order
        if (n === 2) throw new Error('cannot resize 2');
        return { n, size: n * 100 };
      });
      const notify = define({ queue }, (results: unknown[], tag: string) => {
        callbacks.push([results, tag]);
        return results.length;
      });
      const g = await group([1, 2, 3, 4].map((n) => resize.with(n))).then(notify.with('done'));
      expect(g.members.map((m) => m.command)).toEqual(Array(4).fill(resize.commandName));
      const expected = [{ n: 1, size: 100 }, null, { n: 3, size: 300 }, { n: 4, size: 400 }];
      expect(await g.result(wait)).toEqual(expected);
      expect(await g.callback!.result(wait)).toBe(4);
      await sleep(300); // a second callback would have been written and run by now
      expect(callbacks).toEqual([[expected, 'done']]);
      await expect(g.members[1]!.result()).rejects.toThrow(JobFailedError);
    });
  });

  it.skipIf(!server.available)('group([...]).then() enqueues its members alone (so does awaiting it); result() still gathers them', async () => {
    await onServer(server, async (queue) => {
      const square = define({ queue }, (n: number) => n * n);
      const g = await group([square.with(2), square.with(3)]).then();
      expect(g.callback).toBeNull();
      expect(await g.result(wait)).toEqual([4, 9]);
      const awaited = await (group([square.with(4)]) as unknown as PromiseLike<GroupJob<number>>);
      expect(awaited).toBeInstanceOf(GroupJob);
      expect(await awaited.result(wait)).toEqual([16]);
    });
  });
});

describe('composition: expiry, and a consumer of several named queues', () => {
  it('a step that expires stops the pipeline: result() rejects with JobExpiredError naming the step', async () => {
    const queue = freshMemoryQueue();
    const runs: string[] = [];
    const stale = define({ queue, expires: 50 }, (n: number) => (runs.push('stale'), n));
    const after = define({ queue }, (n: number) => (runs.push('after'), n));
    const job = await pipeline(stale.with(1), after.with());
    await sleep(120);
    await startConsumer(queue);
    const error = (await job.result(wait).catch((e: unknown) => e)) as JobExpiredError;
    expect(error).toBeInstanceOf(JobExpiredError);
    expect(error.jobId).not.toBe(job.id);
    await sleep(200);
    expect(runs).toEqual([]);
  });

  it('revoke() on a pipeline removes its first step before it starts; result() rejects with JobRevokedError', async () => {
    const queue = freshMemoryQueue();
    const add = define({ queue }, (a: number, b: number) => a + b);
    const job = await pipeline(add.with(1, 2), add.with(10));
    expect((await queue.stats()).ready).toBe(1); // the first step only
    expect(await job.revoke()).toBe(true);
    await expect(job.result()).rejects.toThrow(JobRevokedError);
    expect(await queue.stats()).toEqual(nothingWritten);
  });

  it('the next step goes to the queue its job was read from (queues: [high, low]), where result() reads it', async () => {
    const dir = tempDir('taskmill-compose-named-');
    sqliteDirs.push(dir);
    const url = `sqlite:${path.join(dir, 'queue.sqlite')}`;
    configure({ queue: url });
    const add = define({ queue: 'low' }, (a: number, b: number) => a + b);
    const double = define({ queue: 'low' }, (n: number) => n * 2);
    const members = define({ queue: 'low' }, (n: number) => n + 100);
    const sum = define({ queue: 'low' }, (results: number[]) => results.reduce((a, b) => a + b, 0));
    consumer = createConsumer({ queue: url, queues: ['high', 'low'], workers: 2, periodic: false, logger: silent, pollDelayMs: 10, maxPollDelayMs: 50 });
    await consumer.start();
    try {
      // Written to `high` (the first queue) instead, the last step's record would land there, and these would time out.
      const job = await pipeline(add.with(1, 2), double.with(), double.with());
      expect(await job.result(wait)).toBe(12);
      const g = await group([members.with(1), members.with(2)]).then(sum.with());
      expect(await g.callback!.result(wait)).toBe(203);
    } finally {
      await consumer.stop();
      consumer = undefined;
      await closeQueues();
    }
  });
});

// Types: a step's arguments are the command's, or those after the first (a later pipeline step); the
// pipeline's result is the last step's.
async function typesOnly(add: QueuedCommand<[number, number], number>, label: QueuedCommand<[number, string], string>) {
  const job = await pipeline(add.with(1, 2), label.with('x'));
  const text: string = await job.result();
  // @ts-expect-error a string is not add's first argument
  add.with('1', 2);
  return text;
}
void typesOnly;
