/**
 * One workload of one system, in a process of its own so its RSS and CPU are
 * the system's alone. Started by bench/run.ts (compiled to plain JS first:
 * a TypeScript loader would add its own RSS and seconds of startup):
 *
 *   node <compiled>/bench/child.js '<ChildTask as JSON>'
 *
 * Prints JSON lines on stdout: {"type":"loaded"} once its system's libraries
 * are loaded (then waits for "go" on stdin: the orchestrator prepares the
 * queue meanwhile), {"type":"ready"} once a latency consumer runs, then one
 * {"type":"result",…} (or {"type":"error","message"}), and exits. A
 * scale-out consumer, one of several on the same backlog, also prints
 * {"type":"progress","started"} every 10 ms while its count of started jobs
 * grows, and runs until "stop" arrives on stdin.
 */
import { readFileSync } from 'node:fs';
import { systemByKey } from './systems/index.js';
import { monotonicMs } from './systems/names.js';
import type { BenchJob, BenchSystem, SystemContext } from './systems/types.js';

export type ChildMode = 'enqueue' | 'process' | 'latency' | 'scaleout' | 'baseline';

export interface ChildTask {
  system: string;
  context: SystemContext;
  mode: ChildMode;
  /** Jobs to enqueue / process / measure. */
  n: number;
  /** Consumer concurrency (process, latency). */
  concurrency: number;
  /** Latency: warm-up jobs sent before the measured ones (negative seq), not counted. */
  warmup: number;
  /** Enqueue one by one: calls in flight at most. */
  inFlight: number;
  /** Bulk enqueue / preload: jobs per call. */
  batch: number;
  /** The child gives up after this long. */
  deadlineMs: number;
}

/** What the orchestrator does around one child (bench/run.ts runChild). */
export interface ChildHooks {
  /** Runs while the child loads its libraries; the child starts its workload once this resolves. */
  prepare?: () => Promise<void>;
  /** Runs when a latency consumer reports {"type":"ready"}. */
  onReady?: () => Promise<void>;
  /** A scale-out consumer's count of started jobs, as it grows. */
  onProgress?: (started: number) => void;
  /** A scale-out consumer runs until this resolves (it is then sent "stop"). */
  stop?: Promise<void>;
}

export interface EnqueueResult {
  type: 'result';
  oneJobsPerSec: number;
  oneCpuMsPer1000: number;
  bulkJobsPerSec: number | null;
  bulkCpuMsPer1000: number | null;
}

export interface ProcessResult {
  type: 'result';
  jobsPerSec: number;
  cpuMsPer1000: number;
  /** The kernel's part of cpuMsPer1000 (socket reads and writes, mostly). */
  sysCpuMsPer1000: number;
  peakRssMiB: number;
  elapsedMs: number;
  duplicates: number;
}

export interface LatencyResult {
  type: 'result';
  p50: number;
  p95: number;
  p99: number;
  max: number;
  cpuMsPer1000: number;
  peakRssMiB: number;
  duplicates: number;
}

export interface ScaleoutResult {
  type: 'result';
  /** Jobs this consumer started (a job started twice counts twice). */
  jobs: number;
  /** monotonicMs() of its first job's start; null if it got none. */
  firstStartAt: number | null;
  /** User + kernel CPU from its first job's start (or its consumer's start, if sooner) to "stop". */
  cpuMs: number;
  sysCpuMs: number;
  peakRssMiB: number;
}

export interface BaselineResult {
  type: 'result';
  peakRssMiB: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};
const systemCpuMs = (since: NodeJS.CpuUsage) => process.cpuUsage(since).system / 1000;
/**
 * Peak resident set size of this process image. Linux keeps ru_maxrss
 * (process.resourceUsage().maxRSS) across fork + exec, so it reports the
 * parent's RSS when that was larger; VmHWM belongs to this image alone.
 */
