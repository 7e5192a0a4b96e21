/**
 * Reliability scenario 5, bad payloads, on every durable backend with a real
 * consumer process: a 50 MB argument (refused at enqueue by default, carried
 * when the limit is raised), NUL and lone surrogates (in arguments, and raw in
 * an envelope the backend must store as it is), and `__proto__` keys in
 * envelopes pushed raw. What test/message.test.ts checks of the codec alone
 * is checked here end to end: producer → backend → consumer process → result.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { configure, PayloadTooLargeError, type BaseQueue, type Job } from '../../src/index.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/shared/config.js';
import { digest, echo } from './commands.js';
import { describeEachBackend, isDrained, readRecords, waitFor, type ConsumerProcess, type RunRecord } from './kit.js';

/**
 * 50 MB of base64 text behind a two-byte UTF-8 character and a NUL (escaped in
 * the envelope). Only Latin-1 characters, so V8 keeps it one byte per
 * character: the wider characters are AWKWARD_ARGS' job, and here they would
 * double the CPU the 50 MB costs on every side.
 */
const BIG = `ü\u0000${randomBytes(37_500_000).toString('base64')}`;
const BIG_DIGEST = { length: BIG.length, sha256: createHash('sha256').update(BIG, 'utf8').digest('hex') };

/** Strings a backend or codec could mangle: NUL, lone and reversed surrogates, a valid pair, every BMP code unit. */
const AWKWARD_ARGS: unknown[] = [
  'nul\u0000inside\u0000',
  '\ud800',
  '\udfff',
  'x\ud800y\udfffz',
  '\udfff\ud800',
  '😀',
  { '\u0000key\ud800': ['\udfff\u0000', { '\ud83d': 'half of 😀' }] },
  String.fromCharCode(...Array.from({ length: 0x10000 }, (_, unit) => unit)),
];

/**
 * Envelopes pushed raw (queue.write), each with `__proto__` (or `constructor.prototype`)
 * keys. `runs`: whether it is a valid echo job once those keys are plain data.
 */
const PROTO_ENVELOPES: Array<{ what: string; runs: boolean; data: (id: string) => string }> = [
  { what: '__proto__ key in an argument', runs: true, data: (id) => envelope(id, '[{"__proto__":{"polluted":"arg"}}]') },
  { what: '__proto__ key at the envelope top level', runs: true, data: (id) => envelope(id, '[1]', ',"__proto__":{"polluted":"envelope"}') },
  { what: 'constructor.prototype in an argument', runs: true, data: (id) => envelope(id, '[{"constructor":{"prototype":{"polluted":"ctor"}}}]') },
  { what: '__proto__ inside an escaped $t object', runs: true, data: (id) => envelope(id, '[{"$t":"Object","v":{"__proto__":{"polluted":"escape"}}}]') },
  { what: '__proto__ holding a tag', runs: true, data: (id) => envelope(id, '[{"a":{"__proto__":{"$t":"Set","v":["polluted"]}}}]') },
  { what: '__proto__ as a Map key', runs: true, data: (id) => envelope(id, '[{"$t":"Map","v":[["__proto__",{"polluted":"map"}]]}]') },
  {
    what: 'the whole envelope under __proto__',
    runs: false,
    data: (id) => `{"__proto__":${envelope(id, '[1]')},"polluted":"wrapped"}`,
  },
  { what: 'a __proto__ key as the v field', runs: false, data: (id) => envelope(id, '[1]').replace('"v":1', '"v":{"__proto__":1}') },
];

/**
 * Enqueues with configure({ queue, maxPayloadBytes }) set for this call only.
 * configure() is process-wide and the backends' blocks run side by side, so
 * the settings are applied, used and restored in one synchronous step: a
 * command call checks the size and resolves its queue before its first await.
 */
function enqueueOn<T>(queue: BaseQueue, maxPayloadBytes: number, enqueue: () => Promise<T>): Promise<T> {
  configure({ queue, maxPayloadBytes });
  try {
    return enqueue();
  } finally {
    configure({ maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES });
  }
}

/**
 * Every call's deadline (Redis commandTimeoutMs, PostgreSQL queryTimeoutMs;
 * default 5 s) for the queues here: four 50 MB round trips at once, two of
 * them through one Redis server, on a loaded box, can take longer than that —
 * this file tests the payload path, not the box.
 */
const BIG_COMMAND_TIMEOUT_MS = 60_000;

function envelope(id: string, args: string, extra = ''): string {
  return `{"v":1,"id":"${id}","command":"echo","args":${args},"enqueuedAt":${Date.now()},"attempt":1${extra}}`;
}

