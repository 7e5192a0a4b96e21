/**
 * What running commands in a pool buys and costs (docs/isolation.md), one
 * consumer in this process on a memory queue, so only the pool differs:
 *
 * - CPU-bound: `cpu-jobs` jobs that each busy-loop `cpu-ms` ms, on `workers`
 *   workers, inline (one event loop: they take turns) against threads (one
 *   thread per worker: they run at once), timed from the write of the batch
 *   to the last completion; speed-up = inline time / threads time.
 * - Overhead: `noop-jobs` no-op jobs on one worker, inline vs threads vs
 *   processes: jobs/s and what each pooled job costs on top of an inline one.
 *
 * Each consumer runs a warm-up batch first, so its threads or processes
 * exist before the clock starts; start() (one child per pool imports the
 * modules) is reported on its own.
 *
 *   npm run bench:pools                                   # 40 × 200 ms on -t 2; 2,000 no-ops (about 21 s here)
 *   npm run bench:pools -- --cpu-jobs 80 --cpu-ms 100 --workers 4 --noop-jobs 5000
 */
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import pino from 'pino';
import { MemoryQueue, createConsumer, jobEvents } from '../src/index.js';
import { encodeMessage } from '../src/codec/message.js';
import { burn, noop } from './pool-commands.js';

const { values } = parseArgs({
  options: {
    'cpu-jobs': { type: 'string', default: '40' },
    'cpu-ms': { type: 'string', default: '200' },
    workers: { type: 'string', default: '2' },
    'noop-jobs': { type: 'string', default: '2000' },
  },
});
const cpuJobs = Number(values['cpu-jobs']);
const cpuMs = Number(values['cpu-ms']);
const workers = Number(values.workers);
const noopJobs = Number(values['noop-jobs']);
type Pool = 'inline' | 'threads' | 'processes';

let seq = 0;
/** Runs `jobs` messages of `command` through a fresh consumer; ms from the write to the last ack, and start()'s ms. */
async function timed(pool: Pool, workerCount: number, command: string, args: unknown[], jobs: number): Promise<{ ms: number; startMs: number }> {
  const queue = new MemoryQueue(`bench-pools-${process.pid}-${seq++}`);
  const consumer = createConsumer({
    queue,
    workers: workerCount,
    pool,
    periodic: false,
    logger: pino({ level: 'silent' }),
    pollDelayMs: 5,
    maxPollDelayMs: 20,
  });
  const t0 = performance.now();
  await consumer.start();
  const startMs = performance.now() - t0;
  const run = async (n: number, name: string, a: unknown[]) => {
    let remaining = n;
    const done = new Promise<void>((resolve) => {
      const off = jobEvents.on('completed', () => {
        if (--remaining === 0) {
          off();
          resolve();
        }
      });
    });
    const data = Array.from({ length: n }, () => encodeMessage(name, a).data);
    const started = performance.now();
    for (let i = 0; i < n; i += 1000) await queue.writeBatch(data.slice(i, i + 1000));
    await done;
    while ((await queue.stats()).leased > 0) await new Promise((r) => setTimeout(r, 1));
    return performance.now() - started;
  };
  await run(workerCount * 4, noop.commandName, []); // warm-up: every worker's child exists
  const ms = await run(jobs, command, args);
  await consumer.stop();
  return { ms, startMs };
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });

console.log(`node ${process.version}, ${availableParallelism()} cores\n`);

const cpu: Record<string, { ms: number; startMs: number }> = {};
for (const pool of ['inline', 'threads'] as const) cpu[pool] = await timed(pool, workers, burn.commandName, [cpuMs], cpuJobs);
console.log(`CPU-bound: ${cpuJobs} jobs × ${cpuMs} ms busy loop, ${workers} workers (${fmt((cpuJobs * cpuMs) / 1000, 1)} s of CPU)\n`);
console.log('| pool | wall time | jobs/s | speed-up |');
console.log('| --- | ---: | ---: | ---: |');
for (const pool of ['inline', 'threads'] as const) {
  const { ms } = cpu[pool]!;
  console.log(`| ${pool} | ${fmt(ms / 1000, 2)} s | ${fmt((cpuJobs / ms) * 1000, 1)} | ${fmt(cpu.inline!.ms / ms, 2)}× |`);
}

console.log(`\nOverhead: ${fmt(noopJobs)} no-op jobs\n`);
console.log('| pool | workers | jobs/s | µs per job | added per job vs inline | start() |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const count of [...new Set([1, workers])]) {
  const overhead: Record<string, { ms: number; startMs: number }> = {};
  for (const pool of ['inline', 'threads', 'processes'] as const) overhead[pool] = await timed(pool, count, noop.commandName, [], noopJobs);
  const inlineUs = (overhead.inline!.ms * 1000) / noopJobs;
  for (const pool of ['inline', 'threads', 'processes'] as const) {
    const { ms, startMs } = overhead[pool]!;
    const us = (ms * 1000) / noopJobs;
    const added = us - inlineUs;
    console.log(
      `| ${pool} | ${count} | ${fmt((noopJobs / ms) * 1000)} | ${fmt(us)} | ${pool === 'inline' ? '–' : `${added >= 0 ? '+' : '−'}${fmt(Math.abs(added))} µs`} | ${fmt(startMs)} ms |`,
    );
  }
}
