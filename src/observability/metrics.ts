/**
 * A consumer's Prometheus metrics (prom-client): what `createConsumer({
 * metrics: true })` exposes as `consumer.metrics` and `taskmill consume
 * --metrics PORT` serves at GET /metrics.
 *
 * - taskmill_jobs_total{queue,command,outcome}: jobs that ended an attempt
 *   here, by outcome (completed, failed, retrying, cancelled, expired,
 *   rejected, deferred);
 * - taskmill_job_duration_seconds{queue,command}: how long the command ran
 *   (completed and failed attempts), a histogram;
 * - taskmill_queue_jobs{queue,state}: ready, leased, delayed and failed
 *   jobs, asked of the queue when scraped;
 * - taskmill_workers{state}: this consumer's workers by state (idle, busy,
 *   retiring), read off the supervisor when scraped.
 *
 * Hot path: a job costs one label lookup and an increment (two for a
 * histogram) — and nothing at all in a consumer without metrics, whose
 * runners see no `metrics` dep.
 */
import type { Counter, Histogram, Registry } from 'prom-client';
import type { AnyActorRef } from 'xstate';
import type { BaseQueue, QueueStats } from '../backends/base.js';
import { OrderedQueues } from '../consumer/ordered-queues.js';
import { promClient } from '../backends/drivers.js';

export type JobOutcome = 'completed' | 'failed' | 'retrying' | 'cancelled' | 'expired' | 'rejected' | 'deferred';

/** What a runner reports; `seconds` is the command's run time (undefined when it did not run). */
export interface JobMetrics {
  jobEnded(messageId: string, command: string, outcome: JobOutcome, seconds?: number): void;
}

export interface ConsumerMetricsSources {
  /** The queue name of a leased message (a consumer of several queues: its member's). */
  queueOf(messageId: string): string;
  /** Every queue the consumer reads, with its stats, for the queue gauge. */
  queueStats(): Promise<Array<{ queue: string; stats: QueueStats }>>;
  /** The consumer's workers' states now. */
  workerStates(): string[];
}

/** Seconds: 1 ms to 5 minutes. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300];

export class ConsumerMetrics implements JobMetrics {
  readonly registry: Registry;
  readonly #jobs: Counter<'queue' | 'command' | 'outcome'>;
  readonly #duration: Histogram<'queue' | 'command'>;
  readonly #sources: ConsumerMetricsSources;

  constructor(sources: ConsumerMetricsSources) {
    const prom = promClient();
    this.#sources = sources;
    this.registry = new prom.Registry();
    const registers = [this.registry];
    this.#jobs = new prom.Counter({
      name: 'taskmill_jobs_total',
      help: 'Jobs that ended an attempt in this consumer, by outcome',
      labelNames: ['queue', 'command', 'outcome'],
      registers,
    });
    this.#duration = new prom.Histogram({
      name: 'taskmill_job_duration_seconds',
      help: 'How long a command ran (completed and failed attempts)',
      labelNames: ['queue', 'command'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    new prom.Gauge({
      name: 'taskmill_queue_jobs',
      help: 'Jobs in the queue by state, asked of the backend when scraped',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        for (const { queue, stats } of await sources.queueStats()) {
          for (const state of ['ready', 'leased', 'delayed', 'failed'] as const) this.set({ queue, state }, stats[state] ?? 0);
        }
      },
    });
    new prom.Gauge({
      name: 'taskmill_workers',
      help: "This consumer's workers by state",
      labelNames: ['state'],
      registers,
      collect() {
        const counts: Record<string, number> = { idle: 0, busy: 0, retiring: 0 };
        for (const state of sources.workerStates()) counts[state] = (counts[state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }

  jobEnded(messageId: string, command: string, outcome: JobOutcome, seconds?: number): void {
    const queue = this.#sources.queueOf(messageId);
    this.#jobs.inc({ queue, command, outcome });
    if (seconds !== undefined) this.#duration.observe({ queue, command }, seconds);
  }
}

/** The queue name of a message a consumer of `queue` leased (a consumer of several queues: its member's). */
export function queueNameOf(queue: BaseQueue): (messageId: string) => string {
  return queue instanceof OrderedQueues ? (id) => queue.queueOf(id).name : () => queue.name;
}

/** The metrics of a consumer reading `queue` (several when it is an OrderedQueues), whose supervisor `supervisor()` returns. */
export function metricsFor(queue: BaseQueue, supervisor: () => AnyActorRef): ConsumerMetrics {
  const members = queue instanceof OrderedQueues ? queue.members : [queue];
  return new ConsumerMetrics({
    queueOf: queueNameOf(queue),
    queueStats: () => Promise.all(members.map(async (member) => ({ queue: member.name, stats: await member.stats() }))),
    workerStates: () => {
      const states: string[] = [];
      const children = (supervisor().getSnapshot() as { children: Record<string, AnyActorRef | undefined> }).children;
      for (const [id, ref] of Object.entries(children)) {
        if (!ref || !id.startsWith('worker-')) continue;
        const snapshot = ref.getSnapshot() as { status: string; value: unknown };
        if (snapshot.status === 'active') states.push(String(snapshot.value));
      }
      return states;
    },
  });
}
