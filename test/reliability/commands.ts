/**
 * Commands of the reliability suite. The consumer fixture (consumer.ts)
 * imports them to run them; the tests import them to enqueue them. Every run
 * appends one JSON line to $RECORD_FILE, so a test counts runs from outside
 * the queue (appends with O_APPEND are atomic for lines this short, and the
 * file survives a consumer that is stopped, killed or lying about its acks):
 *   {"cmd":…, "job":<envelope id>, "attempt":<envelope attempt>, "pid":…, …}
 * JSON.stringify escapes NUL and lone surrogates, so a line holds any
 * argument exactly and JSON.parse gives it back.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { queueCommand, type JobContext } from '../../src/index.js';

/** What Object.prototype looked like before any job ran: a job that adds to it polluted this process. */
const PROTOTYPE_KEYS = new Set(Object.getOwnPropertyNames(Object.prototype));
/** The prototypes a decoded argument may have: plain objects and arrays, and the codec's tagged types. */
const DECODED_PROTOTYPES = new Set<object | null>([
  null,
  Object.prototype,
  Array.prototype,
  Map.prototype,
  Set.prototype,
  Date.prototype,
  Uint8Array.prototype,
]);

export interface RunRecord {
  cmd: string;
  job: string;
  attempt: number;
  pid: number;
  [field: string]: unknown;
}

function record(context: JobContext, fields: Record<string, unknown>): void {
  const file = process.env.RECORD_FILE;
  if (!file) throw new Error('RECORD_FILE is not set');
  const line: RunRecord = { cmd: context.command, job: context.jobId, attempt: context.attempt, pid: process.pid, ...fields };
  appendFileSync(file, `${JSON.stringify(line)}\n`);
}

/** Keys added to Object.prototype since start, and what a fresh `{}` inherits as `polluted`. */
function pollution(): { addedKeys: string[]; polluted: unknown } {
  const addedKeys = Object.getOwnPropertyNames(Object.prototype).filter((key) => !PROTOTYPE_KEYS.has(key));
  return { addedKeys, polluted: ({} as Record<string, unknown>).polluted ?? null };
}

/** Whether this job already started somewhere (a record of its id exists): this run is a re-run. */
function ranBefore(jobId: string): boolean {
  const file = process.env.RECORD_FILE!;
  return existsSync(file) && readFileSync(file, 'utf8').includes(`"job":${JSON.stringify(jobId)}`);
}

/**
 * Holds its lease: records a "start" line, sleeps `ms`, records a "done"
 * line. With `rerunMs`, a run of a job that already started somewhere (a
 * re-run) sleeps that long instead, and both lines say `rerun` (the record
 * file is read only then: thousands of plain holds stay cheap).
 */
export const hold = queueCommand('hold', async function (this: JobContext, n: number, ms: number, rerunMs?: number) {
  const rerun = rerunMs === undefined ? undefined : ranBefore(this.jobId);
  record(this, { phase: 'start', n, rerun });
  await new Promise((resolve) => setTimeout(resolve, rerun ? rerunMs : ms));
  record(this, { phase: 'done', n, rerun });
  // Which process's run the job's result comes from (zombie.test.ts).
  return process.pid;
});

/**
 * Records and returns its arguments exactly, with what the consumer process
 * saw of prototypes: each object argument's own prototype check and what it
 * inherits as `polluted`, and whether Object.prototype itself changed.
 */
export const echo = queueCommand('echo', function (this: JobContext, ...args: unknown[]) {
  const objects = args.filter((arg): arg is object => typeof arg === 'object' && arg !== null);
  record(this, {
    args,
    argPrototypes: objects.map((arg) => (DECODED_PROTOTYPES.has(Object.getPrototypeOf(arg) as object | null) ? 'clean' : 'foreign')),
    argInherited: objects.map((arg) => (Object.hasOwn(arg, 'polluted') ? null : ((arg as Record<string, unknown>).polluted ?? null))),
    ...pollution(),
  });
  return args;
});

/** For arguments too big to record: their length and SHA-256. */
export const digest = queueCommand('digest', function (this: JobContext, text: string) {
  const sha256 = createHash('sha256').update(text, 'utf8').digest('hex');
  record(this, { length: text.length, sha256 });
  return { length: text.length, sha256 };
});

/** A valid job of the fuzz mix: records its number. */
export const numbered = queueCommand('numbered', function (this: JobContext, n: number) {
  record(this, { n });
});

/** Where fuzzed envelopes that decode land: records how many arguments arrived (never their content). */
export const sink = queueCommand('sink', function (this: JobContext, ...args: unknown[]) {
  record(this, { argc: args.length, ...pollution() });
});
