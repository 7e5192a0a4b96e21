/**
 * BullMQ on Redis. Producer: Queue.add / Queue.addBulk. Consumer: one
 * Worker with `concurrency`, its defaults otherwise. `keepCompleted` false
 * sets `removeOnComplete: true` on the jobs (nothing kept once done, like
 * taskmill with results off); true keeps BullMQ's default (every completed
 * job and its return value stay in Redis, like taskmill with results on).
 *
 * `bullmqBench` is the body both BullMQ systems share (Redis here, PostgreSQL
 * in bullmq-postgres.ts): the same Queue / Worker calls on either backend.
 */
import { Queue, Worker, type JobsOptions } from 'bullmq';
import type { BenchJob, BenchSystem, RunningConsumer, SystemContext } from './types.js';

const JOB_NAME = 'noop';

/** The part of BullMQ's Queue the bench uses, on either backend. */
interface BullQueue {
  waitUntilReady(): Promise<unknown>;
  add(name: string, data: BenchJob): Promise<unknown>;
  addBulk(jobs: Array<{ name: string; data: BenchJob }>): Promise<unknown>;
  getJobCounts(...types: string[]): Promise<Record<string, number>>;
  obliterate(options: { force: boolean }): Promise<unknown>;
  close(): Promise<unknown>;
}

/** The part of BullMQ's Worker the bench uses. */
interface BullWorker {
  on(event: 'error', listener: () => void): unknown;
  waitUntilReady(): Promise<unknown>;
  close(): Promise<unknown>;
}

export interface BullmqBackend {
  /** A Queue of this backend for `name`, whose jobs get `defaultJobOptions`. */
  queue(name: string, defaultJobOptions: JobsOptions): BullQueue;
  /** A Worker of this backend running `process` for `name`'s jobs, `concurrency` at a time. */
  worker(name: string, process: (job: { data: BenchJob }) => Promise<void>, concurrency: number): BullWorker;
  /** What setup does before the queue is ready (migrations). */
  prepare?(): Promise<void>;
  /** Drops what the namespace holds on this backend. */
  destroy(): Promise<void>;
}

/** A BullMQ bench system over `backend`. */
export function bullmqBench(context: SystemContext, backend: BullmqBackend, keepCompleted: boolean): BenchSystem {
  const jobOptions: JobsOptions = keepCompleted ? {} : { removeOnComplete: true };
  let queue: BullQueue | null = null;
  const theQueue = (): BullQueue => (queue ??= backend.queue(context.queue, jobOptions));

  return {
    async setup() {
      await backend.prepare?.();
      await theQueue().waitUntilReady();
    },

    async enqueueOne(job: BenchJob) {
      await theQueue().add(JOB_NAME, job);
    },

    async enqueueBulk(jobs: readonly BenchJob[]) {
      await theQueue().addBulk(jobs.map((data) => ({ name: JOB_NAME, data })));
    },

    async startConsumer(concurrency: number, onJob: (job: BenchJob) => void): Promise<RunningConsumer> {
      const worker = backend.worker(context.queue, async (job) => onJob(job.data), concurrency);
      worker.on('error', () => {}); // a worker without an error listener prints and may throw
      await worker.waitUntilReady();
      return { stop: () => worker.close().then(() => {}) };
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

    destroy: () => backend.destroy(),
  };
}

function connectionOf(url: string): { host: string; port: number; db: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379), db: Number(parsed.pathname.slice(1) || 0) };
}

export function bullmqSystem(keepCompleted: boolean) {
  return (context: SystemContext): BenchSystem => {
    const prefix = `bullbench-${context.namespace}`;
    const connection = connectionOf(context.redisUrl);
    return bullmqBench(
      context,
      {
        queue: (name, defaultJobOptions) => new Queue<BenchJob>(name, { connection, prefix, defaultJobOptions }),
        worker: (name, process, concurrency) => new Worker<BenchJob>(name, process, { connection, prefix, concurrency }),
        async destroy() {
          const { deleteRedisKeys } = await import('./cleanup.js');
          await deleteRedisKeys(context.redisUrl, `${prefix}:`);
        },
      },
      keepCompleted,
    );
  };
}