function peakRssMiB(): number {
  try {
    const hwm = /^VmHWM:\s*(\d+)\s*kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Number(hwm[1]) / 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS / 1024;
}

function emit(line: object): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify(line)}\n`, () => resolve()));
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

function makeJobs(from: number, count: number): BenchJob[] {
  return Array.from({ length: count }, (_, i) => ({ seq: from + i, sentAt: 0 }));
}

async function preload(system: BenchSystem, n: number, batch: number): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    const jobs = makeJobs(i, Math.min(batch, n - i));
    if (system.enqueueBulk) await system.enqueueBulk(jobs);
    else for (const job of jobs) await system.enqueueOne(job);
  }
}

/** Counts each measured job once; `done` resolves when all n have started. */
function tracker(n: number) {
  const seen = new Uint8Array(n);
  let distinct = 0;
  let duplicates = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  return {
    done,
    get duplicates() {
      return duplicates;
    },
    /** True the first time a measured seq is seen. */
    mark(seq: number): boolean {
      if (seq < 0 || seq >= n) return false;
      if (seen[seq]) {
        duplicates++;
        return false;
      }
      seen[seq] = 1;
      if (++distinct === n) resolveDone();
      return true;
    },
  };
}

async function runEnqueue(system: BenchSystem, task: ChildTask): Promise<EnqueueResult> {
  await system.setup();
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: task.inFlight }, async () => {
      while (next < task.n) {
        const seq = next++;
        await system.enqueueOne({ seq, sentAt: monotonicMs() });
      }
    }),
  );
  const oneMs = performance.now() - t0;
  const oneCpu = cpuMs(cpu0);
  const result: EnqueueResult = {
    type: 'result',
    oneJobsPerSec: (task.n / oneMs) * 1000,
    oneCpuMsPer1000: (oneCpu / task.n) * 1000,
    bulkJobsPerSec: null,
    bulkCpuMsPer1000: null,
  };
  if (system.enqueueBulk) {
    // A fresh, empty queue for the bulk half too.
    await system.teardown();
    await system.setup();
    const batches = [];
    for (let i = 0; i < task.n; i += task.batch) batches.push(makeJobs(i, Math.min(task.batch, task.n - i)));
    const cpu1 = process.cpuUsage();
    const t1 = performance.now();
    for (const jobs of batches) await system.enqueueBulk(jobs);
    const bulkMs = performance.now() - t1;
    result.bulkJobsPerSec = (task.n / bulkMs) * 1000;
    result.bulkCpuMsPer1000 = (cpuMs(cpu1) / task.n) * 1000;
  }
  return result;
}

async function runProcess(system: BenchSystem, task: ChildTask, inProcess: boolean): Promise<ProcessResult> {
  if (inProcess) {
    await system.setup();
    await preload(system, task.n, task.batch);
  }
  const track = tracker(task.n);
  // Timed from the first job's start, so connecting, schema checks and
  // migrations (which differ a lot between systems) are left out for all.
  let cpu0: NodeJS.CpuUsage | null = null;
  let t0 = 0;
  const consumer = await system.startConsumer(task.concurrency, (job) => {
    if (cpu0 === null) {
      cpu0 = process.cpuUsage();
      t0 = performance.now();
    }
    track.mark(job.seq);
  });
  await track.done;
  // …until the last job is completed in the backend (acked / deleted / marked done).
  while ((await system.pending()) > 0) await sleep(1);
  const elapsedMs = performance.now() - t0;
  const cpu = cpuMs(cpu0!);
  const sys = systemCpuMs(cpu0!);
  const result: ProcessResult = {
    type: 'result',
    jobsPerSec: (task.n / elapsedMs) * 1000,
    cpuMsPer1000: (cpu / task.n) * 1000,
    sysCpuMsPer1000: (sys / task.n) * 1000,
    peakRssMiB: peakRssMiB(),
    elapsedMs,
    duplicates: track.duplicates,
  };
  await consumer.stop();
  if (inProcess) await system.teardown();
  return result;
}

async function runLatency(system: BenchSystem, task: ChildTask): Promise<LatencyResult> {
  const track = tracker(task.n);
  const latencies = new Float64Array(task.n);
  let handled = 0;
  const consumer = await system.startConsumer(task.concurrency, (job) => {
    const startedAt = monotonicMs();
    handled++;
    if (track.mark(job.seq)) latencies[job.seq] = startedAt - job.sentAt;
  });
  const cpu0 = process.cpuUsage();
  await emit({ type: 'ready' });
  await track.done;
  const cpu = cpuMs(cpu0);
  latencies.sort();
  const result: LatencyResult = {
    type: 'result',
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1]!,
    cpuMsPer1000: (cpu / Math.max(1, handled)) * 1000,
    peakRssMiB: peakRssMiB(),
    duplicates: track.duplicates,
  };
  await consumer.stop();
  return result;
}

/**
 * Runs consumers from several processes on one backlog: each counts the jobs
 * it starts and reports the count, since none of them sees the whole; the
 * orchestrator says stop once the backlog is empty.
 */
async function runScaleout(system: BenchSystem, task: ChildTask, stopped: Promise<void>): Promise<ScaleoutResult> {
  let jobs = 0;
  let firstStartAt: number | null = null;
  let cpu0: NodeJS.CpuUsage | null = null;
  const consumer = await system.startConsumer(task.concurrency, () => {
    if (firstStartAt === null) {
      firstStartAt = monotonicMs();
      cpu0 ??= process.cpuUsage();
    }
    jobs++;
  });
  // A consumer that got no job yet still costs CPU while it asks for one.
  cpu0 ??= process.cpuUsage();
  let reported = 0;
  const progress = setInterval(() => {
    if (jobs === reported) return;
    reported = jobs;
    void emit({ type: 'progress', started: jobs });
  }, 10);
  await stopped;
  clearInterval(progress);
  const result: ScaleoutResult = {
    type: 'result',
    jobs,
    firstStartAt,
    cpuMs: cpuMs(cpu0),
    sysCpuMs: systemCpuMs(cpu0),
    peakRssMiB: peakRssMiB(),
  };
  await consumer.stop();
  return result;
}

/** Lines the orchestrator sends on stdin ("go", then "stop" for a scale-out consumer). */
function stdinLines(): (line: string) => Promise<void> {
  const seen = new Set<string>();
  const waiting = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  let ended = false;
  let input = '';
  const missing = (line: string) => new Error(`the orchestrator closed stdin without saying ${line}`);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    input += chunk;
    let newline;
    while ((newline = input.indexOf('\n')) >= 0) {
      const line = input.slice(0, newline).trim();
      input = input.slice(newline + 1);
      seen.add(line);
      waiting.get(line)?.resolve();
    }
  });
  process.stdin.on('end', () => {
    ended = true;
    for (const [line, waiter] of waiting) if (!seen.has(line)) waiter.reject(missing(line));
  });
  return (line) => {
    if (seen.has(line)) return Promise.resolve();
    if (ended) return Promise.reject(missing(line));
    return new Promise((resolve, reject) => waiting.set(line, { resolve, reject }));
  };
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '') as ChildTask;
  const deadline = setTimeout(() => {
    void emit({ type: 'error', message: `gave up after ${task.deadlineMs} ms` }).then(() => process.exit(2));
  }, task.deadlineMs);
  deadline.unref();
  if (task.mode === 'baseline') {
    await emit({ type: 'result', peakRssMiB: peakRssMiB() } satisfies BaselineResult);
    return;
  }
  const spec = systemByKey(task.system);
  const system = (await spec.load())(task.context);
  // The orchestrator sets up and preloads the queue while this process loads; it says go when done.
  const said = stdinLines();
  // Several consumers start on one backlog together: connected first, so the first to start gets no head start from the others' connecting.
  if (task.mode === 'scaleout') await system.setup();
  await emit({ type: 'loaded' });
  await said('go');
  let result: object;
  switch (task.mode) {
    case 'enqueue':
      result = await runEnqueue(system, task);
      await system.teardown();
      break;
    case 'process':
      result = await runProcess(system, task, spec.inProcess === true);
      break;
    case 'latency':
      result = await runLatency(system, task);
      break;
    case 'scaleout': {
      const stopped = said('stop');
      stopped.catch(() => {}); // awaited once the consumer runs; a closed stdin must not crash it before
      result = await runScaleout(system, task, stopped);
      break;
    }
  }
  await emit(result);
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    await emit({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  },
);
