/**
 * The scale-out workload: 1, 2, 4 … consumer processes (each `workers: 10`)
 * draining ONE pre-loaded backlog on the same queue, so what is measured is
 * how throughput grows with consumer processes on one server.
 *
 * All the consumers load and connect, then start together ("go" to every
 * child at once); throughput runs from the first job's start in any of them
 * to the backlog being empty (the orchestrator polls pending() every
 * millisecond once the children's counts add up to the backlog). CPU per 1,000 jobs is the sum
 * over the consumer processes. Because consumers and server share this
 * machine's cores, each row also says how much CPU the server used per
 * 1,000 jobs and how many of the machine's cores were busy: where the curve
 * bends, those say why.
 */
import { cpus } from 'node:os';
import type { ChildHooks, ChildMode, ChildTask } from './child.js';
import { machineTicks, serverCpu, serverMsBetween, type ServerSample } from './server-cpu.js';
import { monotonicMs } from './systems/names.js';
import type { BenchSystem, SystemContext, SystemSpec, Workload } from './systems/types.js';

const WORKERS = 10;

export interface ScaleoutDeps {
  /** Jobs in the backlog. */
  jobs: number;
  redisUrl: string;
  postgresUrl: string;
  contextFor(): SystemContext;
  preload(system: BenchSystem, n: number): Promise<void>;
  task(spec: SystemSpec, context: SystemContext, mode: ChildMode, n: number, concurrency: number): ChildTask;
  runChild(task: ChildTask, hooks: ChildHooks): Promise<Record<string, unknown>>;
}

