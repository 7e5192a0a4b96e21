/**
 * taskmill on each of its backends. Producer: queueCommand (the public API)
 * for single enqueues, queue.writeBatch of encoded envelopes for bulk.
 * Consumer: createConsumer with `workers` equal to the concurrency,
 * `prefetch` 500 (see PREFETCH), a silent pino logger, no periodic scheduler; the no-op command
 * is registered in a fresh CommandRegistry with `results` on or off.
 *
 * A flow-control option (`option`) measures what that option costs a job on
 * its own, everything else the same: `priority` writes every job at one of
 * −1, 0, 1 (a batch at a time); `unique` writes every job under its own key
 * (writeOnce: never a duplicate, so the key check and its freeing are the
 * cost); `rateLimit` and `concurrency` give the command a limit far above
 * the load (1,000,000), so no job waits and what is measured is the ask
 * before each start and, for concurrency, the slot freed with the ack.
 * `events` registers a queueEvents listener on the queue (from a connection
 * of its own, refreshed, never reading: a listener lives in another
 * process), so the consumer publishes each job's started and completed
 * events: what is measured is the consumer's cost of publishing them.
 * `metrics` runs the consumer with `metrics: true` (nobody scrapes).
 */
import path from 'node:path';
import pino from 'pino';
import {
  CommandRegistry,
  createConsumer,
  DatabaseQueue,
  MemoryQueue,
  queueCommand,
  RedisBlockingQueue,
  RedisQueue,
  registry as globalRegistry,
  SqliteQueue,
  type BaseQueue,
  type CommandOptions,
  type QueuedCommand,
} from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { startGatesOf } from '../../src/producer/gates.js';
import { schemaName } from './names.js';
import type { BenchJob, BenchSystem, RunningConsumer, SystemContext } from './types.js';

export type TaskmillBackend = 'memory' | 'sqlite' | 'redis' | 'redis-blocking' | 'postgres';
export type FlowOption = 'priority' | 'unique' | 'rateLimit' | 'concurrency' | 'events' | 'metrics';

const HIGH_LIMIT = 1_000_000;

/** The command options an option variant runs with (producer and consumer alike). */
function optionsFor(option: FlowOption | undefined): CommandOptions {
  switch (option) {
    case 'rateLimit':
      return { rateLimit: { limit: HIGH_LIMIT, per: 1_000 } };
    case 'concurrency':
      return { concurrency: { limit: HIGH_LIMIT } };
    case 'unique':
      return { unique: { key: (seq: number) => String(seq) } };
    default:
      return {};
  }
}

type Batching = BaseQueue & { writeBatch(datas: readonly string[]): Promise<string[]> };

const COMMAND = 'benchNoop';
/**
 * Read-ahead per consumer: 500, graphile-worker batched's `localQueue.size`
 * (pg-boss also fetches up to 500 per query), so both hold the same number
 * of jobs ahead of their workers. With prefetch = concurrency (10) a
 * PostgreSQL consumer spent half its time waiting on small reads; 100
 * doubled that, and 500 took PostgreSQL from 1.07× to 1.49× graphile-worker
 * batched (bench/RESULTS.md, the run of 2026-12-07 19:43).
 */
const PREFETCH = 500;

function makeQueue(kind: TaskmillBackend, context: SystemContext): BaseQueue {
  const name = context.queue;
  switch (kind) {
    case 'memory':
      return new MemoryQueue(`bench-${context.namespace}`, { name });
    case 'sqlite':
      return new SqliteQueue(path.join(context.dir, `taskmill-${name}.sqlite`), { name });
    case 'redis':
      return new RedisQueue(context.redisUrl, { name, prefix: `tmbench-${context.namespace}` });
    case 'redis-blocking':
      return new RedisBlockingQueue(context.redisUrl, { name, prefix: `tmbench-${context.namespace}` });
    case 'postgres':
      return new DatabaseQueue(context.postgresUrl, { name, schema: schemaName('taskmill_bench', context.namespace) });
  }
}

/** A listener registered on `queue` (kept fresh) that reads nothing: what makes consumers publish. */
async function registerListener(queue: BaseQueue): Promise<{ close(): Promise<void> }> {
  await queue.open();
  const id = `bench-${process.pid}`;
  await queue.registerListener(id);
  const refresh = setInterval(() => void queue.registerListener(id).catch(() => {}), 5_000);
  return {
    close: async () => {
      clearInterval(refresh);
      await queue.unregisterListener(id);
      await queue.close();
    },
  };
}

export function taskmillSystem(kind: TaskmillBackend, results: boolean, option?: FlowOption) {
  return (context: SystemContext): BenchSystem => {
    let queue: BaseQueue | null = null;
    let command: QueuedCommand<[number, number], void> | null = null;
    const theQueue = (): BaseQueue => (queue ??= makeQueue(kind, context));

    return {
      async setup() {
        await theQueue().open();
      },

      async enqueueOne(job: BenchJob) {
        if (!command) {
          globalRegistry.unregister(COMMAND); // a producer's command from an earlier run in this process
          command = queueCommand({ name: COMMAND, queue: theQueue(), ...optionsFor(option) }, (_seq: number, _sentAt: number) => {});
        }
        if (option === 'priority') await command.schedule({ priority: (job.seq % 3) - 1 }, job.seq, job.sentAt);
        else await command(job.seq, job.sentAt);
      },

      async enqueueBulk(jobs: readonly BenchJob[]) {
        const datas = jobs.map((job) => encodeMessage(COMMAND, [job.seq, job.sentAt]).data);
        const queue = theQueue() as Batching;
        if (option === 'unique') await Promise.all(datas.map((data, i) => queue.writeOnce(`${COMMAND}:${jobs[i]!.seq}`, data)));
        else if (option === 'priority') await queue.writeBatch(datas, { priority: ((jobs[0]?.seq ?? 0) % 3) - 1 });
        else await queue.writeBatch(datas);
      },

      async startConsumer(concurrency: number, onJob: (job: BenchJob) => void): Promise<RunningConsumer> {
        const registry = new CommandRegistry();
        registry.register({
          name: COMMAND,
          fn: (seq: unknown, sentAt: unknown) => onJob({ seq: seq as number, sentAt: sentAt as number }),
          options: { name: COMMAND, results, ...optionsFor(option) },
          schedule: null,
          module: 'bench',
          startGates: startGatesOf(COMMAND, optionsFor(option).rateLimit, optionsFor(option).concurrency),
        });
        const listener = option === 'events' ? await registerListener(makeQueue(kind, context)) : null;
        const consumer = createConsumer({
          queue: theQueue(),
          workers: concurrency,
          prefetch: PREFETCH,
          registry,
          logger: pino({ level: 'silent' }),
          periodic: false,
          metrics: option === 'metrics',
        });
        await consumer.start();
        return {
          stop: async () => {
            await consumer.stop();
            await listener?.close();
          },
        };
      },

      async pending() {
        const stats = await theQueue().stats();
        return stats.ready + stats.leased + (stats.delayed ?? 0);
      },

      async teardown() {
        if (command) globalRegistry.unregister(COMMAND);
        command = null;
        if (!queue) return;
        await queue.flush();
        await queue.close();
        queue = null;
      },

      async destroy() {
        const { deleteRedisKeys, dropSchema } = await import('./cleanup.js');
        if (kind === 'redis' || kind === 'redis-blocking') await deleteRedisKeys(context.redisUrl, `tmbench-${context.namespace}:`);
        if (kind === 'postgres') await dropSchema(context.postgresUrl, schemaName('taskmill_bench', context.namespace));
      },
    };
  };
}
