/**
 * With prefetch, the reader hands each idle worker a share of the backlog in
 * one JOB (up to MAX_JOBS_PER_DISPATCH messages, run in turn), and the runner
 * of a busy one its next share when it asks (RUNNER_READY). The messages
 * of a share that have not started belong to nobody running: they must go
 * back to the queue when the worker fails, when the consumer drains, and
 * never run twice or get lost.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { createConsumer, type Consumer } from '../../src/index.js';
import { MAX_JOBS_PER_DISPATCH } from '../../src/machines/reader.js';
import { waitFor } from '../helpers/processes.js';
import { capturedLogger, enqueue, freshMemoryQueue, registryOf } from '../fixtures/cli-consumer-kit.js';

const running: Consumer[] = [];
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((c) => c.stop({ timeout: 0 })));
});

describe('shares of a backlog (prefetch)', () => {
  it('one JOB carries several messages; every job runs exactly once; a busy worker gets its next share without hearing of it', async () => {
    const queue = freshMemoryQueue();
    const ran: number[] = [];
    /** The size of every share, as its runner got it (forwarded by its worker, or straight from the reader). */
    const shares: number[] = [];
    /** Every event a worker machine received, by type. */
    const toWorkers = new Map<string, number>();
    let asks = 0;
    const registry = registryOf({ note: (n) => void ran.push(n as number) });
    for (let i = 0; i < 40; i++) await enqueue(queue, 'note', [i]);
    const consumer = createConsumer({
      queue,
      registry,
      logger: capturedLogger().logger,
      workers: 2,
      prefetch: 2 * MAX_JOBS_PER_DISPATCH + 4, // a read large enough for a full share each, and some left over
      inspect: (event: InspectionEvent) => {
        if (event.type !== '@xstate.event') return;
        const id = (event.actorRef as AnyActorRef).id;
        if (id === 'runner' && event.event.type === 'JOB') shares.push(1 + ((event.event as { more?: unknown[] }).more?.length ?? 0));
        if (id === 'reader' && event.event.type === 'RUNNER_READY') asks++;
        if (id.startsWith('worker-')) toWorkers.set(event.event.type, (toWorkers.get(event.event.type) ?? 0) + 1);
      },
    });
    running.push(consumer);
    await consumer.start();
    await waitFor('all 40 ran', async () => ran.length >= 40 && (await queue.stats()).leased === 0, 10_000, 10);
    expect([...ran].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(Math.max(...shares)).toBe(MAX_JOBS_PER_DISPATCH);
    expect(shares.length).toBeLessThan(40); // fewer dispatches than jobs
    expect(shares.reduce((a, b) => a + b, 0)).toBe(40);
    // A worker hears JOB when it turns busy and SHARE_DONE when the reader has nothing more for its
    // runner: the shares in between went to the runner straight from the reader, one ask each.
    const spells = toWorkers.get('JOB') ?? 0;
    expect(toWorkers.get('SHARE_DONE')).toBe(spells);
    expect(spells).toBeLessThan(shares.length);
    expect(asks).toBeGreaterThanOrEqual(shares.length - spells);
    expect([...toWorkers.keys()].filter((type) => !type.startsWith('xstate.')).sort()).toEqual(['JOB', 'SHARE_DONE']);
  });

  it('a command that fails mid-share: the failed job is recorded, the unstarted rest is released and run by the replacement', async () => {
    const queue = freshMemoryQueue();
    const ran: number[] = [];
    const registry = registryOf({
      note: (n) => {
        if (n === 2) throw new Error('two is bad');
        ran.push(n as number);
      },
    });
    for (let i = 0; i < 8; i++) await enqueue(queue, 'note', [i]);
    const consumer = createConsumer({ queue, registry, logger: capturedLogger().logger, workers: 1, prefetch: 7, pollDelayMs: 5, maxPollDelayMs: 20 });
    running.push(consumer);
    await consumer.start();
    await waitFor(
      'the rest ran after the failure',
      async () => {
        const stats = await queue.stats();
        return ran.length === 7 && stats.failed === 1 && stats.leased === 0 && stats.ready === 0;
      },
      10_000,
      10,
    );
    expect(ran).toEqual([0, 1, 3, 4, 5, 6, 7]); // each once; nothing lost with the failed worker
    const [failed] = await queue.failed();
    expect(failed!.error).toMatch(/two is bad/);
    expect(failed!.attempt).toBe(1);
  });

  it('stop() during a share: the running job finishes and is acked, the unstarted ones are released at once (ready, not leased)', async () => {
    const queue = freshMemoryQueue();
    const started: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const registry = registryOf({
      slow: async (n) => {
        started.push(n as number);
        await gate;
      },
    });
    for (let i = 0; i < 6; i++) await enqueue(queue, 'slow', [i]);
    const consumer = createConsumer({ queue, registry, logger: capturedLogger().logger, workers: 1, prefetch: 5 });
    running.push(consumer);
    await consumer.start();
    await waitFor('the first job started', () => started.length === 1, 5_000, 5);
    const stopping = consumer.stop({ timeout: 10_000 });
    await waitFor('the unstarted five released', async () => (await queue.stats()).ready === 5, 5_000, 5);
    expect(await queue.stats()).toMatchObject({ ready: 5, leased: 1 });
    release();
    expect(await stopping).toEqual({ forced: false });
    expect(started).toEqual([0]);
    expect(await queue.stats()).toMatchObject({ ready: 5, leased: 0, failed: 0 });
    // released, not delivered: the next consumer sees them as first deliveries
    const [next] = await queue.readBatch(1);
    expect(next!.attempt).toBe(1);
  });
});
