/**
 * A consumer in this process (the library, not the CLI) with pool
 * 'threads': the module that defined the commands is found off the stack,
 * and a worker replaced after an ordinary failure — a throw, a timeout the
 * command honoured — hands its healthy thread to its successor instead of
 * costing a new one. A crash does cost one (the thread is gone).
 */
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryQueue, configure, createConsumer, pipeline, type Consumer } from '../../src/index.js';
import { echo, exits, fails, honoursTimeout, slow } from '../fixtures/pool-commands.js';

const queue = new MemoryQueue(`pool-spares-${process.pid}`);
configure({ queue });
let consumer: Consumer | undefined;
afterAll(async () => {
  await consumer?.stop();
});

const threadOf = async () => ((await (await echo()).result({ timeout: 20_000 })) as { threadId: number }).threadId;
const settled = async (job: { result(o: { timeout: number }): Promise<unknown> }) => job.result({ timeout: 20_000 }).catch((e: unknown) => e);

describe('pool threads in an embedded consumer', () => {
  it('keeps the thread across a worker replaced after a throw or an honoured timeout; a crash gets a new one', { timeout: 60_000 }, async () => {
    consumer = createConsumer({ queue, workers: 1, pool: 'threads', periodic: false, logger: pino({ level: 'silent' }), pollDelayMs: 5, maxPollDelayMs: 20 });
    await consumer.start();
    const first = await threadOf();
    expect(first).not.toBe(0);

    expect(String(await settled(await fails()))).toMatch(/an ordinary failure/);
    expect(await threadOf()).toBe(first);

    expect(String(await settled(await honoursTimeout()))).toMatch(/timed out after 200 ms/);
    // The timed-out job settles in its thread right after its signal is aborted: then it is a spare again.
    expect(await threadOf()).toBe(first);

    expect(String(await settled(await exits()))).toMatch(/WorkerLostError: worker lost: command "exits" took its worker thread down: it exited with code 1/);
    const after = await threadOf();
    expect(after).not.toBe(first);
    expect(after).not.toBe(0);
    expect(consumer.actor.getSnapshot().context.restarts).toBe(3);
  });

  it("a pipeline runs step after step in threads: each result, serialized in its thread, is the next step's first argument", { timeout: 30_000 }, async () => {
    const job = await pipeline(slow.with(7, 10), echo.with('x'));
    const last = (await job.result({ timeout: 20_000 })) as { args: unknown[]; threadId: number };
    expect(last.args).toEqual([7, 'x']);
    expect(last.threadId).not.toBe(0);
  });
});
