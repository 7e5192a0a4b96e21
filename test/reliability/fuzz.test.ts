/**
 * Reliability scenario 12, decoder fuzz, on every durable backend: hostile
 * messages pushed raw with queue.write() — random bytes as text, random JSON
 * values, deep nesting, envelopes with random field types, valid envelopes
 * damaged — mixed with valid jobs, into a running consumer process. The
 * consumer must never crash: every valid job runs exactly once, every hostile
 * message either runs (it decodes to a registered command), is skipped as
 * expired, or lands in the failed store with a reason and its text exactly as
 * written; nothing stays ready or leased; SIGTERM still exits 0. A fixed set
 * of edge envelopes (fuzz-gen.ts edgeEnvelopes) is in every run.
 *
 * The seed is printed; FUZZ_SEED=<n> replays a run, FUZZ_COUNT=<n> sets the
 * hostile messages per backend (default 300; valid jobs: a third of that).
 */
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { expect, it } from 'vitest';
import { Job, registry } from '../../src/index.js';
import { decodeMessage, encodeMessage } from '../../src/codec/message.js';
import './commands.js';
import { damaged, deeplyNested, edgeEnvelopes, mutatedEnvelope, randomBytesText, randomJson, seededRandom, type Random } from './fuzz-gen.js';
import { countBy, describeEachBackend, isDrained, readRecords, terminate, waitFor } from './kit.js';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
const HOSTILE = Number(process.env.FUZZ_COUNT ?? 300);
const VALID = Math.ceil(HOSTILE / 3);
console.info(`[reliability] fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED}); ${HOSTILE} hostile + ${VALID} valid messages per backend`);

interface Planned {
  kind: string;
  data: string;
}

/** The hostile messages of one run (same seed, same messages), mixed in among the valid `numbered` jobs. */
function plan(rng: Random): Planned[] {
  const hostile: Planned[] = [];
  for (let i = 0; i < HOSTILE; i++) {
    const kind = rng.pick(['bytes', 'json', 'deep', 'envelope', 'envelope', 'damaged']);
    const sinkEnvelope = () => encodeMessage('sink', [randomJson(rng)], { id: `fz-${i}` }).data;
    const data =
      kind === 'bytes'
        ? randomBytesText(rng)
        : kind === 'json'
          ? (JSON.stringify(randomJson(rng)) ?? 'null')
          : kind === 'deep'
            ? rng.chance(0.5)
              ? deeplyNested(rng, 1 + rng.int(5000))
              : sinkEnvelope().replace('"args":[', `"args":[${deeplyNested(rng, 900 + rng.int(300))},`)
            : kind === 'envelope'
              ? mutatedEnvelope(rng, `fz-${i}`, rng.chance(0.8) ? 'sink' : 'no-such-command')
              : damaged(rng, sinkEnvelope());
    hostile.push({ kind, data });
  }
  hostile.push(...edgeEnvelopes().map((data) => ({ kind: 'edge', data })));
  const valid = Array.from({ length: VALID }, (_, i): Planned => ({ kind: 'valid', data: encodeMessage('numbered', [i + 1]).data }));
  const mixed = [...hostile, ...valid];
  for (let i = mixed.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [mixed[i], mixed[j]] = [mixed[j]!, mixed[i]!];
  }
  return mixed;
}

type Fate = { fate: 'failed' } | { fate: 'run' | 'expired'; command: string; jobId: string };

/** What the consumer must do with `data`: the consumer's own decoder decides whether it is a job at all. */
function fateOf(data: string): Fate {
  try {
    const envelope = decodeMessage(data);
    if (!registry.has(envelope.command)) return { fate: 'failed' };
    const expired = envelope.expiresAt !== undefined && Date.now() > envelope.expiresAt;
    return { fate: expired ? 'expired' : 'run', command: envelope.command, jobId: envelope.id };
  } catch {
    return { fate: 'failed' };
  }
}

const sorted = (items: string[]) => [...items].sort();

/** Planned and judged once: every backend gets the same messages (and the test process's CPU goes to the run). */
const PLANNED = plan(seededRandom(SEED)).map((message) => ({ ...message, ...fateOf(message.data) }));

