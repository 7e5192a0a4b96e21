/**
 * graphile-worker on PostgreSQL. Producer: WorkerUtils.addJob / addJobs.
 * Consumer: run() with a task list, `concurrency`, no signal handlers, a
 * silent logger. `batched` turns on the batching its performance guide
 * recommends for high throughput (`localQueue: { size: 500 }`,
 * `completeJobBatchDelay: 0`, `failJobBatchDelay: 0`); otherwise its
 * defaults (one fetch per job, one completion query per job).
 * Completed jobs are deleted by graphile-worker; nothing is kept.
 */
import { Logger, makeWorkerUtils, run, runMigrations, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { quoteIdent, schemaName } from './names.js';
import type { BenchJob, BenchSystem, RunningConsumer, SystemContext } from './types.js';

const TASK = 'noop';
const silent = new Logger(() => () => {});

export function graphileWorkerSystem(batched: boolean) {
  return (context: SystemContext): BenchSystem => {
    // Both configurations share one schema: they differ only in the consumer.
    const schema = schemaName('gw_bench', context.namespace);
    const base = { connectionString: context.postgresUrl, schema, logger: silent };
    let utils: WorkerUtils | null = null;
    let pool: pg.Pool | null = null;
    const theUtils = async (): Promise<WorkerUtils> => (utils ??= await makeWorkerUtils(base));
    const thePool = (): pg.Pool => {
      if (!pool) {
        pool = new pg.Pool({ connectionString: context.postgresUrl, max: 1 });
        pool.on('error', () => {});
      }
      return pool;
    };

    return {
      async setup() {
        await runMigrations(base);
        await theUtils();
      },

      async enqueueOne(job: BenchJob) {
        await (await theUtils()).addJob(TASK, job);
      },

      async enqueueBulk(jobs: readonly BenchJob[]) {
        await (await theUtils()).addJobs(jobs.map((payload) => ({ identifier: TASK, payload })));
      },

      async startConsumer(concurrency: number, onJob: (job: BenchJob) => void): Promise<RunningConsumer> {
        const runner = await run({
          ...base,
          concurrency,
          noHandleSignals: true,
          crontab: '',
          taskList: {
            [TASK]: async (payload) => {
              onJob(payload as BenchJob);
            },
          },
          ...(batched ? { preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } } : {}),
        });
        return { stop: () => runner.stop() };
      },

      async pending() {
        // graphile-worker deletes a job when it completes.
        const result = await thePool().query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quoteIdent(schema)}._private_jobs`);
        return result.rows[0]!.n;
      },

      async teardown() {
        await thePool().query(`DELETE FROM ${quoteIdent(schema)}._private_jobs`);
        await utils?.release();
        utils = null;
        await pool?.end();
        pool = null;
      },

      async destroy() {
        const { dropSchema } = await import('./cleanup.js');
        await dropSchema(context.postgresUrl, schema);
      },
    };
  };
}
