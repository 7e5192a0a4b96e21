/**
 * Consumer throughput in ONE process (handy under --cpu-prof; the
 * side-by-side bench with peers and per-process RSS/CPU is bench/run.ts,
 * `npm run bench`): N pre-loaded no-op jobs, one consumer in this
 * process with `workers` worker actors, timed until the last job is acked.
 * Backends run side by side in one process so the figures are comparable;
 * each is the median of `runs` runs, printed with its spread and as a ratio
 * against the memory backend (the actor system's own ceiling).
 *
 *   npx tsx bench/throughput.ts                       # 20,000 jobs, -t 10, memory + sqlite
 *   npx tsx bench/throughput.ts --jobs 50000 --workers 1 --runs 5 --backends memory,sqlite,redis,postgres
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { CommandRegistry, createConsumer, MemoryQueue, SqliteQueue, RedisQueue, RedisBlockingQueue, DatabaseQueue, type BaseQueue } from '../src/index.js';
import { encodeMessage } from '../src/codec/message.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    workers: { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    prefetch: { type: 'string', default: '0' },
    backends: { type: 'string', default: 'memory,sqlite' },
    full: { type: 'boolean', default: false },
  },
});
const jobs = Number(values.jobs);
const workers = Number(values.workers);
const runs = Number(values.runs);
const prefetch = Number(values.prefetch);
const backends = (values.full ? 'memory,sqlite,redis,redis-blocking,postgres' : values.backends).split(',');

const dir = mkdtempSync(path.join(tmpdir(), 'taskmill-bench-'));
let seq = 0;
function makeQueue(kind: string): BaseQueue {
  const name = `bench${process.pid}x${seq++}`;
  switch (kind) {
    case 'memory':
      return new MemoryQueue(name);
    case 'sqlite':
      return new SqliteQueue(path.join(dir, `${name}.sqlite`));
    case 'redis':
      return new RedisQueue('redis://127.0.0.1:6379/0', { name });
    case 'redis-blocking':
      return new RedisBlockingQueue('redis://127.0.0.1:6379/0', { name });
    case 'postgres':
      return new DatabaseQueue('postgres://postgres@127.0.0.1:5432/test', { name, schema: 'taskmill_bench' });
    default:
      throw new Error(`unknown backend ${kind}`);
  }
}

const registry = new CommandRegistry();
let remaining = 0;
let finished: (() => void) | null = null;
registry.register({
  name: 'noop',
  fn: () => {
    if (--remaining === 0) finished?.();
  },
  options: { name: 'noop' },
  schedule: null,
  module: 'bench',
});

async function preload(queue: BaseQueue, n: number): Promise<void> {
  const data = Array.from({ length: n }, (_, i) => encodeMessage('noop', [i]).data);
  const batchable = queue as BaseQueue & { writeBatch?: (d: readonly string[]) => Promise<string[]> };
  for (let i = 0; i < n; i += 1000) {
    const chunk = data.slice(i, i + 1000);
    if (batchable.writeBatch) await batchable.writeBatch(chunk);
    else for (const d of chunk) await queue.write(d);
  }
}

async function runOnce(kind: string): Promise<{ jobsPerSec: number; cpuMsPer1000: number }> {
  const queue = makeQueue(kind);
  await queue.open();
  await queue.flush();
  await preload(queue, jobs);
  remaining = jobs;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const consumer = createConsumer({
    queue,
    workers,
    registry,
    logger: pino({ level: 'silent' }),
    periodic: false,
    prefetch,
    pollDelayMs: 5,
    maxPollDelayMs: 50,
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await consumer.start();
  await done;
  // Count the time until the acks are written too.
  while ((await queue.stats()).leased > 0) await new Promise((r) => setTimeout(r, 1));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await consumer.stop();
  await queue.close();
  return { jobsPerSec: (jobs / ms) * 1000, cpuMsPer1000: ((cpu.user + cpu.system) / 1000 / jobs) * 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: { kind: string; med: number; min: number; max: number; cpu: number }[] = [];
for (const kind of backends) {
  await runOnce(kind).catch((e) => {
    throw new Error(`${kind}: ${(e as Error).message}`);
  }); // warm-up
  const results = [];
  for (let i = 0; i < runs; i++) results.push(await runOnce(kind));
  const rates = results.map((r) => r.jobsPerSec);
  rows.push({ kind, med: median(rates), min: Math.min(...rates), max: Math.max(...rates), cpu: median(results.map((r) => r.cpuMsPer1000)) });
}
rmSync(dir, { recursive: true, force: true });

const base = rows.find((r) => r.kind === 'memory')?.med;
console.log(`\n${jobs} no-op jobs, one consumer, ${workers} workers, prefetch ${prefetch}, median of ${runs} (node ${process.version})\n`);
console.log('| backend | jobs/s (median) | spread | CPU ms / 1000 jobs | ratio vs memory |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(
    `| ${r.kind} | ${Math.round(r.med).toLocaleString('en')} | ${Math.round(r.min).toLocaleString('en')}–${Math.round(r.max).toLocaleString('en')} | ${r.cpu.toFixed(1)} | ${base ? (r.med / base).toFixed(2) : '–'} |`,
  );
}