describeEachBackend(
  'decoder fuzz: hostile messages written raw never crash the consumer',
  (backend, suite) => {
    it(
      `every valid job runs once, every hostile message runs, expires or is failed with its text intact; nothing stays ready or leased; SIGTERM exits 0`,
      { timeout: 90_000 },
      async () => {
        const started = Date.now();
        const url = suite.freshUrl();
        const recordFile = path.join(suite.dir, 'fuzz-records.jsonl');
        const queue = suite.openQueue(url);
        await queue.open();
        const consumer = await suite.startConsumer(url, { recordFile, workers: 4 });

        const written: Array<Planned & Fate & { messageId: string }> = [];
        for (const message of PLANNED) written.push({ ...message, messageId: await queue.write(message.data) });
        const wroteAt = Date.now();
        const failing = written.filter((w) => w.fate === 'failed');
        const sinkRuns = written.flatMap((w) => (w.fate === 'run' && w.command === 'sink' ? [w.jobId] : []));
        const byKind = [...countBy(written.map((w) => `${w.kind}:${w.fate}`))].map(([k, n]) => `${k} ${n}`).join(', ');

        const runs = () => readRecords(recordFile);
        await waitFor(
          'every message handled',
          async () => {
            const stats = await queue.stats();
            return isDrained(stats) && stats.failed === failing.length && runs().length === VALID + sinkRuns.length;
          },
          60_000,
          100,
        ).catch(async (error: Error) => {
          throw new Error(
            `${error.message}; stats ${JSON.stringify(await queue.stats())}, ${runs().length} runs; seed ${SEED}; consumer errors:\n${consumer
              .logs()
              .filter((l) => (l.level as number) >= 50)
              .slice(0, 5)
              .map((l) => JSON.stringify(l).slice(0, 800))
              .join('\n')}`,
          );
        });

        const drainedAt = Date.now();
        // The consumer is alive and never logged a crash.
        expect(consumer.child.exitCode, `seed ${SEED}: ${consumer.stderr()}`).toBeNull();
        expect(
          consumer.logs().filter((l) => (l.level as number) >= 50),
          `seed ${SEED}`,
        ).toEqual([]);

        // Valid jobs: each ran exactly once. Hostile envelopes that decode: each ran as often as it was written.
        const records = runs();
        const numbered = records.filter((r) => r.cmd === 'numbered').map((r) => r.n as number);
        expect(
          numbered.sort((a, b) => a - b),
          `seed ${SEED}`,
        ).toEqual(Array.from({ length: VALID }, (_, i) => i + 1));
        expect(sorted(records.filter((r) => r.cmd === 'sink').map((r) => r.job)), `seed ${SEED}`).toEqual(sorted(sinkRuns));
        expect(
          records.filter((r) => r.cmd === 'sink' && ((r.addedKeys as string[]).length > 0 || r.polluted !== null)),
          `seed ${SEED}`,
        ).toEqual([]);

        // Everything else is in the failed store, exactly as written, with a reason.
        const failed = await queue.failed(10_000);
        expect(sorted(failed.map((f) => f.id)), `seed ${SEED}`).toEqual(sorted(failing.map((w) => w.messageId)));
        const writtenById = new Map(written.map((w) => [w.messageId, w]));
        for (const f of failed) {
          const w = writtenById.get(f.id)!;
          expect(f.data === w.data, `seed ${SEED}: failed message ${f.id} (${w.kind}) is not stored as written`).toBe(true);
          expect(f.error, `seed ${SEED}: failed message ${f.id} (${w.kind})`).toMatch(/\S/);
        }
        // Expired ones were skipped and say so.
        for (const w of written) {
          if (w.fate === 'expired') expect(await new Job(w.jobId, w.command, w.messageId, queue).status(), `seed ${SEED}`).toBe('expired');
        }
        expect(await queue.stats()).toEqual({ ready: 0, leased: 0, delayed: 0, failed: failing.length });

        expect(await terminate(consumer), consumer.stderr()).toBe(0);
        const s = (from: number, to: number) => `${((to - from) / 1000).toFixed(1)} s`;
        console.info(
          `[reliability] fuzz on ${backend.name}: ${s(started, Date.now())} (consumer up and writes ${s(started, wroteAt)}, drained ${s(wroteAt, drainedAt)}); seed ${SEED}; ${byKind}`,
        );
      },
    );
  },
  { concurrent: true },
);
