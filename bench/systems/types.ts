/**
 * The one interface every benchmarked system implements. An adapter is made
 * twice for the same run: in the orchestrator (setup, preload, the latency
 * producer, teardown) and in a child process (the consumer, or the enqueue
 * workload), so both halves must find the same queue from the context alone.
 */

/** The job arguments every system carries: a sequence number and the producer's send time. */
export interface BenchJob {
  /** 0…N-1 for measured jobs; negative for warm-up jobs (not counted). */
  seq: number;
  /**
   * When the producer called enqueue: monotonicMs() (process.hrtime, one clock
   * for every process here; timeOrigin-corrected wall time differs by up to
   * ~0.5 ms between processes, too much for sub-millisecond latencies).
   */
  sentAt: number;
}

/** Where a run's data lives; identical in the orchestrator and the child. */
export interface SystemContext {
  /** Per bench invocation: the Redis key prefix / PostgreSQL schema suffix, dropped at the end. */
  namespace: string;
  /** Per run: the queue name, so no run sees another's jobs. */
  queue: string;
  /** A scratch directory (SQLite files). */
  dir: string;
  redisUrl: string;
  postgresUrl: string;
}

export interface RunningConsumer {
  /** Stops the consumer (graceful); resolves once it has stopped. */
  stop(): Promise<void>;
}

export interface BenchSystem {
  /** Connects and creates (or empties) this run's queue. Idempotent. */
  setup(): Promise<void>;
  /** Enqueues one job through the system's ordinary producer API. */
  enqueueOne(job: BenchJob): Promise<void>;
  /** Enqueues many jobs in one call, where the system has a bulk API. */
  enqueueBulk?(jobs: readonly BenchJob[]): Promise<void>;
  /** Starts a consumer running `concurrency` jobs at a time; `onJob` is called when each job starts. */
  startConsumer(concurrency: number, onJob: (job: BenchJob) => void): Promise<RunningConsumer>;
  /** Jobs of this run not yet completed (waiting or running, ack not yet written). */
  pending(): Promise<number>;
  /** Deletes this run's jobs and closes connections. */
  teardown(): Promise<void>;
  /** Drops everything the namespace holds (schemas, keys). Called once, at the very end. */
  destroy?(): Promise<void>;
}

export type Backend = 'memory' | 'sqlite' | 'redis' | 'postgres';
export type Workload = 'enqueue' | 'process1' | 'process10' | 'latency' | 'scaleout';

export interface SystemSpec {
  /** Stable key used on the command line (`--systems`). */
  key: string;
  /** Shown in tables. */
  label: string;
  backend: Backend;
  /** 'taskmill' or the peer's package name. */
  family: string;
  /** The workloads this system runs. */
  workloads: readonly Workload[];
  /** The queue cannot cross processes (memory): the child preloads it itself. */
  inProcess?: boolean;
  /** The enqueue figures of this system are another system's (same producer, different consumer config). */
  enqueueSameAs?: string;
  /** Run only when named in `--systems` (the flow-control option variants). */
  onDemand?: boolean;
  /** A one-line note on the configuration, printed under the tables. */
  note?: string;
  /** Loads the adapter (lazily: a child process loads only its own system's libraries). */
  load(): Promise<(context: SystemContext) => BenchSystem>;
}
