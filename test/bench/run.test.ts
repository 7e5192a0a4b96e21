/**
 * `npm run bench` end to end at a few dozen jobs, on the real Redis and
 * PostgreSQL: BullMQ on PostgreSQL enqueues and processes through its child
 * processes, the scale-out workload drains one backlog with two consumer
 * processes on each backend without running a job twice, and the run leaves
 * no schema or key behind. What it checks is that the harness works, never
 * how fast anything is.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { spawnTsx, tempDir } from '../helpers/processes.js';
import { hasPostgres, hasRedis, POSTGRES_URL, REDIS_URL } from '../helpers/services.js';

const row = (markdown: string, ...start: string[]) => markdown.split('\n').find((line) => line.startsWith(`| ${start.join(' | ')} |`));

/** The bench's log line of one run: `run 1/1 KEY WORKLOAD: {json} (…)`. */
function logged(stderr: string, key: string, workload: string): Record<string, unknown> {
  const line = stderr.split('\n').find((l) => l.startsWith(`run 1/1 ${key} ${workload}: `));
  expect(line, `no log line for ${key} ${workload} in:\n${stderr}`).toBeDefined();
  const json = line!.slice(line!.indexOf(': ') + 2, line!.lastIndexOf(' ('));
  expect(json, line).not.toMatch(/^FAILED/);
  return JSON.parse(json) as Record<string, unknown>;
}

describe.skipIf(!hasRedis || !hasPostgres)('npm run bench, a tiny run', () => {
  it('runs BullMQ on PostgreSQL and the scale-out workload, then cleans up', { timeout: 300_000 }, async () => {
    const out = path.join(tempDir('taskmill-bench-run-'), 'bench.md');
    const run = spawnTsx([
      'bench/run.ts',
      '--systems',
      'taskmill-redis,taskmill-postgres,bullmq-postgres,bullmq-postgres-keep',
      '--workloads',
      'enqueue,process10,scaleout',
      '--process-jobs',
      '60',
      '--enqueue-jobs',
      '40',
      '--scaleout-jobs',
      '200',
      '--scaleout',
      '1,2',
      '--runs',
      '1',
      '--redis',
      REDIS_URL,
      '--postgres',
      POSTGRES_URL,
      '--out',
      out,
    ]);
    const code = await run.exited;
    expect(code, run.stderr()).toBe(0);
    const namespace = `b${run.child.pid}`;

    for (const key of ['bullmq-postgres', 'bullmq-postgres-keep', 'taskmill-postgres']) {
      expect(logged(run.stderr(), key, 'process10')).toMatchObject({ duplicates: 0 });
    }
    expect(Number(logged(run.stderr(), 'bullmq-postgres', 'enqueue').bulkJobsPerSec)).toBeGreaterThan(0);
    for (const system of ['taskmill-redis', 'taskmill-postgres']) {
      for (const processes of [1, 2]) {
        const result = logged(run.stderr(), `${system}@${processes}`, 'scaleout');
        expect(result, `${system}@${processes}`).toMatchObject({ duplicates: 0 });
        expect(Number(result.jobsPerSec)).toBeGreaterThan(0);
        expect(Number(result.busiestShare)).toBeLessThanOrEqual(1);
        expect(Number(result.busiestShare)).toBeGreaterThanOrEqual(1 / processes);
        expect(Number(result.cpuMsPer1000)).toBeGreaterThan(0);
      }
    }

    const report = readFileSync(out, 'utf8');
    expect(report).not.toContain('⚠');
    expect(row(report, 'taskmill PostgreSQL', 'BullMQ on PostgreSQL')).toMatch(/\| \d+\.\d\d× \|/);
    expect(report).toMatch(/\| PostgreSQL, process c=10: taskmill ≥ 2× BullMQ on PostgreSQL \(issue 21\) \| .* \| (met|\*\*not met\*\*) \|/);
    expect(row(report.slice(report.indexOf('#### Redis')), 'taskmill Redis', '2')).toMatch(/^\| taskmill Redis \| 2 \| [\d,]+ \| \d+\.\d\d× \|/);
    expect(row(report.slice(report.indexOf('#### PostgreSQL')), 'taskmill PostgreSQL', '2')).toMatch(/^\| taskmill PostgreSQL \| 2 \| [\d,]+ \| \d+\.\d\d× \|/);

    // Nothing of the run is left on the shared servers.
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const schemas = await client.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname LIKE $1', [`%\\_${namespace}`]);
      expect(schemas.rows.map((r) => r.nspname)).toEqual([]);
    } finally {
      await client.end();
    }
    const redis = new Redis(REDIS_URL);
    try {
      const left: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `tmbench-${namespace}:*`, 'COUNT', 10_000);
        cursor = next;
        left.push(...keys);
      } while (cursor !== '0');
      expect(left).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});
