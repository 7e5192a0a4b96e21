/**
 * The bench's side tools: `npm run bench -- --help`, bench/jit.ts (which
 * runs bench/warmup.ts with its window markers, as is, with --no-opt and
 * under --trace-opt) on the memory backend, which needs no server, and
 * bench/redis-server-cost.ts against the shared Redis, and
 * bench/heap-spaces.ts and bench/postgres-claim-cost.ts on a PostgreSQL backlog. What is
 * checked is that they work and say what they measured, never how fast
 * anything is.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { benchCommand } from '../../bench/args.js';
import { SYSTEMS } from '../../bench/systems/index.js';
import { spawnTsx } from '../helpers/processes.js';
import { POSTGRES_URL, REDIS_URL, hasPostgres, hasRedis } from '../helpers/services.js';

describe('the bench tools', () => {
  it('a report names the NODE_OPTIONS its children ran under, and nothing when there were none', () => {
    expect(benchCommand(['--full'], '--max-semi-space-size=2')).toBe("NODE_OPTIONS='--max-semi-space-size=2' npm run bench -- --full");
    expect(benchCommand(['--full'], undefined)).toBe('npm run bench -- --full');
    expect(benchCommand([], '  ')).toBe('npm run bench');
  });

  it('npm run bench -- --help lists the options, every system and workload, and runs nothing', { timeout: 60_000 }, async () => {
    const run = spawnTsx(['bench/run.ts', '--help']);
    expect(await run.exited, run.stderr()).toBe(0);
    const help = run.stdout();
    for (const option of ['--full', '--systems', '--workloads', '--process-jobs', '--profile', '--out']) expect(help).toContain(option);
    for (const system of SYSTEMS) expect(help).toContain(system.key);
    expect(help).toContain('enqueue, process1, process10, latency, scaleout');
    expect(run.stderr()).not.toContain('bench (');
  });

  it('bench/jit.ts reports CPU as is and without TurboFan, and what TurboFan compiled in the window', { timeout: 120_000 }, async () => {
    const run = spawnTsx(['bench/jit.ts', '--systems', 'taskmill-memory', '--jobs', '1500', '--rounds', '1']);
    expect(await run.exited, run.stderr()).toBe(0);
    const out = run.stdout();
    const figures = /^taskmill-memory: CPU ms per 1,000 jobs ([\d.]+) as is, ([\d.]+) with --no-opt$/m.exec(out);
    expect(figures, out).not.toBeNull();
    expect(Number(figures![1])).toBeGreaterThan(0);
    expect(Number(figures![2])).toBeGreaterThan(0);
    expect(out).toMatch(/TurboFan in the window \(--trace-opt run\): \d+ compiles of \d+ functions, \d+ ms = [\d.]+ ms per 1,000 jobs/);
  });

  it('bench/jit.ts refuses a bad job count, naming the option', { timeout: 60_000 }, async () => {
    const run = spawnTsx(['bench/jit.ts', '--jobs', '0']);
    expect(await run.exited).not.toBe(0);
    expect(run.stderr()).toContain('--jobs must be a positive integer (got 0)');
  });

  it.skipIf(!hasRedis)('bench/redis-server-cost.ts reports the server time per job of each round and leaves no key behind', { timeout: 60_000 }, async () => {
    const run = spawnTsx(['bench/redis-server-cost.ts', '--jobs', '300', '--rounds', '2', '--redis', REDIS_URL]);
    expect(await run.exited, run.stderr()).toBe(0);
    const rounds = [...run.stdout().matchAll(/^round (\d): Redis spent ([\d.]+) µs per job reading and acking 300 jobs, 100 at a time$/gm)];
    expect(rounds.map((r) => r[1])).toEqual(['1', '2']);
    for (const round of rounds) expect(Number(round[2])).toBeGreaterThan(0);
    const raw = new Redis(REDIS_URL);
    try {
      expect(await raw.keys('tmbench-cost:*')).toEqual([]);
    } finally {
      raw.disconnect();
    }
  });

  it('bench/redis-server-cost.ts refuses a bad batch size, naming the option', { timeout: 60_000 }, async () => {
    const run = spawnTsx(['bench/redis-server-cost.ts', '--batch', 'x']);
    expect(await run.exited).not.toBe(0);
    expect(run.stderr()).toContain('--batch must be a positive integer (got x)');
  });

  it.skipIf(!hasPostgres)(
    'bench/heap-spaces.ts --postgres consumes a backlog its child wrote, reports the heap, and drops its schema',
    { timeout: 120_000 },
    async () => {
      const run = spawnTsx(['--expose-gc', 'bench/heap-spaces.ts', '--jobs', '2000', '--postgres', POSTGRES_URL]);
      expect(await run.exited, run.stderr()).toBe(0);
      const out = run.stdout();
      for (const label of ['before', 'half-way', 'end', 'after gc']) expect(out).toMatch(new RegExp(`^${label} +RSS [\\d.]+ MiB; new_space`, 'm'));
      expect(out).toMatch(/^run: \d+ scavenges, \d+ other collections; ~\d+ B allocated young per job$/m);
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT nspname FROM pg_namespace WHERE nspname = $1`, [`taskmill_heap_spaces_${run.child.pid}`]);
        expect(rows).toEqual([]);
      } finally {
        await client.end();
      }
    },
  );

  it.skipIf(!hasPostgres)(
    'bench/postgres-claim-cost.ts reports each round of claims with the server CPU per job, and drops its schema',
    { timeout: 120_000 },
    async () => {
      const run = spawnTsx(['bench/postgres-claim-cost.ts', '--jobs', '600', '--batch', '100', '--lanes', '2', '--rounds', '2', '--postgres', POSTGRES_URL]);
      expect(await run.exited, run.stderr()).toBe(0);
      const rounds = [
        ...run
          .stdout()
          .matchAll(
            /^round (\d): 2 lane\(s\), claims of up to 100: (\d+) jobs\/s; claim p50 ([\d.]+) ms, p90 ([\d.]+) ms; CPU per job: server ([\d.]+) µs, this process ([\d.]+) µs$/gm,
          ),
      ];
      expect(rounds.map((r) => r[1])).toEqual(['1', '2']);
      for (const round of rounds) {
        expect(Number(round[2])).toBeGreaterThan(0);
        expect(Number(round[4])).toBeGreaterThanOrEqual(Number(round[3]));
      }
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT nspname FROM pg_namespace WHERE nspname = $1`, [`taskmill_claim_cost_${run.child.pid}`]);
        expect(rows).toEqual([]);
      } finally {
        await client.end();
      }
    },
  );

  it('bench/postgres-claim-cost.ts refuses a bad lane count, naming the option', { timeout: 60_000 }, async () => {
    const run = spawnTsx(['bench/postgres-claim-cost.ts', '--lanes', '0']);
    expect(await run.exited).not.toBe(0);
    expect(run.stderr()).toContain('--lanes must be a positive integer (got 0)');
  });

  it('bench/heap-spaces.ts refuses a bad job count, naming the option', { timeout: 60_000 }, async () => {
    const run = spawnTsx(['bench/heap-spaces.ts', '--jobs', '1.5']);
    expect(await run.exited).not.toBe(0);
    expect(run.stderr()).toContain('--jobs must be a positive integer (got 1.5)');
  });
});
