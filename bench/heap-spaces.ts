/**
 * Where a consumer's memory goes under a backlog: V8's heap spaces before the
 * consumer starts, half-way through N pre-loaded no-op jobs (memory backend,
 * prefetch 100, 10 workers) and after the run. RSS here includes tsx's loader;
 * the space sizes are what explain the benchmark's peak RSS (bench/RESULTS.md,
 * "Profile findings").
 *
 *   node --expose-gc --import tsx bench/heap-spaces.ts [--jobs 20000]
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import pino from 'pino';
import { CommandRegistry, createConsumer, MemoryQueue } from '../src/index.js';
import { encodeMessage } from '../src/codec/message.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '20000' } } });
const jobs = Number(values.jobs);
const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
const SPACES = ['new_space', 'old_space', 'code_space', 'large_object_space'];

function report(label: string): void {
  const spaces = v8
    .getHeapSpaceStatistics()
    .filter((s) => SPACES.includes(s.space_name))
    .map((s) => `${s.space_name} ${mib(s.space_used_size)} used / ${mib(s.space_size)} reserved`);
  console.log(`${label.padEnd(8)} RSS ${mib(process.memoryUsage().rss)} MiB; ${spaces.join('; ')} (MiB)`);
}

const queue = new MemoryQueue(`heap-spaces-${process.pid}`);
await queue.writeBatch(Array.from({ length: jobs }, (_, i) => encodeMessage('noop', [i, Date.now()]).data));
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
const consumer = createConsumer({ queue, registry, workers: 10, prefetch: 100, periodic: false, logger: pino({ level: 'silent' }) });
await consumer.start();
await finished;
report('end');
await consumer.stop();
(globalThis as { gc?: () => void }).gc?.();
report('after gc');
