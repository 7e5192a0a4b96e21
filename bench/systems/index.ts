/**
 * Every system the bench runs, in table order.
 */
import type { SystemSpec, Workload } from './types.js';

const ALL: readonly Workload[] = ['enqueue', 'process1', 'process10', 'latency'];

export const SYSTEMS: SystemSpec[] = [
  {
    key: 'taskmill-memory',
    label: 'taskmill memory',
    backend: 'memory',
    family: 'taskmill',
    workloads: ['process1', 'process10'],
    inProcess: true,
    note: 'in-process: a memory queue cannot cross processes, so the consumer child preloads its own jobs (they count in its RSS)',
    load: async () => (await import('./taskmill.js')).taskmillSystem('memory', false),
  },
  {
    key: 'taskmill-sqlite',
    label: 'taskmill SQLite',
    backend: 'sqlite',
    family: 'taskmill',
    workloads: ALL,
    load: async () => (await import('./taskmill.js')).taskmillSystem('sqlite', false),
  },
  {
    key: 'taskmill-redis',
    label: 'taskmill Redis',
    backend: 'redis',
    family: 'taskmill',
    workloads: [...ALL, 'scaleout'],
    load: async () => (await import('./taskmill.js')).taskmillSystem('redis', false),
  },
  {
    key: 'taskmill-redis-blocking',
    label: 'taskmill Redis blocking',
    backend: 'redis',
    family: 'taskmill',
    workloads: ALL,
    load: async () => (await import('./taskmill.js')).taskmillSystem('redis-blocking', false),
  },
  {
    key: 'taskmill-postgres',
    label: 'taskmill PostgreSQL',
    backend: 'postgres',
    family: 'taskmill',
    workloads: [...ALL, 'scaleout'],
    load: async () => (await import('./taskmill.js')).taskmillSystem('postgres', false),
  },
  {
    key: 'taskmill-redis-results',
    label: 'taskmill Redis, results on',
    backend: 'redis',
    family: 'taskmill',
    workloads: ['process10'],
    note: 'the default `results: true`: a result record per job is written with the ack',
    load: async () => (await import('./taskmill.js')).taskmillSystem('redis', true),
  },
  {
    key: 'taskmill-postgres-results',
    label: 'taskmill PostgreSQL, results on',
    backend: 'postgres',
    family: 'taskmill',
    workloads: ['process10'],
    load: async () => (await import('./taskmill.js')).taskmillSystem('postgres', true),
  },
  {
    key: 'bullmq',
    label: 'BullMQ',
    backend: 'redis',
    family: 'bullmq',
    workloads: ALL,
    note: '`removeOnComplete: true` (nothing kept once done, as taskmill with results off); Worker defaults otherwise',
    load: async () => (await import('./bullmq.js')).bullmqSystem(false),
  },
  {
    key: 'bullmq-keep',
    label: 'BullMQ, keeps completed',
    backend: 'redis',
    family: 'bullmq',
    workloads: ['process10'],
    note: "BullMQ's default: every completed job and its return value stay in Redis (compare with taskmill results on)",
    load: async () => (await import('./bullmq.js')).bullmqSystem(true),
  },
  {
    key: 'bullmq-postgres',
    label: 'BullMQ on PostgreSQL',
    backend: 'postgres',
    family: 'bullmq',
    workloads: ALL,
    note: "its PostgreSQL backend as its guide sets it up: `{ connectionString, schema }`, the pool it builds (node-postgres' default 10) and its LISTEN connection, migrations run once with `runMigrations`; `removeOnComplete: true`; Worker defaults otherwise",
    load: async () => (await import('./bullmq-postgres.js')).bullmqPostgresSystem(false),
  },
  {
    key: 'bullmq-postgres-keep',
    label: 'BullMQ on PostgreSQL, keeps completed',
    backend: 'postgres',
    family: 'bullmq',
    workloads: ['process10'],
    note: 'the same, keeping every completed job and its return value (compare with taskmill PostgreSQL results on)',
    load: async () => (await import('./bullmq-postgres.js')).bullmqPostgresSystem(true),
  },
  {
    key: 'graphile-worker',
    label: 'graphile-worker',
    backend: 'postgres',
    family: 'graphile-worker',
    workloads: ALL,
    note: 'defaults: one fetch and one completion query per job',
    load: async () => (await import('./graphile-worker.js')).graphileWorkerSystem(false),
  },
  {
    key: 'graphile-worker-batched',
    label: 'graphile-worker, batched',
    backend: 'postgres',
    family: 'graphile-worker',
    workloads: ['process1', 'process10', 'latency'],
    enqueueSameAs: 'graphile-worker',
    note: "its performance guide's batching: `localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0`",
    load: async () => (await import('./graphile-worker.js')).graphileWorkerSystem(true),
  },
  {
    key: 'pg-boss',
    label: 'pg-boss',
    backend: 'postgres',
    family: 'pg-boss',
    workloads: ALL,
    note: '`concurrency` work() loops, batchSize 500, pollingIntervalSeconds 0.5 (its minimum): each loop waits out the interval after every batch; completed jobs are kept',
    load: async () => (await import('./pg-boss.js')).pgBossSystem(),
  },
];

/** What each flow-control option (and a registered queueEvents listener) costs a job on Redis and PostgreSQL (bench/systems/taskmill.ts says how each is set up). */
for (const backend of ['redis', 'postgres'] as const) {
  for (const option of ['priority', 'unique', 'rateLimit', 'concurrency', 'events', 'metrics'] as const) {
    SYSTEMS.push({
      key: `taskmill-${backend}-${option}`,
      label: `taskmill ${backend === 'redis' ? 'Redis' : 'PostgreSQL'}, ${option}`,
      backend,
      family: 'taskmill',
      workloads: ['enqueue', 'process10'],
      onDemand: true,
      load: async () => (await import('./taskmill.js')).taskmillSystem(backend, false, option),
    });
  }
}

export function systemByKey(key: string): SystemSpec {
  const spec = SYSTEMS.find((s) => s.key === key);
  if (!spec) throw new Error(`unknown system "${key}"; known: ${SYSTEMS.map((s) => s.key).join(', ')}`);
  return spec;
}