// The backends' blocks run side by side; inside a block the tests run in order (it.sequential), on one consumer.
describeEachBackend(
  'bad payloads through a real consumer',
  (backend, suite) => {
    let url = '';
    let queue: BaseQueue;
    let consumer: ConsumerProcess;
    let recordFile = '';
    const runsOf = (job: string): RunRecord[] => readRecords(recordFile).filter((r) => r.job === job);

    beforeAll(async () => {
      url = suite.freshUrl();
      recordFile = path.join(suite.dir, 'payload-records.jsonl');
      // Connecting gets the long deadline too: with 50 MB payloads being encoded and moved on a loaded 2-core
      // box, this process's event loop can stall past the 5 s default (seen once in a full run: "connect ETIMEDOUT").
      queue = suite.openQueue(url, {
        commandTimeoutMs: BIG_COMMAND_TIMEOUT_MS,
        queryTimeoutMs: BIG_COMMAND_TIMEOUT_MS,
        connectTimeoutMs: BIG_COMMAND_TIMEOUT_MS,
      });
      // One worker: jobs run in the order written, so a probe enqueued last sees what every earlier job left behind.
      consumer = await suite.startConsumer(url, { recordFile, workers: 1, commandTimeoutMs: BIG_COMMAND_TIMEOUT_MS });
    });

    it.sequential('a 50 MB argument is refused at enqueue by default with PayloadTooLargeError, and nothing is written', async () => {
      const before = await queue.stats();
      const error = await enqueueOn(queue, DEFAULT_MAX_PAYLOAD_BYTES, () => digest(BIG)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PayloadTooLargeError);
      expect((error as PayloadTooLargeError).limit).toBe(DEFAULT_MAX_PAYLOAD_BYTES);
      expect((error as PayloadTooLargeError).bytes).toBeGreaterThan(50_000_000);
      expect(await queue.length()).toBe(0);
      expect(await queue.stats()).toEqual(before);
      expect(readRecords(recordFile).filter((r) => r.cmd === 'digest')).toEqual([]);
    });

    it.sequential(
      'with configure({ maxPayloadBytes }) raised to 64 MiB, the 50 MB argument reaches the consumer intact and its result comes back',
      { timeout: 120_000 },
      async () => {
        const started = Date.now();
        const job = await enqueueOn(queue, 64 * 1024 * 1024, () => digest(BIG));
        expect(await job.result({ timeout: 90_000 })).toEqual(BIG_DIGEST);
        console.info(`[reliability] 50 MB round trip on ${backend.name}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
        expect(runsOf(job.id)).toEqual([expect.objectContaining({ ...BIG_DIGEST, attempt: 1, pid: consumer.pid })]);
        await waitFor('the big job acked', async () => isDrained(await queue.stats()), 30_000);
      },
    );

    it.sequential('NUL and lone surrogates in arguments reach the command and come back as its result exactly', async () => {
      const job = await enqueueOn<Job<unknown[]>>(queue, DEFAULT_MAX_PAYLOAD_BYTES, () => echo(...AWKWARD_ARGS));
      const result = await job.result({ timeout: 30_000 });
      expect(result).toEqual(AWKWARD_ARGS);
      expect(result[7]).toBe(AWKWARD_ARGS[7]); // every code unit, in order
      const [run] = runsOf(job.id);
      expect(run!.args).toEqual(AWKWARD_ARGS);
    });

    it.sequential(
      'an envelope pushed raw with unescaped lone surrogates is stored as written and runs; one with a raw NUL (not JSON) goes to the failed store',
      async () => {
        const rawArgs = ['\ud800', 'a\udfffb', '\udfff\ud800', { '\udc00': '\ud800' }];
        // JSON.parse accepts lone surrogates as they are; the backend must keep the text exactly for that to work.
        const stored = envelope('raw-surrogates', `["\ud800","a\udfffb","\udfff\ud800",{"\udc00":"\ud800"}]`);
        const notJson = envelope('raw-nul', '["a\u0000b"]');
        await queue.write(stored);
        const notJsonId = await queue.write(notJson);
        await waitFor('the raw envelopes handled', async () => isDrained(await queue.stats()) && runsOf('raw-surrogates').length > 0, 20_000);
        expect(runsOf('raw-surrogates').map((r) => r.args)).toEqual([rawArgs]);
        const failed = await queue.failed();
        expect(failed.map((f) => f.id)).toEqual([notJsonId]);
        expect(failed[0]!.data).toBe(notJson);
        expect(failed[0]!.error).toMatch(/not JSON/);
        expect(failed[0]!.error).not.toContain('a\u0000b');
        expect(await queue.purgeFailed()).toBe(1);
      },
    );

    it.sequential(
      'envelopes pushed raw with __proto__ keys run with clean prototypes or go to the failed store with a reason; Object.prototype stays clean in the consumer',
      async () => {
        const written = [];
        for (const [i, e] of PROTO_ENVELOPES.entries()) {
          const jobId = `proto-${i}`;
          written.push({ ...e, jobId, messageId: await queue.write(e.data(jobId)) });
        }
        // A probe last: with one worker it runs after all of the above, in the same process.
        const probe = await enqueueOn(queue, DEFAULT_MAX_PAYLOAD_BYTES, () => echo('probe'));
        await probe.result({ timeout: 30_000 });
        await waitFor('every envelope handled', async () => isDrained(await queue.stats()), 20_000);

        const failed = new Map((await queue.failed()).map((f) => [f.id, f]));
        for (const { what, runs, jobId, messageId } of written) {
          const records = runsOf(jobId);
          if (runs) {
            expect(records, what).toHaveLength(1);
            expect(records[0], what).toMatchObject({ addedKeys: [], polluted: null });
            expect(records[0]!.argPrototypes as string[], what).not.toContain('foreign');
            expect(records[0]!.argInherited as unknown[], what).toEqual((records[0]!.argInherited as unknown[]).map(() => null));
            expect(failed.has(messageId), what).toBe(false);
          } else {
            expect(records, what).toEqual([]);
            expect(failed.get(messageId)?.error, what).toMatch(/missing field v|field v must be/);
          }
        }
        expect(failed.size).toBe(written.filter((w) => !w.runs).length);
        expect(runsOf(probe.id)).toEqual([expect.objectContaining({ args: ['probe'], addedKeys: [], polluted: null, pid: consumer.pid })]);
        // The consumer survived all of it and shuts down cleanly.
        expect(consumer.child.exitCode).toBeNull();
        expect(consumer.logs().filter((l) => (l.level as number) >= 50)).toEqual([]);
      },
    );

    it.sequential('the consumer exits 0 on SIGTERM after all of it', async () => {
      consumer.child.kill('SIGTERM');
      expect(await consumer.exited, consumer.stderr()).toBe(0);
    });
  },
  { concurrent: true },
);
