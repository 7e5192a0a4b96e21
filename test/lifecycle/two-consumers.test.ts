/**
 * Issue 7 across processes: two real `taskmill consume` processes on one
 * SQLite file / Redis prefix / PostgreSQL schema, this test as the producer.
 * Both consumers' schedulers promote delayed jobs every second and both take
 * retries, yet a delayed job runs once and a retried job runs `retries + 1`
 * times at most. Commands record every attempt to a file
 * (test/fixtures/lifecycle-commands.ts).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobFailedError, configure, type Job } from '../../src/index.js';
import { decodeMessage } from '../../src/codec/message.js';
import { resolveQueue } from '../../src/producer/settings.js';
import { ROOT, spawnCli, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { BACKENDS, parseRecords, sleep, type RecordLine } from '../fixtures/lifecycle-kit.js';
import { lifecycleDelayed, lifecycleDoomed, lifecycleFlaky } from '../fixtures/lifecycle-commands.js';

const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'lifecycle-commands.ts');
/** Clock reads of two processes/servers on this machine may disagree by a few ms. */
const CLOCK_SLACK_MS = 25;
/** Longer than a promotion tick (1 s) plus a retry delay: time enough for a duplicate to show. */
const QUIET_MS = 1_500;

function byJob(records: readonly RecordLine[]): Map<string, RecordLine[]> {
  const out = new Map<string, RecordLine[]>();
  for (const r of records) out.set(r.jobId, [...(out.get(r.jobId) ?? []), r]);
  return out;
}

for (const backend of BACKENDS.filter((b) => b.kind !== 'memory')) {
  const { kind } = backend;

  describe.skipIf(!backend.available)(`two taskmill consume processes on ${kind}: delayed jobs, retries, results`, () => {
    const url = backend.freshUrl();
    const dir = tempDir('taskmill-lifecycle-two-');
    const recordFile = path.join(dir, 'records.txt');
    const consumers: Spawned[] = [];
    const delayed: { job: Job<number>; notBefore: number }[] = [];
    let doomed: Job<never>[] = [];
    let flaky: Job<{ n: number; attempt: number; pid: number; at: Date }>[] = [];
    const records = () => (existsSync(recordFile) ? parseRecords(readFileSync(recordFile, 'utf8')) : []);
    const pids = () => consumers.map((c) => c.child.pid!);
    const started = Date.now();

    beforeAll(async () => {
      for (let i = 0; i < 2; i++) {
        consumers.push(spawnCli(['consume', '-t', '2', '-n', '-d', '0.02', '-m', '0.2', '-q', url, COMMANDS], { env: { RECORD_FILE: recordFile } }));
      }
      await Promise.all(consumers.map((c, i) => waitFor(`consumer ${i + 1} running`, () => c.stdout().includes('consumer running'), 45_000)));
      // The producer (this process) writes through configure()'s queue; jobs keep the queue they were written to.
      configure({ queue: url });
      for (let i = 0; i < 50; i++) {
        const delay = 500 + Math.round((i * 1_500) / 49);
        const notBefore = Date.now() + delay;
        delayed.push({ job: await lifecycleDelayed.schedule({ delay }, i), notBefore });
      }
      doomed = await Promise.all(Array.from({ length: 30 }, (_, i) => lifecycleDoomed(i)));
      flaky = await Promise.all(Array.from({ length: 10 }, (_, i) => lifecycleFlaky(i)));
    }, 60_000);

    afterAll(async () => {
      consumers.forEach((c) => c.child.exitCode === null && c.child.kill('SIGKILL'));
      await Promise.all(consumers.map((c) => c.exited));
      await resolveQueue(url).close();
      await backend.dispose(url);
      rmSync(dir, { recursive: true, force: true });
    });

    it('50 delayed jobs (0.5–2 s) each run exactly once, never before their time', { timeout: 60_000 }, async () => {
      const ids = delayed.map((d) => d.job.id);
      await waitFor(
        'every delayed job to run',
        () => {
          const runs = byJob(records());
          return ids.every((id) => runs.has(id));
        },
        30_000,
        100,
      );
      await sleep(QUIET_MS);
      const runs = byJob(records());
      for (const { job, notBefore } of delayed) {
        const mine = runs.get(job.id)!;
        expect(
          mine.map((r) => r.attempt),
          `runs of delayed job ${job.id}`,
        ).toEqual([1]);
        expect(mine[0]!.at).toBeGreaterThanOrEqual(notBefore - CLOCK_SLACK_MS);
        expect(pids()).toContain(mine[0]!.pid);
      }
      const perPid = pids().map((pid) => ids.filter((id) => runs.get(id)![0]!.pid === pid).length);
      console.info(`[lifecycle] ${kind}: delayed jobs run per consumer: ${perPid.join(' / ')}`);
    });

    it('30 jobs of an always-failing command with retries: 2 run exactly 3 times each and end in the failed store', { timeout: 60_000 }, async () => {
      const queue = resolveQueue(url);
      await waitFor('30 failed-store entries', async () => (await queue.failed(1_000)).length >= 30, 45_000, 200);
      await sleep(QUIET_MS);
      const runs = byJob(records());
      let crossed = 0;
      for (const job of doomed) {
        const mine = runs.get(job.id) ?? [];
        expect(mine.map((r) => r.attempt).sort(), `attempts of doomed job ${job.id}`).toEqual([1, 2, 3]);
        if (new Set(mine.map((r) => r.pid)).size > 1) crossed += 1;
      }
      const failed = await queue.failed(1_000);
      expect(failed).toHaveLength(30);
      expect(new Set(failed.map((f) => decodeMessage(f.data).id))).toEqual(new Set(doomed.map((j) => j.id)));
      for (const f of failed) {
        const { args, attempt } = decodeMessage(f.data);
        expect(attempt).toBe(3);
        expect(f.error).toMatch(new RegExp(`^Error: doomed ${String(args[0])} on attempt 3\\n\\s+at `));
      }
      for (const job of doomed) {
        const error = await job.result({ timeout: 5_000 }).then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(JobFailedError);
        expect((error as JobFailedError).attempt).toBe(3);
      }
      console.info(`[lifecycle] ${kind}: ${crossed}/30 doomed jobs ran in both consumers`);
    });

    it('a command with retries: 3 failing on attempts 1–2 runs exactly 3 times; the producer reads its result', { timeout: 60_000 }, async () => {
      for (const [n, job] of flaky.entries()) {
        const value = await job.result({ timeout: 30_000 });
        expect(value).toMatchObject({ n, attempt: 3 });
        expect(value.at).toBeInstanceOf(Date);
        expect(pids()).toContain(value.pid);
      }
      await sleep(QUIET_MS);
      const runs = byJob(records());
      for (const job of flaky)
        expect(
          runs
            .get(job.id)!
            .map((r) => r.attempt)
            .sort(),
          `attempts of flaky job ${job.id}`,
        ).toEqual([1, 2, 3]);
      const stats = await resolveQueue(url).stats();
      expect(stats).toMatchObject({ ready: 0, leased: 0, failed: 30 });
      expect(stats.delayed ?? 0).toBe(0);
    });

    it('both consumers stop cleanly on SIGTERM', { timeout: 30_000 }, async () => {
      consumers.forEach((c) => c.child.kill('SIGTERM'));
      const codes = await Promise.all(consumers.map((c) => c.exited));
      expect(codes, consumers.map((c) => c.stderr()).join('\n')).toEqual([0, 0]);
      console.info(`[lifecycle] ${kind}: two-consumer run took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
  });
}
