/**
 * BullMQ on its PostgreSQL backend (`createPostgresBackend`, bound with
 * `withBackend` as its PostgreSQL guide shows for typed jobs). The same
 * Queue / Worker calls as on Redis (bullmq.ts): Queue.add / addBulk, one
 * Worker with `concurrency`, its defaults otherwise.
 *
 * Configured as the guide gives it: a connection string, wrapped as
 * `{ connectionString, schema }` (the guide's one way to pick a schema other
 * than its default `bullmq`, which we need so a run lives in a schema of its
 * own and can be dropped); the pool BullMQ builds (node-postgres' default
 * size, 10: one connection per job in flight at c=10) plus its own LISTEN
 * connection; migrations run explicitly with `runMigrations` on one
 * dedicated client, as the guide says (connections do not migrate).
 * `keepCompleted` false sets `removeOnComplete: true` (the guide's tuning
 * tip, and what the Redis row does); true keeps every completed job.
 * Nothing is changed on the server (the guide's `synchronous_commit` tip is
 * a server policy, and taskmill gets no such help either).
 */
import { createPostgresBackend, runMigrations, withBackend } from 'bullmq';
import pg from 'pg';
import { bullmqBench } from './bullmq.js';
import { schemaName } from './names.js';
import type { BenchJob, BenchSystem, SystemContext } from './types.js';

const { Queue, Worker } = withBackend(createPostgresBackend);

export function bullmqPostgresSystem(keepCompleted: boolean) {
  return (context: SystemContext): BenchSystem => {
    // Both configurations share one schema: their queues are named per run.
    const schema = schemaName('bullmq_bench', context.namespace);
    const connection = { connectionString: context.postgresUrl, schema };
    return bullmqBench(
      context,
      {
        queue: (name, defaultJobOptions) => new Queue<BenchJob>(name, { connection, defaultJobOptions }),
        worker: (name, process, concurrency) => new Worker<BenchJob>(name, process, { connection, concurrency }),
        async prepare() {
          const client = new pg.Client({ connectionString: context.postgresUrl });
          client.on('error', () => {});
          await client.connect();
          try {
            await runMigrations(client, schema);
          } finally {
            await client.end();
          }
        },
        async destroy() {
          const { dropSchema } = await import('./cleanup.js');
          await dropSchema(context.postgresUrl, schema);
        },
      },
      keepCompleted,
    );
  };
}
