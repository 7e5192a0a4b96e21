/**
 * Reliability scenario 3, the zombie consumer, on every durable backend: a
 * consumer process is SIGSTOPped while it holds the leases of running jobs
 * and stays stopped past them; a second consumer takes the jobs over. Then
 * SIGCONT: the zombie finishes its (stale) runs and tries to store their
 * results and ack them. The backend's fencing per delivery must refuse every
 * one of those writes — for jobs the second consumer already completed, and
 * for jobs it is still running under its own lease — so nothing is acked
 * away, lost or failed, no job's result is the zombie's, and the queue ends
 * empty.
 */
import path from 'node:path';
import { expect, it } from 'vitest';
import { encodeMessage } from '../../src/codec/message.js';
import type { BaseQueue } from '../../src/backends/base.js';
import { parseResultRecord } from '../../src/producer/results.js';
import { countBy, describeEachBackend, isDrained, readRecords, sleep, terminate, waitFor, type ConsumerProcess, type Suite } from './kit.js';

const LEASE_MS = 1000;
/** How long each job runs on the zombie: it is stopped long before any of them ends. */
const FIRST_RUN_MS = 3000;
/** Re-runs on the second consumer: group "done" ends before the zombie wakes, group "live" well after. */
const RERUN_DONE_MS = 200;
const RERUN_LIVE_MS = 6000;
const JOBS_PER_GROUP = 2;

/** SIGSTOP, but never while the process holds SQLite's write lock (that would stall every other process, by design of SQLite). */
async function freeze(consumer: ConsumerProcess, writeLocked: (() => boolean) | undefined): Promise<void> {
  for (let tries = 0; ; tries++) {
    consumer.child.kill('SIGSTOP');
    await sleep(20);
    if (!writeLocked?.()) return;
    if (tries >= 50) throw new Error('the stopped consumer keeps holding the SQLite write lock');
    consumer.child.kill('SIGCONT');
    await sleep(10);
  }
}

/** Message ids in the zombie's "ack refused: lease lost" warnings. */
function refusedAcks(consumer: ConsumerProcess): string[] {
  return consumer.logs().flatMap((line) => (String(line.msg).startsWith('ack refused: lease lost') ? (line.ids as string[]) : []));
}

/** The pid whose run a job's stored result comes from (hold returns its pid); null when no result is stored. */
async function resultPid(queue: BaseQueue, jobId: string): Promise<number | null> {
  const text = await queue.getResult(jobId);
  if (text === null) return null;
  const record = parseResultRecord(text);
  expect(record.status, `job ${jobId}'s result`).toBe('completed');
  return Number(record.value);
}

