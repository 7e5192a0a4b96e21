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
import type { Registry } from 'prom-client';
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
const OUTCOMES: readonly JobOutcome[] = ['completed', 'failed', 'retrying', 'cancelled', 'expired', 'rejected', 'deferred'];
const OUTCOME_INDEX: Readonly<Record<JobOutcome, number>> = Object.fromEntries(OUTCOMES.map((o, i) => [o, i])) as Record<JobOutcome, number>;

/** One (queue, command)'s counts: by outcome, and the run-time histogram's buckets (not cumulative), sum and count. */
interface Series {
  queue: string;
  command: string;
  outcomes: Float64Array;
  buckets: Float64Array;
  sum: number;
  count: number;
}

/** A metric prom-client's Registry prints from what `values()` returns when scraped. */
function scrapedMetric(
  name: string,
  help: string,
  type: 'counter' | 'histogram',
  values: () => Array<{ labels: Record<string, string>; value: number; metricName?: string }>,
) {
  return { name, help, type, aggregator: 'sum', get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }), reset: () => {} };
}

/**
 * Why the job counter and the histogram are counted here and not with prom-client's Counter and
 * Histogram: those hash their label object on every call, which cost a no-op job on Redis 17 % of
 * its throughput in the bench. Here a job is two Map lookups and a few increments; the series are
 * turned into Prometheus samples only when scraped.
 */
export class ConsumerMetrics implements JobMetrics {
  readonly registry: Registry;
  readonly #series = new Map<string, Map<string, Series>>();
  readonly #sources: ConsumerMetricsSources;

  constructor(sources: ConsumerMetricsSources) {
    const prom = promClient();
    this.#sources = sources;
    this.registry = new prom.Registry();
    const registers = [this.registry];
    const all = () => [...this.#series.values()].flatMap((byCommand) => [...byCommand.values()]);
    this.registry.registerMetric(
      scrapedMetric('taskmill_jobs_total', 'Jobs that ended an attempt in this consumer, by outcome', 'counter', () =>
        all().flatMap((s) =>
          OUTCOMES.flatMap((outcome, i) => (s.outcomes[i]! > 0 ? [{ labels: { queue: s.queue, command: s.command, outcome }, value: s.outcomes[i]! }] : [])),
        ),
      ) as never,
    );
    this.registry.registerMetric(
      scrapedMetric('taskmill_job_duration_seconds', 'How long a command ran (completed and failed attempts)', 'histogram', () =>
        all()
          .filter((s) => s.count > 0)
          .flatMap((s) => {
            const labels = { queue: s.queue, command: s.command };
            let cumulative = 0;
            const buckets = [...DURATION_BUCKETS, Number.POSITIVE_INFINITY].map((le, i) => {
              cumulative += s.buckets[i]!;
              return {
                metricName: 'taskmill_job_duration_seconds_bucket',
                labels: { le: le === Number.POSITIVE_INFINITY ? '+Inf' : String(le), ...labels },
                value: cumulative,
              };
            });
            return [
              ...buckets,
              { metricName: 'taskmill_job_duration_seconds_sum', labels, value: s.sum },
              { metricName: 'taskmill_job_duration_seconds_count', labels, value: s.count },
            ];
          }),
      ) as never,
    );
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
    let byCommand = this.#series.get(queue);
    if (!byCommand) this.#series.set(queue, (byCommand = new Map<string, Series>()));
    let series = byCommand.get(command);
    if (!series) {
      series = { queue, command, outcomes: new Float64Array(OUTCOMES.length), buckets: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0, count: 0 };
      byCommand.set(command, series);
    }
    series.outcomes[OUTCOME_INDEX[outcome]]!++;
    if (seconds !== undefined) {
      let i = 0;
      while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++;
      series.buckets[i]!++;
      series.sum += seconds;
      series.count++;
    }
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
