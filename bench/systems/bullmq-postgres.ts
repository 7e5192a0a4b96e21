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
import { createPostgresBackend, runMigrations, withBackend, type JobsOptions } from 'bullmq';
import pg from 'pg';
import { schemaName } from './names.js';
import type { BenchJob, BenchSystem, RunningConsumer, SystemContext } from './types.js';

const JOB_NAME = 'noop';
const { Queue, Worker } = withBackend(createPostgresBackend);
type PgQueue = InstanceType<typeof Queue<BenchJob>>;

export function bullmqPostgresSystem(keepCompleted: boolean) {
  return (context: SystemContext): BenchSystem => {
    // Both configurations share one schema: their queues are named per run.
    const schema = schemaName('bullmq_bench', context.namespace);
    const connection = { connectionString: context.postgresUrl, schema };
    const jobOptions: JobsOptions = keepCompleted ? {} : { removeOnComplete: true };
    let queue: PgQueue | null = null;
    const theQueue = (): PgQueue => (queue ??= new Queue<BenchJob>(context.queue, { connection, defaultJobOptions: jobOptions }));

    return {
      async setup() {
        const client = new pg.Client({ connectionString: context.postgresUrl });
        client.on('error', () => {});
        await client.connect();
        try {
          await runMigrations(client, schema);
        } finally {
          await client.end();
        }
        await theQueue().waitUntilReady();
      },

      async enqueueOne(job: BenchJob) {
        await theQueue().add(JOB_NAME, job);
      },

      async enqueueBulk(jobs: readonly BenchJob[]) {
        await theQueue().addBulk(jobs.map((data) => ({ name: JOB_NAME, data })));
      },

      async startConsumer(concurrency: number, onJob: (job: BenchJob) => void): Promise<RunningConsumer> {
        const worker = new Worker<BenchJob>(
          context.queue,
          async (job) => {
            onJob(job.data);
          },
          { connection, concurrency },
        );
        worker.on('error', () => {}); // a worker without an error listener prints and may throw
        await worker.waitUntilReady();
        return { stop: () => worker.close() };
      },

      async pending() {
        const counts = await theQueue().getJobCounts('active', 'wait', 'prioritized', 'delayed');
        return Object.values(counts).reduce((sum, n) => sum + n, 0);
      },

      async teardown() {
        if (!queue) return;
        await queue.obliterate({ force: true });
        await queue.close();
        queue = null;
      },

      async destroy() {
        const { dropSchema } = await import('./cleanup.js');
        await dropSchema(context.postgresUrl, schema);
      },
    };
  };
}
