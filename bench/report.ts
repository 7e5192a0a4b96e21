/**
 * Turns the collected runs into markdown: the tables (median and spread of
 * the runs), the scale-out tables (bench/scaleout.ts), taskmill ÷ peer
 * ratios on the same backend, the targets of issues 6 and 21 marked met or
 * not, and the versions and command that produced them. The "## Profile
 * findings" section of an existing report is kept.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { writeScaleoutSection } from './scaleout.js';
import type { SystemSpec, Workload } from './systems/types.js';

export interface RunSettings {
  mode: 'quick' | 'full';
  processJobs: number;
  enqueueJobs: number;
  latencyJobs: number;
  scaleoutJobs: number;
  scaleoutProcesses: number[];
  latencyWarmup: number;
  latencyRate: number;
  runs: number;
  inFlight: number;
  batch: number;
  command: string;
  startedAt: Date;
  loadBefore: number[];
  loadAfter: number[];
  redisUrl: string;
  postgresUrl: string;
}

export interface Cell {
  runs: Record<string, unknown>[];
  errors: string[];
}

export type Collected = Record<Workload, Record<string, Cell>> & { baselineRssMiB: number | null };

interface Summary {
  median: number;
  min: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary | null {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  const median = xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
  return { median, min: xs[0]!, max: xs[xs.length - 1]! };
}

const PROFILE_HEADING = '## Profile findings';

export async function writeReport(
  collected: Collected,
  settings: RunSettings,
  systems: readonly SystemSpec[],
  outFile: string,
  versionLine: string,
): Promise<string> {
  const stat = (workload: Workload, key: string, field: string): Summary | null => {
    const cell = collected[workload][key];
    return cell ? summarize(cell.runs.map((r) => Number(r[field]))) : null;
  };
  const med = (workload: Workload, key: string, field: string) => stat(workload, key, field)?.median ?? null;
  const failed = (workload: Workload, key: string) => {
    const cell = collected[workload][key];
    return cell && cell.errors.length > 0 ? ` ⚠ ${cell.errors.length} failed` : '';
  };
  const fmt = (s: Summary | null, digits = 0) => {
    if (!s) return '–';
    const f = (v: number) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
    return s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
  };
  const cell = (workload: Workload, key: string, field: string, digits = 0) => `${fmt(stat(workload, key, field), digits)}${failed(workload, key)}`;

  const lines: string[] = [];
  const table = (header: string[], rows: string[][]) => {
    lines.push(`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`);
    for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
    lines.push('');
  };
  const has = (spec: SystemSpec, w: Workload) => spec.workloads.includes(w) && collected[w][spec.key] !== undefined;

  // A slice of the workloads (say, --workloads scaleout) prints only the tables it has figures for.
  const ran = (...ws: Workload[]) => systems.some((s) => ws.some((w) => has(s, w)));
  if (ran('process1', 'process10')) {
    lines.push(`### Process: ${settings.processJobs.toLocaleString('en-US')} pre-loaded no-op jobs, one consumer process`, '');
    lines.push(
      'jobs/s from the first job’s start to the last job’s completion in the backend; CPU = user + kernel time of the consumer process per 1,000 jobs (the kernel part is mostly socket I/O: round trips cost CPU, not only time); RSS = its peak over its life.',
      '',
    );
    table(
      ['system', 'c=1 jobs/s', 'c=1 CPU ms/1k jobs', 'c=10 jobs/s', 'c=10 CPU ms/1k jobs', 'c=10 of which kernel', 'c=10 peak RSS MiB'],
      systems
        .filter((s) => has(s, 'process1') || has(s, 'process10'))
        .map((s) => [
          s.label,
          cell('process1', s.key, 'jobsPerSec'),
          cell('process1', s.key, 'cpuMsPer1000', 1),
          cell('process10', s.key, 'jobsPerSec'),
          cell('process10', s.key, 'cpuMsPer1000', 1),
          cell('process10', s.key, 'sysCpuMsPer1000', 1),
          cell('process10', s.key, 'peakRssMiB', 1),
        ]),
    );
  }

  if (ran('enqueue')) {
    lines.push(`### Enqueue: ${settings.enqueueJobs.toLocaleString('en-US')} jobs`, '');
    lines.push(
      `One call at a time with up to ${settings.inFlight} in flight, and bulk (${settings.batch.toLocaleString('en-US')} jobs per call), from a producer process of its own.`,
      '',
    );
    table(
      ['system', 'one by one jobs/s', 'producer CPU ms/1k', 'bulk jobs/s', 'bulk CPU ms/1k'],
      systems
        .filter((s) => has(s, 'enqueue'))
        .map((s) => [
          s.label,
          cell('enqueue', s.key, 'oneJobsPerSec'),
          cell('enqueue', s.key, 'oneCpuMsPer1000', 1),
          cell('enqueue', s.key, 'bulkJobsPerSec'),
          cell('enqueue', s.key, 'bulkCpuMsPer1000', 1),
        ]),
    );
  }

  if (ran('latency')) {
    lines.push(
      `### Latency: ${settings.latencyJobs.toLocaleString('en-US')} jobs at a steady ${settings.latencyRate}/s into a running consumer, concurrency 10`,
      '',
    );
    lines.push(
      `Enqueue call → command start, ms (after ${settings.latencyWarmup} warm-up jobs at the same rate, not counted). sent/s: the rate the producer achieved. ` +
        `† the producer could not enqueue ${settings.latencyRate}/s one call at a time (at most ${settings.inFlight} in flight) on this machine: its own queueing is part of these latencies. ` +
        'A consumer slower than the arrival rate builds a backlog, and its latency grows with it.',
      '',
    );
    table(
      ['system', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'CPU ms/1k jobs', 'peak RSS MiB', 'sent/s'],
      systems
        .filter((s) => has(s, 'latency'))
        .map((s) => [
          (med('latency', s.key, 'sentPerSec') ?? settings.latencyRate) < 0.95 * settings.latencyRate ? `${s.label} †` : s.label,
          cell('latency', s.key, 'p50', 2),
          cell('latency', s.key, 'p95', 2),
          cell('latency', s.key, 'p99', 2),
          cell('latency', s.key, 'max', 1),
          cell('latency', s.key, 'cpuMsPer1000', 1),
          cell('latency', s.key, 'peakRssMiB', 1),
          cell('latency', s.key, 'sentPerSec'),
        ]),
    );
  }

  writeScaleoutSection({
    systems,
    processes: settings.scaleoutProcesses,
    jobs: settings.scaleoutJobs,
    has: (w, key) => collected[w][key] !== undefined,
    med,
    cell,
    table,
    lines,
  });

  // ── ratios ──────────────────────────────────────────────────────────────
  const present = (key: string) => systems.some((s) => s.key === key);
  const gwFaster = ['graphile-worker', 'graphile-worker-batched']
    .filter(present)
    .sort((a, b) => (med('process10', b, 'jobsPerSec') ?? 0) - (med('process10', a, 'jobsPerSec') ?? 0))[0];
  const gwFasterLabel = gwFaster ? systems.find((s) => s.key === gwFaster)!.label : '';
  const ratio = (w: Workload, field: string, a: string, b: string) => {
    // Enqueue figures of a consumer variant are its producer's.
    const enq = (k: string) => (w === 'enqueue' ? (systems.find((s) => s.key === k)?.enqueueSameAs ?? k) : k);
    const x = med(w, enq(a), field);
    const y = med(w, enq(b), field);
    return x === null || y === null || y === 0 ? null : x / y;
  };
  const r = (v: number | null) => (v === null ? '–' : `${v.toFixed(2)}×`);
  const pairs: [string, string][] = [
    ['taskmill-redis', 'bullmq'],
    ['taskmill-redis-blocking', 'bullmq'],
    ['taskmill-redis-results', 'bullmq-keep'],
    ...(gwFaster
      ? ([
          ['taskmill-postgres', gwFaster],
          ['taskmill-postgres-results', gwFaster],
        ] as [string, string][])
      : []),
    ['taskmill-postgres', 'bullmq-postgres'],
    ['taskmill-postgres-results', 'bullmq-postgres-keep'],
    ['taskmill-postgres', 'pg-boss'],
    ['taskmill-postgres-results', 'pg-boss'],
  ];
  const label = (key: string) => systems.find((s) => s.key === key)?.label ?? key;
  const ratioRows = pairs
    .filter(([a, b]) => present(a) && present(b))
    .map(([a, b]) => [
      label(a),
      label(b),
      r(ratio('process1', 'jobsPerSec', a, b)),
      r(ratio('process10', 'jobsPerSec', a, b)),
      r(ratio('enqueue', 'oneJobsPerSec', a, b)),
      r(ratio('enqueue', 'bulkJobsPerSec', a, b)),
      r(ratio('latency', 'p99', a, b)),
      r(ratio('process10', 'cpuMsPer1000', a, b)),
      r(ratio('process10', 'peakRssMiB', a, b)),
    ])
    .filter((row) => row.slice(2).some((v) => v !== '–'));
  if (ratioRows.length > 0) {
    lines.push('### taskmill ÷ peer, same backend (medians)', '');
    lines.push(
      `Throughput: above 1× is taskmill faster. Latency, CPU, RSS: below 1× is taskmill better. graphile-worker is compared in its faster configuration (${gwFasterLabel || '–'}).`,
      '',
    );
    table(['taskmill', 'peer', 'process c=1', 'process c=10', 'enqueue one by one', 'enqueue bulk', 'latency p99', 'CPU/1k c=10', 'RSS c=10'], ratioRows);
  }

  // ── targets (issue 6, item 2; issue 21, which raised its bars) ──────────
  const targets: [string, string, boolean | null][] = [];
  const judge = (v: number | null, ok: (v: number) => boolean) => (v === null ? null : ok(v));
  const n0 = (v: number | null) => (v === null ? '–' : Math.round(v).toLocaleString('en-US'));
  const n2 = (v: number | null) => (v === null ? '–' : v.toFixed(2));
  for (const [tm, peer, times] of [
    ['taskmill-redis', 'bullmq', 2.5],
    ['taskmill-redis-blocking', 'bullmq', 2.5],
    ['taskmill-redis-results', 'bullmq-keep', 2],
  ] as const) {
    const v = ratio('process10', 'jobsPerSec', tm, peer);
    targets.push([
      `Redis, process c=10: ${label(tm)} ≥ ${times}× ${label(peer)}`,
      `${n0(med('process10', tm, 'jobsPerSec'))} vs ${n0(med('process10', peer, 'jobsPerSec'))} jobs/s = ${r(v)}`,
      judge(v, (x) => x >= times),
    ]);
  }
  if (gwFaster) {
    const v = ratio('process10', 'jobsPerSec', 'taskmill-postgres', gwFaster);
    targets.push([
      `PostgreSQL, process c=10: taskmill ≥ 2× ${gwFasterLabel}`,
      `${n0(med('process10', 'taskmill-postgres', 'jobsPerSec'))} vs ${n0(med('process10', gwFaster, 'jobsPerSec'))} jobs/s = ${r(v)}`,
      judge(v, (x) => x >= 2),
    ]);
  }
  if (present('bullmq-postgres')) {
    const v = ratio('process10', 'jobsPerSec', 'taskmill-postgres', 'bullmq-postgres');
    targets.push([
      'PostgreSQL, process c=10: taskmill ≥ 2× BullMQ on PostgreSQL (issue 21)',
      `${n0(med('process10', 'taskmill-postgres', 'jobsPerSec'))} vs ${n0(med('process10', 'bullmq-postgres', 'jobsPerSec'))} jobs/s = ${r(v)}`,
      judge(v, (x) => x >= 2),
    ]);
  }
  for (const tm of ['taskmill-redis', 'taskmill-redis-blocking']) {
    const v = ratio('enqueue', 'oneJobsPerSec', tm, 'bullmq');
    targets.push([
      `Enqueue one by one, Redis: ${label(tm)} ≥ BullMQ`,
      `${n0(med('enqueue', tm, 'oneJobsPerSec'))} vs ${n0(med('enqueue', 'bullmq', 'oneJobsPerSec'))} jobs/s = ${r(v)}`,
      judge(v, (x) => x >= 1),
    ]);
  }
  {
    const v = ratio('enqueue', 'oneJobsPerSec', 'taskmill-postgres', 'graphile-worker');
    targets.push([
      'Enqueue one by one, PostgreSQL: taskmill ≥ 10× graphile-worker',
      `${n0(med('enqueue', 'taskmill-postgres', 'oneJobsPerSec'))} vs ${n0(med('enqueue', 'graphile-worker', 'oneJobsPerSec'))} jobs/s = ${r(v)}`,
      judge(v, (x) => x >= 10),
    ]);
  }
  const bestP99 = (keys: string[]) => {
    const found = keys.map((k) => [k, med('latency', k, 'p99')] as const).filter((e): e is readonly [string, number] => e[1] !== null);
    return found.sort((a, b) => a[1] - b[1])[0] ?? null;
  };
  for (const [tms, peers] of [
    [['taskmill-redis', 'taskmill-redis-blocking'], ['bullmq']],
    [['taskmill-postgres'], ['graphile-worker', 'graphile-worker-batched', 'pg-boss', 'bullmq-postgres']],
  ] as const) {
    const best = bestP99([...peers]);
    for (const tm of tms) {
      const v = med('latency', tm, 'p99');
      targets.push([
        `Latency p99 at ${settings.latencyRate}/s: ${label(tm)} ≤ best peer`,
        `${n2(v)} ms vs ${best ? `${n2(best[1])} ms (${label(best[0])})` : '–'}`,
        best ? judge(v, (x) => x <= best[1]) : null,
      ]);
    }
  }
  {
    const v = med('process10', 'taskmill-memory', 'jobsPerSec');
    targets.push([
      'Memory backend, process c=10: ≥ 100,000 jobs/s',
      `${n0(v)} jobs/s (c=1: ${n0(med('process1', 'taskmill-memory', 'jobsPerSec'))})`,
      judge(v, (x) => x >= 100_000),
    ]);
  }
  // CPU: ≤ 20 ms per 1,000 jobs on memory, SQLite and Redis; on PostgreSQL no more than graphile-worker's.
  const gwCpu = gwFaster ? med('process10', gwFaster, 'cpuMsPer1000') : null;
  for (const s of systems.filter((x) => x.family === 'taskmill' && x.workloads.includes('process10'))) {
    const rss = med('process10', s.key, 'peakRssMiB');
    const cpu = med('process10', s.key, 'cpuMsPer1000');
    targets.push([`${s.label}, process c=10: peak RSS ≤ 80 MiB`, `${n2(rss)} MiB`, judge(rss, (x) => x <= 80)]);
    if (s.backend !== 'postgres') targets.push([`${s.label}, process c=10: ≤ 20 CPU ms / 1,000 jobs`, `${n2(cpu)} ms`, judge(cpu, (x) => x <= 20)]);
    else if (gwCpu !== null) {
      targets.push([`${s.label}, process c=10: CPU per 1,000 jobs ≤ ${gwFasterLabel}'s`, `${n2(cpu)} vs ${n2(gwCpu)} ms`, judge(cpu, (x) => x <= gwCpu)]);
    }
  }
  const tablesMarkdown = lines.join('\n');
  const targetLines = ['## Targets (issue 6, item 2; issue 21)', '', '| target | figure (medians) | met? |', '| --- | --- | --- |'];
  if (targets.every(([, , met]) => met === null)) targetLines.splice(2, 2, '_No target’s workloads ran in this run._');
  else for (const [what, figure, met] of targets) targetLines.push(`| ${what} | ${figure} | ${met === null ? 'no data' : met ? 'met' : '**not met**'} |`);
  targetLines.push('');

  const notes = [
    '## Setup and method',
    '',
    ...systems.filter((s) => s.note).map((s) => `- **${s.label}**: ${s.note}`),
    '- **taskmill** consumers: `createConsumer({ workers: c, prefetch: 500, logger: pino silent, periodic: false })`, other options default (polling backends keep their default poll delay of 100 ms with backoff); the no-op command has `results: false` unless the row says results on. Producer: `queueCommand` one by one, `queue.writeBatch` of encoded envelopes in bulk.',
    '- Every consumer and every producer runs in a child process of its own, plain Node on JavaScript transpiled from the sources (no TypeScript loader in the measured process). ' +
      `A bare child process of this harness peaks at ${collected.baselineRssMiB === null ? '–' : collected.baselineRssMiB.toFixed(1)} MiB RSS: the floor under every RSS figure.`,
    '- Each figure is the median of the runs with (min–max); runs are interleaved across systems. Process timing starts at the first job’s start (connecting, migrations and schema checks are left out for every system) and ends when the backend reports no job waiting or running.',
    '- Latency is measured on the monotonic clock shared by all processes (process.hrtime), stamped immediately before the producer’s enqueue call and read as the command starts. The latency producer runs in the orchestrating process, one enqueue call per job through each system’s ordinary single-job API.',
    '',
  ];

  const header = [
    `# Benchmark results (${settings.mode})`,
    '',
    `- date: ${settings.startedAt.toISOString()}`,
    `- command: \`${settings.command}\``,
    `- jobs: process ${settings.processJobs.toLocaleString('en-US')}, enqueue ${settings.enqueueJobs.toLocaleString('en-US')}, latency ${settings.latencyJobs.toLocaleString('en-US')} at ${settings.latencyRate}/s, scale-out ${settings.scaleoutJobs.toLocaleString('en-US')} over ${settings.scaleoutProcesses.join(', ')} processes; ${settings.runs} runs each`,
    `- machine: ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}; load average (1/5/15 min) ${settings.loadBefore.map((x) => x.toFixed(2)).join(' / ')} at the start, ${settings.loadAfter.map((x) => x.toFixed(2)).join(' / ')} at the end (shared machine: figures are comparable within this run, not across machines)`,
    `- ${versionLine}`,
    '',
  ];

  let profile = `${PROFILE_HEADING}\n\n_Not yet written: what \`--cpu-prof\` shows about the taskmill consumer's hot path, and the cause of each target not met._\n`;
  if (existsSync(outFile)) {
    const previous = readFileSync(outFile, 'utf8');
    const at = previous.indexOf(`\n${PROFILE_HEADING}`);
    if (at >= 0) profile = previous.slice(at + 1);
  }
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, [...header, '## Results', '', tablesMarkdown, targetLines.join('\n'), notes.join('\n'), profile].join('\n'));
  return [tablesMarkdown, targetLines.join('\n')].join('\n');
}

/** Versions of Node, taskmill (commit, and whether src/ had uncommitted changes), the peers, their clients and the servers. Call it before the run: the children run the sources as they were then. */
export async function versions(root: string, settings: RunSettings): Promise<string> {
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  const own = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  let commit = '?';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root, encoding: 'utf8' }).trim()) commit += ' + uncommitted changes in src/';
  } catch {
    /* not a git checkout */
  }
  let redisVersion = '?';
  const redis = new Redis(settings.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
  } catch {
    /* reported as ? */
  } finally {
    redis.disconnect();
  }
  let postgresVersion = '?';
  const client = new pg.Client({ connectionString: settings.postgresUrl });
  client.on('error', () => {});
  try {
    await client.connect();
    postgresVersion = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  } catch {
    /* reported as ? */
  } finally {
    await client.end().catch(() => {});
  }
  return [
    `versions: Node ${process.version}, taskmill ${own} (${commit}), BullMQ ${pkg('bullmq')}, graphile-worker ${pkg('graphile-worker')}, pg-boss ${pkg('pg-boss')}`,
    `ioredis ${pkg('ioredis')}, pg ${pkg('pg')}, better-sqlite3 ${pkg('better-sqlite3')}, xstate ${pkg('xstate')}; Redis ${redisVersion}, PostgreSQL ${postgresVersion}`,
  ].join('; ');
}
