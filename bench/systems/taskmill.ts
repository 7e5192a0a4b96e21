/**
 * taskmill on each of its backends. Producer: queueCommand (the public API)
 * for single enqueues, queue.writeBatch of encoded envelopes for bulk.
 * Consumer: createConsumer with `workers` equal to the concurrency,
 * `prefetch` 100 (see PREFETCH), a silent pino logger, no periodic scheduler; the no-op command
 * is registered in a fresh CommandRegistry with `results` on or off.
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
  type QueuedCommand,
} from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { schemaName } from './names.js';
import type { BenchJob, BenchSystem, RunningConsumer, SystemContext } from './types.js';

export type TaskmillBackend = 'memory' | 'sqlite' | 'redis' | 'redis-blocking' | 'postgres';

type Batching = BaseQueue & { writeBatch(datas: readonly string[]): Promise<string[]> };

const COMMAND = 'benchNoop';
/**
 * Read-ahead per consumer. graphile-worker (batched) and pg-boss fetch up to
 * 500 jobs per query; with prefetch = concurrency (10) a PostgreSQL consumer
 * spent half its time waiting on small reads (bench/RESULTS.md, profile
 * findings). 100 doubled its throughput in `bench/throughput.ts --prefetch`.
 */
const PREFETCH = 100;

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

export function taskmillSystem(kind: TaskmillBackend, results: boolean) {
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
          command = queueCommand({ name: COMMAND, queue: theQueue() }, (_seq: number, _sentAt: number) => {});
        }
        await command(job.seq, job.sentAt);
      },

      async enqueueBulk(jobs: readonly BenchJob[]) {
        const datas = jobs.map((job) => encodeMessage(COMMAND, [job.seq, job.sentAt]).data);
        await (theQueue() as Batching).writeBatch(datas);
      },

      async startConsumer(concurrency: number, onJob: (job: BenchJob) => void): Promise<RunningConsumer> {
        const registry = new CommandRegistry();
        registry.register({
          name: COMMAND,
          fn: (seq: unknown, sentAt: unknown) => onJob({ seq: seq as number, sentAt: sentAt as number }),
          options: { name: COMMAND, results },
          schedule: null,
          module: 'bench',
        });
        const consumer = createConsumer({
          queue: theQueue(),
          workers: concurrency,
          prefetch: PREFETCH,
          registry,
          logger: pino({ level: 'silent' }),
          periodic: false,
        });
        await consumer.start();
        return { stop: async () => void (await consumer.stop()) };
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
