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
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { ChildHooks, ChildMode, ChildTask } from './child.js';
import { monotonicMs } from './systems/names.js';
import type { Backend, BenchSystem, SystemContext, SystemSpec, Workload } from './systems/types.js';

const WORKERS = 10;
/** /proc reports CPU time in USER_HZ ticks: 100 per second on every Linux ABI. */
const TICKS_PER_SECOND = 100;

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

/** Busy and total CPU ticks of the whole machine (/proc/stat), or null where there is none. */
function machineTicks(): { busy: number; total: number } | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait };
  } catch {
    return null;
  }
}

/** ppid and user + system ticks of a process, from /proc/<pid>/stat (its name may hold spaces and parentheses). */
function processTicks(pid: number): { ppid: number; ticks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null; // gone, or not Linux
  }
}

/** CPU ms used so far, per server process (one entry for Redis). */
type ServerSample = Map<number, number>;

interface Sample {
  machine: ReturnType<typeof machineTicks>;
  server: ServerSample | null;
}

interface ServerCpu {
  /** The server's CPU time so far; null when it cannot be read. */
  sample(): Promise<ServerSample | null>;
  close(): Promise<void>;
}

/**
 * CPU ms the server used between two samples, process by process: a backend
 * that exits between them (another client of a shared server disconnecting)
 * must not subtract its whole life from the sum. One that started between
 * them counts from zero; one that exited takes its last share with it.
 */
function serverMsBetween(before: ServerSample, after: ServerSample): number {
  let ms = 0;
  for (const [pid, used] of after) {
    const earlier = before.get(pid);
    ms += earlier !== undefined && used >= earlier ? used - earlier : used;
  }
  return ms;
}

/**
 * The CPU the server at the bench's URL has used. Redis says so itself
 * (INFO cpu). PostgreSQL runs a process per connection: the postmaster
 * (the parent of our own backend) and its children are summed from /proc,
 * so it is known only for a server on this machine. Either way it is the
 * whole server's: on a shared server, other clients' work counts too.
 */
async function serverCpu(backend: Backend, deps: ScaleoutDeps): Promise<ServerCpu> {
  if (backend === 'redis') {
    const redis = new Redis(deps.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    await redis.connect();
    return {
      async sample() {
        const info = await redis.info('cpu');
        const seconds = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
        const ms = (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1000;
        return Number.isFinite(ms) ? new Map([[0, ms]]) : null;
      },
      close: async () => void redis.disconnect(),
    };
  }
  if (backend === 'postgres') {
    const client = new pg.Client({ connectionString: deps.postgresUrl });
    client.on('error', () => {});
    await client.connect();
    const ownPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const postmaster = processTicks(ownPid)?.ppid ?? null;
    return {
      async sample() {
        if (postmaster === null) return null;
        const used: ServerSample = new Map();
        for (const entry of readdirSync('/proc')) {
          if (!/^\d+$/.test(entry)) continue;
          const pid = Number(entry);
          const p = processTicks(pid);
          if (p && (pid === postmaster || p.ppid === postmaster)) used.set(pid, (p.ticks / TICKS_PER_SECOND) * 1000);
        }
        return used;
      },
      close: () => client.end(),
    };
  }
  return { sample: async () => null, close: async () => {} };
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
