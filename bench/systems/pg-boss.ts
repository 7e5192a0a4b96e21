/**
 * pg-boss on PostgreSQL. Producer: send / insert. Consumer: pg-boss 10 has
 * no concurrency option; its documented way is several work() loops. Each
 * loop fetches up to `batchSize` jobs, runs its handler, completes the batch,
 * then waits out `pollingIntervalSeconds` (0.5 s at the least) before the
 * next fetch — so a loop's throughput is capped at batchSize per 0.5 s.
 * We run `concurrency` loops with batchSize 500 (graphile-worker's
 * localQueue size in its batched configuration), the jobs of a batch one
 * after another, and the minimum polling interval. pg-boss keeps completed
 * jobs (and their output) in its job table until its maintenance archives them.
 */
import PgBoss from 'pg-boss';
import { schemaName } from './names.js';
import type { BenchJob, BenchSystem, RunningConsumer, SystemContext } from './types.js';

const BATCH_SIZE = 500;
const POLLING_INTERVAL_SECONDS = 0.5;

export function pgBossSystem() {
  return (context: SystemContext): BenchSystem => {
    const schema = schemaName('pgboss_bench', context.namespace);
    const name = context.queue;
    let boss: PgBoss | null = null;
    const theBoss = async (): Promise<PgBoss> => {
      if (!boss) {
        const created = new PgBoss({ connectionString: context.postgresUrl, schema });
        created.on('error', () => {}); // without a listener an error event would kill the process
        await created.start();
        boss = created;
      }
      return boss;
    };

    return {
      async setup() {
        const b = await theBoss();
        if (!(await b.getQueue(name))) await b.createQueue(name);
      },

      async enqueueOne(job: BenchJob) {
        await (await theBoss()).send(name, job);
      },

      async enqueueBulk(jobs: readonly BenchJob[]) {
        await (await theBoss()).insert(jobs.map((data) => ({ name, data })));
      },

      async startConsumer(concurrency: number, onJob: (job: BenchJob) => void): Promise<RunningConsumer> {
        const b = await theBoss();
        const options = { batchSize: BATCH_SIZE, pollingIntervalSeconds: POLLING_INTERVAL_SECONDS };
        for (let i = 0; i < concurrency; i++) {
          await b.work<BenchJob>(name, options, async (jobs) => {
            for (const job of jobs) onJob(job.data);
          });
        }
        return { stop: () => b.offWork(name) };
      },

      async pending() {
        return (await theBoss()).getQueueSize(name, { before: 'completed' });
      },

      async teardown() {
        if (!boss) return;
        // pg-boss 10's delete_queue() deletes the queue row before dropping its
        // job partition, which the partition's rows still reference: empty it first.
        await boss.clearStorage();
        await boss.deleteQueue(name);
        await boss.stop({ graceful: false, wait: true });
        boss = null;
      },

      async destroy() {
        const { dropSchema } = await import('./cleanup.js');
        await dropSchema(context.postgresUrl, schema);
      },
    };
  };
}
