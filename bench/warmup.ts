/**
 * CPU per job over the life of one consumer: how much of a short run is the
 * JIT's warm-up. Runs each system's consumer in THIS process on a pre-loaded
 * backlog and prints its CPU per 1,000 jobs for each successive chunk of
 * jobs, so the first chunks (code still interpreted, the young generation
 * still growing) can be told from the steady state. The producer's preload
 * happens before the consumer starts and is not counted.
 *
 *   npx tsx bench/warmup.ts                                   # taskmill-redis, 40,000 jobs, chunks of 2,500
 *   npx tsx bench/warmup.ts --systems taskmill-memory,graphile-worker-batched --jobs 60000 --chunk 5000
 *
 * Not a throughput benchmark (npm run bench is): one process, one run, a
 * TypeScript loader in it. Read the chunks of one system against each other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { systemByKey } from './systems/index.js';
import type { BenchJob, SystemContext } from './systems/types.js';

const { values } = parseArgs({
  options: {
    systems: { type: 'string', default: 'taskmill-redis' },
    jobs: { type: 'string', default: '40000' },
    chunk: { type: 'string', default: '2500' },
    concurrency: { type: 'string', default: '10' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379/0' },
    postgres: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    /** Print `### first job <system>` and `### last job <system>` around the measured window (bench/jit.ts reads them). */
    markers: { type: 'boolean', default: false },
  },
});
const jobs = Number(values.jobs);
const chunk = Number(values.chunk);
if (!Number.isInteger(jobs) || !Number.isInteger(chunk) || chunk < 1 || jobs < chunk) throw new Error('--jobs and --chunk must be integers, jobs ≥ chunk ≥ 1');

const dir = mkdtempSync(path.join(tmpdir(), 'taskmill-warmup-'));
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

async function chunks(key: string): Promise<number[]> {
  const spec = systemByKey(key);
  const context: SystemContext = { namespace: `w${process.pid}`, queue: 'warmup', dir, redisUrl: values.redis, postgresUrl: values.postgres };
  const system = (await spec.load())(context);
  await system.setup();
  for (let i = 0; i < jobs; i += 1000) {
    const batch: BenchJob[] = Array.from({ length: Math.min(1000, jobs - i) }, (_, j) => ({ seq: i + j, sentAt: 0 }));
    if (system.enqueueBulk) await system.enqueueBulk(batch);
    else for (const job of batch) await system.enqueueOne(job);
  }
  const marks: number[] = [];
  let started = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const consumer = await system.startConsumer(Number(values.concurrency), () => {
    if (started === 0 && values.markers) process.stdout.write(`### first job ${key}\n`);
    if (started % chunk === 0) marks.push(cpuMs());
    if (++started === jobs) done();
  });
  await finished;
  marks.push(cpuMs());
  if (values.markers) process.stdout.write(`### last job ${key}\n`);
  await consumer.stop();
  await system.teardown();
  await system.destroy?.();
  return marks.slice(1).map((at, i) => ((at - marks[i]!) / Math.min(chunk, jobs - i * chunk)) * 1000);
}

console.log(`CPU ms per 1,000 jobs, chunk by chunk of ${chunk.toLocaleString('en-US')} jobs (${jobs.toLocaleString('en-US')} in all)`);
for (const key of values.systems.split(',')) {
  const perChunk = await chunks(key);
  const last = perChunk.slice(-Math.max(1, Math.floor(perChunk.length / 4)));
  const steady = last.reduce((a, b) => a + b, 0) / last.length;
  console.log(`${key}: ${perChunk.map((x) => x.toFixed(1)).join(' ')}  (last quarter ${steady.toFixed(1)})`);
}
rmSync(dir, { recursive: true, force: true });
process.exit(0);
