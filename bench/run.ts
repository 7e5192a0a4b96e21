/**
 * taskmill side by side with BullMQ, graphile-worker and pg-boss: the same
 * workloads for every system in one run, on this machine's Redis and
 * PostgreSQL. Each consumer (and each enqueue workload) runs in a child
 * process of its own, so its RSS and CPU are its own.
 *
 *   npm run bench                      # quick: 1,500 / 1,000 / 300 jobs (scale-out 6,000), 3 runs
 *   npm run bench -- --full            # 20,000 / 20,000 / 2,000 jobs (scale-out 20,000), 3 runs → bench/RESULTS.md
 *   npm run bench -- --systems taskmill-redis,bullmq --workloads process10 --runs 5
 *   npm run bench -- --profile .tmp/prof --systems taskmill-redis --workloads process10
 *   npm run bench -- --systems taskmill-redis-blocking --workloads process10 --process-jobs 100000 --runs 1
 *   npm run bench -- --systems taskmill-postgres,taskmill-postgres-unique,taskmill-postgres-rateLimit
 *                                      # what a flow-control option costs (variants run only when named)
 *   npm run bench -- --systems taskmill-postgres,graphile-worker-batched,bullmq-postgres --workloads process10
 *   npm run bench -- --workloads scaleout                      # 1, 2, 4 consumer processes on one backlog
 *   npm run bench -- --workloads scaleout --scaleout 1,2,3,4 --scaleout-jobs 40000
 *
 * Quick runs write .tmp/bench-quick.md, full runs bench/RESULTS.md (or --out FILE).
 *
 * Workloads: enqueue (one call at a time, ≤ 100 in flight; and bulk, 1,000
 * per call), process1 / process10 (pre-loaded no-op jobs, timed from the
 * first job's start to the last job's completion in the backend), latency
 * (a steady 500 jobs/s into a running consumer at concurrency 10, enqueue
 * call → command start), scaleout (1, 2, 4 consumer processes of
 * concurrency 10 draining one pre-loaded backlog: bench/scaleout.ts). Runs
 * are interleaved across systems (run 1 of every system, then run 2, …) so a
 * change in the machine's load hits all alike; a scale-out run also starts
 * its process counts at a different place each run.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildHooks, ChildMode, ChildTask } from './child.js';
import { benchCommand } from './args.js';
import { compileForChildren } from './compile.js';
import { versions, writeReport, type Collected, type RunSettings } from './report.js';
import { measureScaleout, rotate, scaleoutKey } from './scaleout.js';
import { SYSTEMS } from './systems/index.js';
import { monotonicMs } from './systems/names.js';
import type { BenchSystem, SystemContext, SystemSpec, Workload } from './systems/types.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORKLOADS: readonly Workload[] = ['enqueue', 'process1', 'process10', 'latency', 'scaleout'];

const { values } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    runs: { type: 'string' },
    systems: { type: 'string' },
    workloads: { type: 'string' },
    out: { type: 'string' },
    profile: { type: 'string' },
    'process-jobs': { type: 'string' },
    'enqueue-jobs': { type: 'string' },
    'latency-jobs': { type: 'string' },
    'scaleout-jobs': { type: 'string' },
    scaleout: { type: 'string', default: '1,2,4' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379/0' },
    postgres: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  const onDemand = SYSTEMS.filter((s) => s.onDemand).map((s) => s.key);
  console.log(`npm run bench -- [options]

  --full                  20,000 / 20,000 / 2,000 jobs (scale-out 20,000) → bench/RESULTS.md; default: a quick run → .tmp/bench-quick.md
  --runs N                runs of each system and workload, interleaved (default 3)
  --systems A,B           systems to run (default: all but the on-demand variants)
  --workloads A,B         ${WORKLOADS.join(', ')} (default: all)
  --process-jobs N        jobs per process run (quick 1,500, full 20,000)
  --enqueue-jobs N        jobs per enqueue run (quick 1,000, full 20,000)
  --latency-jobs N        measured jobs per latency run (quick 300, full 2,000)
  --scaleout-jobs N       backlog per scale-out run (quick 6,000, full 20,000)
  --scaleout 1,2,4        consumer process counts of a scale-out run
  --profile DIR           write a CPU profile of every child process to DIR
  --out FILE              where the report goes
  --redis URL             default redis://127.0.0.1:6379/0
  --postgres URL          default postgres://postgres@127.0.0.1:5432/test

systems: ${SYSTEMS.filter((s) => !s.onDemand)
    .map((s) => s.key)
    .join(', ')}
on demand (run only when named): ${onDemand.join(', ')}

Also: bench/warmup.ts (CPU per job, chunk by chunk), bench/jit.ts (what V8's optimizing compiler costs a short run),
bench/redis-server-cost.ts (the Redis server's own time per job of a backlog).`);
  process.exit(0);
}

function list<T extends string>(value: string | undefined, known: readonly T[], what: string): T[] {
  if (!value) return [...known];
  const picked = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const p of picked) if (!known.includes(p as T)) throw new Error(`unknown ${what} "${p}"; known: ${known.join(', ')}`);
  return picked as T[];
}

function count(option: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${option} must be an integer ≥ 1, got ${value}`);
  return n;
}

function processCounts(value: string): number[] {
  const counts = value.split(',').map((s) => Number(s.trim()));
  if (counts.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1 || n > 16) || new Set(counts).size !== counts.length) {
    throw new Error(`--scaleout must list distinct process counts from 1 to 16, e.g. 1,2,4; got ${value}`);
  }
  return counts;
}

const settings: RunSettings = {
  mode: values.full ? 'full' : 'quick',
  processJobs: count('process-jobs', values['process-jobs'], values.full ? 20_000 : 1_500),
  enqueueJobs: count('enqueue-jobs', values['enqueue-jobs'], values.full ? 20_000 : 1_000),
  latencyJobs: count('latency-jobs', values['latency-jobs'], values.full ? 2_000 : 300),
  // More than process: a quick run's 1,500 jobs would take 4 consumers about as long as their start.
  scaleoutJobs: count('scaleout-jobs', values['scaleout-jobs'], values.full ? 20_000 : 6_000),
  scaleoutProcesses: processCounts(values.scaleout),
  latencyWarmup: 100,
  latencyRate: 500,
  runs: Number(values.runs ?? 3),
  inFlight: 100,
  batch: 1_000,
  command: benchCommand(process.argv.slice(2), process.env.NODE_OPTIONS),
  startedAt: new Date(),
  loadBefore: loadavg(),
  loadAfter: loadavg(),
  redisUrl: values.redis,
  postgresUrl: values.postgres,
};
if (!Number.isInteger(settings.runs) || settings.runs < 1) throw new Error(`--runs must be an integer ≥ 1, got ${values.runs}`);
const systems = (
  values.systems
    ? list(
        values.systems,
        SYSTEMS.map((s) => s.key),
        'system',
      )
    : SYSTEMS.filter((s) => !s.onDemand).map((s) => s.key)
).map((key) => SYSTEMS.find((s) => s.key === key)!);
const workloads = list(values.workloads, WORKLOADS, 'workload');
const outFile = values.out ?? (values.full ? path.join(root, 'bench', 'RESULTS.md') : path.join(root, '.tmp', 'bench-quick.md'));
const profileDir = values.profile ? path.resolve(values.profile) : null;

// One cache per checkout: two worktrees sharing one node_modules must not run each other's code.
const compiled = path.join(root, 'node_modules', '.cache', `taskmill-bench-${createHash('sha1').update(realpathSync(root)).digest('hex').slice(0, 8)}`);
const childScript = path.join(compiled, 'bench', 'child.js');
const namespace = `b${process.pid}`;
const scratch = mkdtempSync(path.join(tmpdir(), 'taskmill-bench-'));
let queueSeq = 0;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string) => process.stderr.write(`${line}\n`);

function contextFor(): SystemContext {
  return { namespace, queue: `q${++queueSeq}`, dir: scratch, redisUrl: settings.redisUrl, postgresUrl: settings.postgresUrl };
}

let childSeq = 0;

/** Runs one child process; resolves with its result line. */
function runChild(task: ChildTask, hooks: ChildHooks = {}): Promise<Record<string, unknown>> {
  const args = [
    ...(profileDir
      ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${task.system}-${task.mode}-c${task.concurrency}-${queueSeq}.${++childSeq}.cpuprofile`]
      : []),
    childScript,
    JSON.stringify(task),
  ];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let buffered = '';
  let result: Record<string, unknown> | null = null;
  let failure: string | null = null;
  const fail = (what: string) => (error: unknown) => {
    failure = `${what}: ${error instanceof Error ? error.message : String(error)}`;
    child.kill('SIGKILL');
  };
  const killer = setTimeout(() => child.kill('SIGKILL'), task.deadlineMs + 15_000);
  child.stdin.on('error', () => {}); // the child may exit before reading
  void hooks.stop?.then(() => child.stdin.end('stop\n'));
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let message: Record<string, unknown>;
        try {
          message = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // a library printing to stdout
        }
        if (message.type === 'loaded') {
          (hooks.prepare ?? (async () => {}))().then(() => (hooks.stop ? child.stdin.write('go\n') : child.stdin.end('go\n')), fail('setup'));
        } else if (message.type === 'ready') {
          hooks.onReady?.().catch(fail('producer'));
        } else if (message.type === 'progress') {
          hooks.onProgress?.(Number(message.started));
        } else if (message.type === 'result') result = message;
        else if (message.type === 'error') failure ??= String(message.message);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      if (result && !failure) resolve(result);
      else reject(new Error(failure ?? `child exited with ${signal ?? code}${stderr ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`));
    });
  });
}

function task(spec: SystemSpec, context: SystemContext, mode: ChildMode, n: number, concurrency: number): ChildTask {
  return {
    system: spec.key,
    context,
    mode,
    n,
    concurrency,
    warmup: settings.latencyWarmup,
    inFlight: settings.inFlight,
    batch: settings.batch,
    deadlineMs: settings.mode === 'full' ? 600_000 : 180_000,
  };
}

async function preload(system: BenchSystem, n: number): Promise<void> {
  for (let i = 0; i < n; i += settings.batch) {
    const jobs = Array.from({ length: Math.min(settings.batch, n - i) }, (_, k) => ({ seq: i + k, sentAt: 0 }));
    if (system.enqueueBulk) await system.enqueueBulk(jobs);
    else for (const job of jobs) await system.enqueueOne(job);
  }
}

/**
 * Sends warm-up + measured jobs at a steady rate, each stamped just before
 * its enqueue call, with at most `inFlight` calls outstanding (as in the
 * enqueue workload). Resolves with the rate achieved: a producer that cannot
 * keep up on a loaded machine falls behind, and the report shows it.
 */
async function produceSteadily(system: BenchSystem): Promise<number> {
  const { latencyWarmup: warmup, latencyJobs: n, latencyRate: rate, inFlight } = settings;
  const total = warmup + n;
  let outstanding = 0;
  let failure: unknown = null;
  let slotFreed: (() => void) | null = null;
  const start = performance.now();
  let sent = 0;
  while (sent < total && failure === null) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    while (sent < due && failure === null) {
      if (outstanding >= inFlight) {
        await new Promise<void>((resolve) => (slotFreed = resolve));
        continue;
      }
      const seq = sent < warmup ? -(sent + 1) : sent - warmup;
      sent++;
      outstanding++;
      system.enqueueOne({ seq, sentAt: monotonicMs() }).then(
        () => {
          outstanding--;
          slotFreed?.();
        },
        (error: unknown) => {
          failure ??= error;
          slotFreed?.();
        },
      );
    }
    await sleep(1);
  }
  const elapsed = performance.now() - start;
  while (outstanding > 0 && failure === null) await sleep(1);
  if (failure !== null) throw failure instanceof Error ? failure : new Error(String(failure));
  return (total / elapsed) * 1000;
}

async function measure(spec: SystemSpec, workload: Workload, processes: number): Promise<Record<string, unknown>> {
  if (workload === 'scaleout') {
    const deps = { jobs: settings.scaleoutJobs, redisUrl: settings.redisUrl, postgresUrl: settings.postgresUrl, contextFor, preload, task, runChild };
    return measureScaleout(deps, spec, processes);
  }
  const context = contextFor();
  const concurrency = workload === 'process1' ? 1 : 10;
  if (workload !== 'enqueue' && workload !== 'latency' && spec.inProcess) {
    return runChild(task(spec, context, 'process', settings.processJobs, concurrency));
  }
  const system = (await spec.load())(context);
  try {
    switch (workload) {
      case 'enqueue':
        return await runChild(task(spec, context, 'enqueue', settings.enqueueJobs, 1), { prepare: () => system.setup() });
      case 'process1':
      case 'process10':
        return await runChild(task(spec, context, 'process', settings.processJobs, concurrency), {
          prepare: async () => {
            await system.setup();
            await preload(system, settings.processJobs);
          },
        });
      case 'latency': {
        let sentPerSec = Number.NaN;
        const result = await runChild(task(spec, context, 'latency', settings.latencyJobs, 10), {
          prepare: () => system.setup(),
          onReady: async () => {
            // A consumer that has been idle a moment, as a running service's is, before jobs arrive.
            await sleep(250);
            sentPerSec = await produceSteadily(system);
          },
        });
        return { ...result, sentPerSec };
      }
    }
  } finally {
    await system.teardown().catch((error: unknown) => log(`  teardown of ${spec.key} failed: ${String(error)}`));
  }
}

async function main(): Promise<void> {
  const versionLine = await versions(root, settings);
  const compiledFiles = await compileForChildren(root, compiled);
  log(
    `bench (${settings.mode}): ${systems.length} systems × ${workloads.join(', ')} × ${settings.runs} runs; compiled ${compiledFiles} files for the children`,
  );
  const collected: Collected = { enqueue: {}, process1: {}, process10: {}, latency: {}, scaleout: {}, baselineRssMiB: null };
  try {
    collected.baselineRssMiB = Number((await runChild({ ...task(SYSTEMS[0]!, contextFor(), 'baseline', 0, 1) })).peakRssMiB);
    for (let run = 1; run <= settings.runs; run++) {
      for (const spec of systems) {
        for (const workload of workloads) {
          if (!spec.workloads.includes(workload)) continue;
          const variants = workload === 'scaleout' ? rotate(settings.scaleoutProcesses, run - 1) : [0];
          for (const processes of variants) {
            const key = workload === 'scaleout' ? scaleoutKey(spec.key, processes) : spec.key;
            const cell = (collected[workload][key] ??= { runs: [], errors: [] });
            const t0 = performance.now();
            try {
              cell.runs.push(await measure(spec, workload, processes));
              log(`run ${run}/${settings.runs} ${key} ${workload}: ${JSON.stringify(cell.runs.at(-1))} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
            } catch (error) {
              const message = error instanceof Error ? error.message : String(error);
              cell.errors.push(message);
              log(`run ${run}/${settings.runs} ${key} ${workload}: FAILED ${message}`);
            }
          }
        }
      }
    }
  } finally {
    for (const spec of systems) {
      const system = (await spec.load())(contextFor());
      await system.destroy?.().catch((error: unknown) => log(`cleanup of ${spec.key} failed: ${String(error)}`));
    }
    rmSync(scratch, { recursive: true, force: true });
  }
  settings.loadAfter = loadavg();
  const table = await writeReport(collected, settings, systems, outFile, versionLine);
  await new Promise((resolve) => process.stdout.write(`${table}\n`, resolve));
  log(`written to ${path.relative(root, outFile)}`);
}

await main();
process.exit(0); // a peer's client may keep a timer alive