async function zombieRun(suite: Suite, writeLocked: ((url: string) => boolean) | undefined): Promise<void> {
  const url = suite.freshUrl();
  const recordFile = path.join(suite.dir, 'zombie-records.jsonl');
  const queue = suite.openQueue(url);
  const group = (rerunMs: number, from: number) => Array.from({ length: JOBS_PER_GROUP }, (_, i) => encodeMessage('hold', [from + i, FIRST_RUN_MS, rerunMs]));
  const doneGroup = group(RERUN_DONE_MS, 1);
  const liveGroup = group(RERUN_LIVE_MS, 1 + JOBS_PER_GROUP);
  const messageIds = await queue.writeBatch([...doneGroup, ...liveGroup].map((m) => m.data));
  const total = messageIds.length;
  const idOf = new Map([...doneGroup, ...liveGroup].map((m, i) => [m.id, messageIds[i]!]));
  const runs = () => readRecords(recordFile);
  const phase = (pid: number, name: 'start' | 'done', jobs = [...idOf.keys()]) =>
    runs().filter((r) => r.pid === pid && r.phase === name && jobs.includes(r.job));

  // 1. The zombie leases every job and starts it; then it is frozen mid-run.
  const zombie = await suite.startConsumer(url, { recordFile, workers: total, leaseMs: LEASE_MS });
  await waitFor('the zombie running every job', () => phase(zombie.pid, 'start').length === total, 30_000, 20);
  await freeze(zombie, writeLocked && (() => writeLocked(url)));
  expect(phase(zombie.pid, 'done'), 'a job ended before the zombie was stopped').toEqual([]);

  // 2. Its leases lapse; a second consumer re-runs every job.
  const survivor = await suite.startConsumer(url, { recordFile, workers: total });
  await waitFor('the second consumer running every job', () => phase(survivor.pid, 'start').length === total, 30_000);
  const doneJobs = doneGroup.map((m) => m.id);
  await waitFor(
    'the "done" group completed and acked by the second consumer',
    async () => phase(survivor.pid, 'done', doneJobs).length === JOBS_PER_GROUP && (await queue.stats()).leased === JOBS_PER_GROUP,
    30_000,
  );
  expect(phase(zombie.pid, 'done'), 'the zombie ran while stopped').toEqual([]);

  // 3. The zombie wakes: its runs end and it acks all of them. Every ack is refused.
  zombie.child.kill('SIGCONT');
  await waitFor('the zombie finishing its stale runs', () => phase(zombie.pid, 'done').length === total, 15_000);
  await waitFor('the zombie logging every ack as refused', () => new Set(refusedAcks(zombie)).size === total, 15_000);
  expect(new Set(refusedAcks(zombie))).toEqual(new Set(messageIds));
  // Its results were refused too (each was written before its ack, fenced by the same delivery): a
  // completed job keeps the second consumer's result, a running one has none yet.
  for (const m of doneGroup) expect(await resultPid(queue, m.id), `job ${m.id} (completed by the second consumer)`).toBe(survivor.pid);
  for (const m of liveGroup) expect(await resultPid(queue, m.id), `job ${m.id} (still running on the second consumer)`).toBeNull();
  // The refused acks removed nothing: the live group is still leased by the second consumer, still running.
  const afterRefusal = await queue.stats();
  expect(afterRefusal).toMatchObject({ ready: 0, leased: JOBS_PER_GROUP, failed: 0 });
  expect(
    phase(
      survivor.pid,
      'done',
      liveGroup.map((m) => m.id),
    ),
    'the live group ended before the zombie woke',
  ).toEqual([]);

  // 4. The second consumer completes the live group: every job done once by it, the queue empty, nothing failed.
  await waitFor('the queue empty', async () => isDrained(await queue.stats()), 30_000);
  const done = phase(survivor.pid, 'done');
  expect([...countBy(done.map((r) => r.job)).values()]).toEqual(Array(total).fill(1));
  expect(new Set(done.map((r) => r.job))).toEqual(new Set(idOf.keys()));
  expect(done.every((r) => r.rerun === true)).toBe(true);
  for (const m of [...doneGroup, ...liveGroup]) expect(await resultPid(queue, m.id), `job ${m.id}'s result`).toBe(survivor.pid);
  expect(phase(survivor.pid, 'start').length, 'the second consumer ran a job twice').toBe(total);
  expect(phase(zombie.pid, 'start').length, 'the zombie leased a job again after waking').toBe(total);
  expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
  expect(await queue.failed()).toEqual([]);
  // Only the zombie complained; the second consumer's acks all went through.
  expect(refusedAcks(survivor)).toEqual([]);
  expect(survivor.logs().filter((l) => (l.level as number) >= 40)).toEqual([]);

  // Both still shut down cleanly.
  expect(await terminate(zombie), zombie.stderr()).toBe(0);
  expect(await terminate(survivor), survivor.stderr()).toBe(0);
}

describeEachBackend(
  'zombie consumer (SIGSTOP past its leases, SIGCONT after a takeover)',
  (backend, suite) => {
    it(
      "the zombie's late acks and results are all refused — for jobs already completed and for jobs re-leased and still running — every job completes once on the second consumer with its result, nothing fails, the queue ends empty",
      { timeout: 90_000 },
      async () => {
        const started = Date.now();
        await zombieRun(suite, backend.writeLocked?.bind(backend));
        console.info(`[reliability] zombie on ${backend.name}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      },
    );
  },
  { concurrent: true },
);
