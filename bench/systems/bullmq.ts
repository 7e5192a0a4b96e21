/**
 * BullMQ on Redis. Producer: Queue.add / Queue.addBulk. Consumer: one
 * Worker with `concurrency`, its defaults otherwise. `keepCompleted` false
 * sets `removeOnComplete: true` on the jobs (nothing kept once done, like
 * taskmill with results off); true keeps BullMQ's default (every completed
 * job and its return value stay in Redis, like taskmill with results on).
 */
import { Queue, Worker, type JobsOptions } from 'bullmq';
import type { BenchJob, BenchSystem, RunningConsumer, SystemContext } from './types.js';

const JOB_NAME = 'noop';

function connectionOf(url: string): { host: string; port: number; db: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379), db: Number(parsed.pathname.slice(1) || 0) };
}

export function bullmqSystem(keepCompleted: boolean) {
  return (context: SystemContext): BenchSystem => {
    const prefix = `bullbench-${context.namespace}`;
    const connection = connectionOf(context.redisUrl);
    const jobOptions: JobsOptions = keepCompleted ? {} : { removeOnComplete: true };
    let queue: Queue | null = null;
    const theQueue = (): Queue => (queue ??= new Queue(context.queue, { connection, prefix, defaultJobOptions: jobOptions }));

    return {
      async setup() {
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
          { connection, prefix, concurrency },
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
        const { deleteRedisKeys } = await import('./cleanup.js');
        await deleteRedisKeys(context.redisUrl, `${prefix}:`);
      },
    };
  };
}
