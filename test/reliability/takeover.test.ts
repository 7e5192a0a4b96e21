/**
 * Reliability scenario 1, second half, on every durable backend: two
 * consumer processes share 1,000 jobs; one of them (10 workers) is killed
 * with SIGKILL a third of the way through. Nothing restarts it: the consumer
 * that was already running takes the dead one's leases over once they lapse
 * and completes every job. A job runs twice only when the dead consumer
 * finished it and died before its ack landed, so duplicates are bounded by
 * what was leased at the kill: its running jobs (≤ its 10 workers; no
 * prefetch) and the finished ones whose acks were still on their way.
 *
 * (The first half, a restarted consumer after kill -9, is the "SIGKILLed
 * mid-way" test of test/fixtures/backends-e2e.ts, run by each
 * test/e2e/backends-*.test.ts.)
 */
import path from 'node:path';
import { expect, it } from 'vitest';
import { encodeMessage } from '../../src/codec/message.js';
import { countBy, describeEachBackend, isDrained, readRecords, terminate, waitFor } from './kit.js';

const JOBS = 1000;
const VICTIM_WORKERS = 10;
const SURVIVOR_WORKERS = 4;
/** Each job's run time: the victim is killed with runs in progress, not between them. */
const JOB_MS = 10;
/** Short, so the takeover happens within seconds; long enough that the survivor's own heartbeats keep up on a loaded box. */
const LEASE_MS = 2500;

describeEachBackend(
  'a second consumer takes over from one killed with SIGKILL',
  (backend, suite) => {
    it(
      `${JOBS.toLocaleString('en')} jobs, the ${VICTIM_WORKERS}-worker consumer killed a third of the way: the running one completes every job, no restart; duplicates ≤ the jobs the dead one had in flight`,
      { timeout: 120_000 },
      async () => {
        const started = Date.now();
        const url = suite.freshUrl();
        const recordFile = path.join(suite.dir, 'takeover-records.jsonl');
        const queue = suite.openQueue(url);
        const messages = Array.from({ length: JOBS }, (_, i) => encodeMessage('hold', [i + 1, JOB_MS]));
        // Both running before the first job is written, so both take a share from the start.
        const [survivor, victim] = await Promise.all([
          suite.startConsumer(url, { recordFile, workers: SURVIVOR_WORKERS, leaseMs: LEASE_MS }),
          suite.startConsumer(url, { recordFile, workers: VICTIM_WORKERS, leaseMs: LEASE_MS }),
        ]);
        for (let i = 0; i < JOBS; i += 200) await queue.writeBatch(messages.slice(i, i + 200).map((m) => m.data));
        await waitFor('a third of the jobs done', () => readRecords(recordFile).filter((r) => r.phase === 'done').length >= JOBS / 3, 60_000, 5);
        victim.child.kill('SIGKILL');
        expect(await victim.exited).toBe('SIGKILL');
        const killedAt = Date.now();
        // In flight at the fault: everything leased now — the dead consumer's leases (its running jobs, and jobs it
        // finished whose acks had not landed: a worker takes its next job while the ack is on its way) plus the
        // survivor's. An upper bound on the dead one's, read before any of them can lapse.
        const leasedAtKill = (await queue.stats()).leased;
        const atKill = readRecords(recordFile);
        expect(atKill.filter((r) => r.phase === 'done').length, 'every job ended before the kill').toBeLessThan(JOBS);
        const victimStarted = new Set(atKill.filter((r) => r.pid === victim.pid && r.phase === 'start').map((r) => r.job));
        const victimDone = new Set(atKill.filter((r) => r.pid === victim.pid && r.phase === 'done').map((r) => r.job));
        const unfinished = [...victimStarted].filter((job) => !victimDone.has(job));
        expect(victimDone.size, 'the victim did its share before the kill').toBeGreaterThan(0);

        await waitFor(
          'every job done and the queue drained',
          async () =>
            new Set(
              readRecords(recordFile)
                .filter((r) => r.phase === 'done')
                .map((r) => r.job),
            ).size >= JOBS && isDrained(await queue.stats()),
          60_000,
          100,
        );
        const takeoverMs = Date.now() - killedAt;
        expect(await terminate(survivor), survivor.stderr()).toBe(0);

        const done = readRecords(recordFile).filter((r) => r.phase === 'done');
        // None lost: every job completed, and the survivor is the only process left to have done so.
        expect(new Set(done.map((r) => r.job))).toEqual(new Set(messages.map((m) => m.id)));
        expect(done.every((r) => r.pid === victim.pid || r.pid === survivor.pid)).toBe(true);
        // Every run the victim left unfinished was completed by the survivor.
        for (const job of unfinished)
          expect(
            done.filter((r) => r.job === job).map((r) => r.pid),
            job,
          ).toEqual([survivor.pid]);
        // Duplicates: finished by the victim, not acked before the kill, run again by the survivor.
        const twice = [...countBy(done.map((r) => r.job))].filter(([, count]) => count > 1).map(([job]) => job);
        for (const job of twice)
          expect(
            done.filter((r) => r.job === job).map((r) => r.pid),
            job,
          ).toEqual([victim.pid, survivor.pid]);
        expect(unfinished.length, 'more unfinished runs than the victim has workers').toBeLessThanOrEqual(VICTIM_WORKERS);
        expect(twice.length + unfinished.length, 'more duplicates and unfinished runs than jobs in flight at the kill').toBeLessThanOrEqual(leasedAtKill);
        expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
        console.info(
          `[reliability] takeover on ${backend.name}: victim done ${victimDone.size}, leased at the kill ${leasedAtKill}, unfinished ${unfinished.length}, twice ${twice.length}; takeover ${(takeoverMs / 1000).toFixed(1)} s; total ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      },
    );
  },
  // One backend at a time: two consumers with 14 workers between them, plus the test process, load a
  // 2-core machine enough; four such pairs at once starve the survivor's heartbeats and slow startups.
  { concurrent: false },
);
