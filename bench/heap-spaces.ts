/**
 * Where a consumer's memory goes under a backlog: V8's heap spaces before the
 * consumer starts, half-way through N pre-loaded no-op jobs (memory backend,
 * or PostgreSQL with --postgres; prefetch 500, 10 workers) and after the run, then the run's garbage
 * collections: what each scavenge of the young generation left alive, what it
 * promoted to the old space, and what reached the old space between
 * collections (allocation sites V8 pretenures). RSS here includes tsx's
 * loader; the space sizes are what explain the benchmark's peak RSS
 * (bench/RESULTS.md, "Profile findings").
 *
 *   node --expose-gc --import tsx bench/heap-spaces.ts [--jobs 20000] [--postgres URL]
 *
 * With --postgres the backlog is written by a child process of this script
 * into a schema of its own (dropped at the end), so, as in the bench, only
 * the consumer's own allocations widen this process's young generation.
 *
 * Under tsx the loader's own allocations have already widened the young
 * generation before the run; `npm run bench` compiles this file with the rest
 * (node_modules/.cache/taskmill-bench-<hash>/bench/heap-spaces.js), and that
 * copy, run with `node --expose-gc`, shows the young generation growing as a
 * user's consumer's does.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import pino from 'pino';
import { CommandRegistry, createConsumer, DatabaseQueue, MemoryQueue, type BaseQueue } from '../src/index.js';
import { encodeMessage } from '../src/codec/message.js';
import { positiveInteger } from './args.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    postgres: { type: 'string' },
    // Internal: the child that writes the PostgreSQL backlog into this schema, then exits.
    fill: { type: 'string' },
  },
});
const jobs = positiveInteger('jobs', values.jobs);
const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
const SPACES = ['new_space', 'old_space', 'code_space', 'large_object_space'];

function report(label: string): void {
  const spaces = v8
    .getHeapSpaceStatistics()
    .filter((s) => SPACES.includes(s.space_name))
    .map((s) => `${s.space_name} ${mib(s.space_used_size)} used / ${mib(s.space_size)} reserved`);
  console.log(`${label.padEnd(8)} RSS ${mib(process.memoryUsage().rss)} MiB; ${spaces.join('; ')} (MiB)`);
}

type Collection = ReturnType<v8.GCProfiler['stop']>['statistics'][number];
type HeapAt = Collection['beforeGC'];
const space = (at: HeapAt, name: string) => at.heapSpaceStatistics.find((s) => s.spaceName === name)!;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** Per scavenge (median): survivors kept young, bytes promoted, old-space growth since the previous collection. */
function reportCollections(collections: Collection[]): void {
  const scavenges = collections.filter((c) => c.gcType === 'Scavenge');
  const kept = scavenges.map((c) => space(c.afterGC, 'new_space').spaceUsedSize);
  const promoted = scavenges.map((c) => space(c.afterGC, 'old_space').spaceUsedSize - space(c.beforeGC, 'old_space').spaceUsedSize);
  const between = collections.slice(1).map((c, i) => space(c.beforeGC, 'old_space').spaceUsedSize - space(collections[i]!.afterGC, 'old_space').spaceUsedSize);
  const allocated = scavenges.reduce((sum, c) => sum + space(c.beforeGC, 'new_space').spaceUsedSize, 0);
  const grewAt = scavenges.flatMap((c, i) =>
    space(c.afterGC, 'new_space').spaceSize > space(c.beforeGC, 'new_space').spaceSize ? [`#${i + 1} → ${mib(space(c.afterGC, 'new_space').spaceSize)}`] : [],
  );
  console.log(
    `run: ${scavenges.length} scavenges, ${collections.length - scavenges.length} other collections; ~${Math.round(allocated / jobs)} B allocated young per job`,
  );
  console.log(`young generation grew at scavenge ${grewAt.join(', ') || '(never)'} (MiB)`);
  console.log(
    `per scavenge (median): ${mib(median(kept))} kept young, ${mib(median(promoted))} promoted, ${mib(median(between))} reached the old space between collections (MiB)`,
  );
}

const backlog = (count: number) => Array.from({ length: count }, (_, i) => encodeMessage('noop', [i, Date.now()]).data);
const schema = values.fill ?? `taskmill_heap_spaces_${process.pid}`;
let queue: BaseQueue;
if (values.postgres === undefined) {
  const memory = new MemoryQueue(`heap-spaces-${process.pid}`);
  await memory.writeBatch(backlog(jobs));
  queue = memory;
} else if (values.fill !== undefined) {
  const filling = new DatabaseQueue(values.postgres, { name: 'heap-spaces', schema });
  for (let i = 0; i < jobs; i += 1000) await filling.writeBatch(backlog(Math.min(1000, jobs - i)));
  await filling.close();
  process.exit(0);
} else {
  const args = [...process.execArgv, fileURLToPath(import.meta.url), '--jobs', String(jobs), '--postgres', values.postgres, '--fill', schema];
  const filled = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (filled.status !== 0) throw new Error(`writing the PostgreSQL backlog failed (exit ${filled.status ?? filled.signal})`);
  queue = new DatabaseQueue(values.postgres, { name: 'heap-spaces', schema });
  await queue.open();
}
const registry = new CommandRegistry();
let done = 0;
let finish!: () => void;
const finished = new Promise<void>((resolve) => (finish = resolve));
registry.register({
  name: 'noop',
  fn: () => {
    if (++done === jobs) finish();
    if (done === jobs / 2) report('half-way');
  },
  options: { name: 'noop', results: false },
  schedule: null,
  module: 'bench',
});
report('before');
const gcs = new v8.GCProfiler();
gcs.start();
const consumer = createConsumer({ queue, registry, workers: 10, prefetch: 500, periodic: false, logger: pino({ level: 'silent' }) });
await consumer.start();
await finished;
const collections = gcs.stop().statistics;
report('end');
reportCollections(collections);
await consumer.stop();
(globalThis as { gc?: () => void }).gc?.();
report('after gc');
await queue.close();
if (values.postgres !== undefined) {
  // Loaded last: its Redis client would widen the young generation before the run.
  const { dropSchema } = await import('./systems/cleanup.js');
  await dropSchema(values.postgres, schema);
}
