/**
 * The bench report from made-up runs (no servers, no child processes): BullMQ
 * on PostgreSQL is a peer of taskmill PostgreSQL in the ratio table and the
 * issue 21 target, and the scale-out workload prints a table per backend with
 * each process count against one process.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeReport, type Cell, type Collected, type RunSettings } from '../../bench/report.js';
import { rotate, scaleoutKey } from '../../bench/scaleout.js';
import { SYSTEMS, systemByKey } from '../../bench/systems/index.js';
import { tempDir } from '../helpers/processes.js';

const settings = (): RunSettings => ({
  mode: 'quick',
  processJobs: 100,
  enqueueJobs: 100,
  latencyJobs: 10,
  scaleoutJobs: 1_000,
  scaleoutProcesses: [1, 2, 4],
  latencyWarmup: 1,
  latencyRate: 500,
  runs: 1,
  inFlight: 100,
  batch: 1_000,
  command: 'npm run bench -- (test)',
  startedAt: new Date(0),
  loadBefore: [0, 0, 0],
  loadAfter: [0, 0, 0],
  redisUrl: 'redis://127.0.0.1:1/0',
  postgresUrl: 'postgres://nobody@127.0.0.1:1/none',
});

const ok = (...runs: Record<string, unknown>[]): Cell => ({ runs, errors: [] });
const empty = (): Collected => ({ enqueue: {}, process1: {}, process10: {}, latency: {}, scaleout: {}, baselineRssMiB: 40 });
const systems = (...keys: string[]) => keys.map(systemByKey);
const row = (markdown: string, ...start: string[]) => markdown.split('\n').find((line) => line.startsWith(`| ${start.join(' | ')} |`));

describe('bench systems', () => {
  it('BullMQ on PostgreSQL runs every workload, its keep-completed variant process c=10, both on PostgreSQL by default', () => {
    expect(systemByKey('bullmq-postgres')).toMatchObject({ backend: 'postgres', family: 'bullmq' });
    expect(systemByKey('bullmq-postgres').onDemand).toBeFalsy();
    expect(systemByKey('bullmq-postgres').workloads).toEqual(['enqueue', 'process1', 'process10', 'latency']);
    expect(systemByKey('bullmq-postgres-keep')).toMatchObject({ backend: 'postgres', workloads: ['process10'] });
  });

  it('scale-out runs on one Redis and one PostgreSQL system by default', () => {
    expect(SYSTEMS.filter((s) => !s.onDemand && s.workloads.includes('scaleout')).map((s) => s.key)).toEqual(['taskmill-redis', 'taskmill-postgres']);
  });

  it('each run starts the process counts at another place', () => {
    expect([0, 1, 2, 3].map((run) => rotate([1, 2, 4], run))).toEqual([
      [1, 2, 4],
      [2, 4, 1],
      [4, 1, 2],
      [1, 2, 4],
    ]);
  });
});

describe('bench report', () => {
  const dir = tempDir('taskmill-bench-report-');

  it('compares taskmill PostgreSQL with BullMQ on PostgreSQL and judges the issue 21 target', async () => {
    const collected = empty();
    collected.process10['taskmill-postgres'] = ok(
      { jobsPerSec: 4_000, cpuMsPer1000: 100, peakRssMiB: 90 },
      { jobsPerSec: 5_000, cpuMsPer1000: 100, peakRssMiB: 90 },
    );
    collected.process10['bullmq-postgres'] = ok({ jobsPerSec: 1_500, cpuMsPer1000: 200, peakRssMiB: 80 });
    collected.process10['taskmill-postgres-results'] = ok({ jobsPerSec: 3_000, cpuMsPer1000: 120, peakRssMiB: 90 });
    collected.process10['bullmq-postgres-keep'] = ok({ jobsPerSec: 2_000, cpuMsPer1000: 150, peakRssMiB: 80 });
    collected.enqueue['taskmill-postgres'] = ok({ oneJobsPerSec: 2_000, bulkJobsPerSec: 40_000 });
    collected.enqueue['bullmq-postgres'] = ok({ oneJobsPerSec: 1_000, bulkJobsPerSec: 50_000 });
    const out = path.join(dir, 'peer.md');
    const markdown = await writeReport(
      collected,
      settings(),
      systems('taskmill-postgres', 'taskmill-postgres-results', 'bullmq-postgres', 'bullmq-postgres-keep'),
      out,
      'versions: test',
    );
    expect(readFileSync(out, 'utf8')).toContain(markdown);

    // Median of 4,000 and 5,000 is 4,500: 3.00× BullMQ's 1,500.
    expect(row(markdown, 'taskmill PostgreSQL', 'BullMQ on PostgreSQL')).toBe(
      '| taskmill PostgreSQL | BullMQ on PostgreSQL | – | 3.00× | 2.00× | 0.80× | – | 0.50× | 1.13× |',
    );
    expect(row(markdown, 'taskmill PostgreSQL, results on', 'BullMQ on PostgreSQL, keeps completed')).toContain('| 1.50× |');
    expect(row(markdown, 'PostgreSQL, process c=10: taskmill ≥ 2× BullMQ on PostgreSQL (issue 21)')).toBe(
      '| PostgreSQL, process c=10: taskmill ≥ 2× BullMQ on PostgreSQL (issue 21) | 4,500 vs 1,500 jobs/s = 3.00× | met |',
    );
    // Only the workloads that ran get a table.
    expect(markdown).toContain('### Process:');
    expect(markdown).not.toContain('### Latency:');
    expect(markdown).not.toContain('### Scale-out:');
  });

  it('says not met below 2×', async () => {
    const collected = empty();
    collected.process10['taskmill-postgres'] = ok({ jobsPerSec: 2_900 });
    collected.process10['bullmq-postgres'] = ok({ jobsPerSec: 1_500 });
    const markdown = await writeReport(collected, settings(), systems('taskmill-postgres', 'bullmq-postgres'), path.join(dir, 'not-met.md'), 'versions: test');
    expect(row(markdown, 'PostgreSQL, process c=10: taskmill ≥ 2× BullMQ on PostgreSQL (issue 21)')).toContain('= 1.93× | **not met** |');
  });

  it("judges issue 21's bars: Redis 2.5× BullMQ, results on 2×, CPU ≤ 20 ms, PostgreSQL's CPU against graphile-worker's", async () => {
    const collected = empty();
    collected.process10['taskmill-redis'] = ok({ jobsPerSec: 24_000, cpuMsPer1000: 19 });
    collected.process10['bullmq'] = ok({ jobsPerSec: 10_000, cpuMsPer1000: 40 });
    collected.process10['taskmill-redis-results'] = ok({ jobsPerSec: 20_000, cpuMsPer1000: 21 });
    collected.process10['bullmq-keep'] = ok({ jobsPerSec: 9_000, cpuMsPer1000: 45 });
    collected.process10['taskmill-postgres'] = ok({ jobsPerSec: 30_000, cpuMsPer1000: 25 });
    collected.process10['graphile-worker-batched'] = ok({ jobsPerSec: 30_000, cpuMsPer1000: 20 });
    const keys = ['taskmill-redis', 'bullmq', 'taskmill-redis-results', 'bullmq-keep', 'taskmill-postgres', 'graphile-worker-batched'];
    const markdown = await writeReport(collected, settings(), systems(...keys), path.join(dir, 'bars.md'), 'versions: test');
    expect(row(markdown, 'Redis, process c=10: taskmill Redis ≥ 2.5× BullMQ')).toContain('= 2.40× | **not met** |');
    expect(row(markdown, 'Redis, process c=10: taskmill Redis, results on ≥ 2× BullMQ, keeps completed')).toContain('= 2.22× | met |');
    expect(row(markdown, 'taskmill Redis, process c=10: ≤ 20 CPU ms / 1,000 jobs')).toContain('| 19.00 ms | met |');
    expect(row(markdown, 'taskmill Redis, results on, process c=10: ≤ 20 CPU ms / 1,000 jobs')).toContain('| 21.00 ms | **not met** |');
    expect(row(markdown, "taskmill PostgreSQL, process c=10: CPU per 1,000 jobs ≤ graphile-worker, batched's")).toContain(
      '| 25.00 vs 20.00 ms | **not met** |',
    );
  });

  it('prints a scale-out table per backend, each process count against one process', async () => {
    const collected = empty();
    const result = (jobsPerSec: number, cpuMsPer1000: number, busiestShare: number) => ({
      jobsPerSec,
      cpuMsPer1000,
      serverCpuMsPer1000: 30,
      machineBusyCores: 1.5,
      busiestShare,
    });
    collected.scaleout[scaleoutKey('taskmill-redis', 1)] = ok(result(10_000, 100, 1));
    collected.scaleout[scaleoutKey('taskmill-redis', 2)] = ok(result(15_000, 110, 0.5));
    collected.scaleout[scaleoutKey('taskmill-redis', 4)] = ok(result(12_000, 150, 0.3));
    collected.scaleout[scaleoutKey('taskmill-postgres', 1)] = ok(result(8_000, 120, 1));
    collected.scaleout[scaleoutKey('taskmill-postgres', 2)] = ok(result(12_000, 130, 0.52));
    collected.scaleout[scaleoutKey('taskmill-postgres', 4)] = { runs: [], errors: ['a consumer died'] };
    const markdown = await writeReport(collected, settings(), systems('taskmill-redis', 'taskmill-postgres'), path.join(dir, 'scaleout.md'), 'versions: test');

    expect(markdown).toContain('### Scale-out: 1,000 pre-loaded no-op jobs, 1, 2, 4 consumer processes of `workers: 10` on one queue');
    const redis = markdown.slice(markdown.indexOf('#### Redis'), markdown.indexOf('#### PostgreSQL'));
    expect(row(redis, 'taskmill Redis', '1')).toBe('| taskmill Redis | 1 | 10,000 | 1.00× | 100.0 | 1.00× | 30.0 | 1.50 | 100 % |');
    expect(row(redis, 'taskmill Redis', '2')).toBe('| taskmill Redis | 2 | 15,000 | 1.50× | 110.0 | 1.10× | 30.0 | 1.50 | 50 % |');
    expect(row(redis, 'taskmill Redis', '4')).toBe('| taskmill Redis | 4 | 12,000 | 1.20× | 150.0 | 1.50× | 30.0 | 1.50 | 30 % |');
    const postgres = markdown.slice(markdown.indexOf('#### PostgreSQL'));
    expect(row(postgres, 'taskmill PostgreSQL', '2')).toContain('| 12,000 | 1.50× |');
    expect(row(postgres, 'taskmill PostgreSQL', '4')).toBe(
      '| taskmill PostgreSQL | 4 | – ⚠ 1 failed | – | – ⚠ 1 failed | – | – ⚠ 1 failed | – ⚠ 1 failed | – |',
    );
    // A scale-out-only run has no process, ratio or target figures to print.
    expect(markdown).not.toContain('### Process:');
    expect(markdown).not.toContain('### taskmill ÷ peer');
    expect(markdown).toContain('_No target’s workloads ran in this run._');
  });
});