/** The cell key of one system at one process count. */
export const scaleoutKey = (system: string, processes: number) => `${system}@${processes}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Sample {
  machine: ReturnType<typeof machineTicks>;
  server: ServerSample | null;
}

/** One scale-out measurement: `processes` consumer children on one fresh backlog. */
export async function measureScaleout(deps: ScaleoutDeps, spec: SystemSpec, processes: number): Promise<Record<string, unknown>> {
  const context = deps.contextFor();
  const system = (await spec.load())(context);
  const server = await serverCpu(spec.backend, deps);
  try {
    await system.setup();
    await deps.preload(system, deps.jobs);

    let loaded = 0;
    let everyoneLoaded!: () => void;
    const allLoaded = new Promise<void>((resolve) => (everyoneLoaded = resolve));
    const window: { before: Sample | null; after: Sample | null } = { before: null, after: null };
    // Every child waits here until the last has loaded: they start together.
    const go = allLoaded.then(async () => {
      window.before = { server: await server.sample(), machine: machineTicks() };
    });
    const started = new Array<number>(processes).fill(0);
    let everyJobStarted!: () => void;
    const allStarted = new Promise<void>((resolve) => (everyJobStarted = resolve));
    let sayStop!: () => void;
    const stop = new Promise<void>((resolve) => (sayStop = resolve));

    const children = Array.from({ length: processes }, (_, i) =>
      deps.runChild(deps.task(spec, context, 'scaleout', deps.jobs, WORKERS), {
        prepare: () => {
          if (++loaded === processes) everyoneLoaded();
          return go;
        },
        onProgress: (count) => {
          started[i] = count;
          if (started.reduce((a, b) => a + b, 0) >= deps.jobs) everyJobStarted();
        },
        stop,
      }),
    );
    const exitedEarly = Promise.all(children).then(() => {
      throw new Error('the consumers exited before the backlog was empty');
    });
    exitedEarly.catch(() => {}); // raced below; once the run is done it rejects unread

    let endAt = 0;
    let failure: unknown = null;
    try {
      await Promise.race([allStarted, exitedEarly]);
      while ((await system.pending()) > 0) await sleep(1);
      endAt = monotonicMs();
      window.after = { machine: machineTicks(), server: await server.sample() };
    } catch (error) {
      failure = error;
    } finally {
      sayStop();
    }
    const outcomes = await Promise.allSettled(children);
    if (failure !== null) throw failure instanceof Error ? failure : new Error(String(failure));
    const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (rejected) throw rejected.reason instanceof Error ? rejected.reason : new Error(String(rejected.reason));

    const results = outcomes.map((o) => (o as PromiseFulfilledResult<Record<string, unknown>>).value);
    const sum = (field: string) => results.reduce((total, r) => total + Number(r[field]), 0);
    const firsts = results.map((r) => r.firstStartAt).filter((t): t is number => typeof t === 'number');
    const elapsedMs = endAt - Math.min(...firsts);
    const per1000 = (ms: number) => (ms / deps.jobs) * 1000;
    const { before: b, after: a } = window;
    const machineBusyCores =
      b?.machine && a?.machine && a.machine.total > b.machine.total
        ? ((a.machine.busy - b.machine.busy) / (a.machine.total - b.machine.total)) * cpus().length
        : null;
    return {
      type: 'result',
      jobsPerSec: (deps.jobs / elapsedMs) * 1000,
      elapsedMs,
      cpuMsPer1000: per1000(sum('cpuMs')),
      sysCpuMsPer1000: per1000(sum('sysCpuMs')),
      serverCpuMsPer1000: b?.server && a?.server ? per1000(serverMsBetween(b.server, a.server)) : null,
      machineBusyCores,
      /** The busiest process's share of the jobs (1 / processes when even). */
      busiestShare: Math.max(...results.map((r) => Number(r.jobs))) / deps.jobs,
      peakRssMiB: Math.max(...results.map((r) => Number(r.peakRssMiB))),
      duplicates: sum('jobs') - deps.jobs,
    };
  } finally {
    await server.close().catch(() => {});
    await system.teardown().catch(() => {});
  }
}

/** `values` rotated left by `by`: each run starts the process counts at another place, so the server's warm-up hits none of them always. */
export function rotate<T>(values: readonly T[], by: number): T[] {
  const k = values.length === 0 ? 0 : by % values.length;
  return [...values.slice(k), ...values.slice(0, k)];
}

export interface ScaleoutReport {
  systems: readonly SystemSpec[];
  processes: readonly number[];
  jobs: number;
  has(workload: Workload, key: string): boolean;
  med(workload: Workload, key: string, field: string): number | null;
  cell(workload: Workload, key: string, field: string, digits?: number): string;
  table(header: string[], rows: string[][]): void;
  lines: string[];
}

/** The scale-out tables, one per backend, appended to `report.lines`. */
export function writeScaleoutSection(report: ScaleoutReport): void {
  const { systems, processes, med, cell, lines } = report;
  const measured = systems.filter((s) => processes.some((n) => report.has('scaleout', scaleoutKey(s.key, n))));
  if (measured.length === 0) return;
  const base = Math.min(...processes);
  const counts = [...processes].sort((a, b) => a - b);
  const cores = cpus().length;
  lines.push(
    `### Scale-out: ${report.jobs.toLocaleString('en-US')} pre-loaded no-op jobs, ${counts.join(', ')} consumer processes of \`workers: ${WORKERS}\` on one queue`,
    '',
    'The consumers load and connect, then start together; jobs/s from the first job’s start in any of them to the backlog being empty. ' +
      `Consumer CPU is summed over the consumer processes; server CPU is the Redis or PostgreSQL server’s own (all its processes), per 1,000 jobs; busy cores: of this machine’s ${cores}, from go to the backlog empty (everything on the machine counts). ` +
      `Busiest process: its share of the jobs (${counts.map((n) => `${Math.round(100 / n)} %`).join(' / ')} when even). ` +
      `÷ ${base}: the median against the same system’s ${base}-process median.`,
    '',
  );
  const ratio = (key: string, n: number, field: string) => {
    const x = med('scaleout', scaleoutKey(key, n), field);
    const y = med('scaleout', scaleoutKey(key, base), field);
    return x === null || y === null || y === 0 ? '–' : `${(x / y).toFixed(2)}×`;
  };
  for (const [backend, title] of [
    ['redis', 'Redis'],
    ['postgres', 'PostgreSQL'],
  ] as const) {
    const rows = measured.filter((s) => s.backend === backend);
    if (rows.length === 0) continue;
    lines.push(`#### ${title}`, '');
    report.table(
      [
        'system',
        'processes',
        'jobs/s',
        `÷ ${base}`,
        'consumer CPU ms/1k jobs',
        `÷ ${base}`,
        'server CPU ms/1k jobs',
        `busy cores (of ${cores})`,
        'busiest process',
      ],
      rows.flatMap((s) =>
        counts.map((n) => {
          const key = scaleoutKey(s.key, n);
          const share = med('scaleout', key, 'busiestShare');
          return [
            s.label,
            String(n),
            cell('scaleout', key, 'jobsPerSec'),
            ratio(s.key, n, 'jobsPerSec'),
            cell('scaleout', key, 'cpuMsPer1000', 1),
            ratio(s.key, n, 'cpuMsPer1000'),
            cell('scaleout', key, 'serverCpuMsPer1000', 1),
            cell('scaleout', key, 'machineBusyCores', 2),
            share === null ? '–' : `${Math.round(share * 100)} %`,
          ];
        }),
      ),
    );
  }
}
