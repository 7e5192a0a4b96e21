/**
 * The worker machine, driven for real with a fake run-command actor (via
 * `.provide()`) next to a fake queue adapter and a recording reader.
 */
import { describe, expect, it } from 'vitest';
import { createActor, type AnyActorRef, type InspectionEvent } from 'xstate';
import { WorkerCommandError, type JobResult, type LeasedMessage } from '../../src/machines/protocol.js';
import { workerMachine } from '../../src/machines/worker.js';
import {
  Coverage,
  describeCoverage,
  createFakeRunner,
  createHarness,
  inspectAll,
  messages,
  transitionCoveringPaths,
  type FakeRunner,
  type Harness,
} from './helpers.js';

const WORKER_ID = 'worker-7';
const modelCoverage = new Coverage(workerMachine);
const allCoverage = new Coverage(workerMachine);

function startWorker(runner: FakeRunner, inspect: (event: InspectionEvent) => void = allCoverage.inspect): Harness {
  return createHarness({
    logic: workerMachine.provide({ actors: { runCommand: runner.logic } }),
    id: WORKER_ID,
    input: { workerId: WORKER_ID },
    withReaderStub: true,
    inspect,
  });
}

const resultOf = (job: LeasedMessage, status: string): JobResult => ({ jobId: job.id, record: JSON.stringify({ status }), ttlMs: 60_000 });

const readies = (h: Harness) => h.readerReceived.filter((e) => e.type === 'WORKER_READY') as { type: string; worker: AnyActorRef; done: boolean }[];

// ── the abstract model: what an observer of one worker sees ────────────────

interface WorkerModel {
  value: 'idle' | 'busy' | 'retiring' | 'retired' | 'failed';
  /** Jobs acknowledged: done, or expired before they started. */
  acked: number;
  rejected: number;
  /** Held back by its gates: settled without an ack. */
  deferred: number;
  aborts: number;
  /** Scaled down: stops after the current job. */
  retire: boolean;
  /** Dispatched with the current job (a JOB with `more`), not started yet. */
  queued: number;
  /** Unstarted messages given back (drain, retire). */
  released: number;
  /** CANCELs the worker passed to its runner (those naming its current job). */
  cancels: number;
}
type WorkerStimulus =
  | { type: 'JOB' }
  /** A JOB with one more message: a share of a backlog. */
  | { type: 'JOB_SHARE' }
  | { type: 'DRAIN' }
  | { type: 'COMMAND_DONE' }
  | { type: 'MESSAGE_EXPIRED' }
  | { type: 'MESSAGE_REJECTED' }
  | { type: 'MESSAGE_DEFERRED' }
  | { type: 'COMMAND_FAILED' }
  /** The runner ended its job as cancelled: acked like a done one. */
  | { type: 'COMMAND_CANCELLED' }
  /** A cancel naming the current job: forwarded to the runner. */
  | { type: 'CANCEL' }
  /** A cancel for messages another worker holds: ignored. */
  | { type: 'CANCEL_OTHER' }
  | { type: 'ABORT' }
  | { type: 'RETIRE' }
  | { type: 'RETIRE_CONFIRMED' };

const MAX_JOBS = 3;
const MAX_ABORTS = 1;
const MAX_CANCELS = 1;

function reduceWorker(s: WorkerModel, e: WorkerStimulus): WorkerModel {
  const finish = (counts: Partial<WorkerModel>): WorkerModel => {
    if (s.retire) return { ...s, ...counts, value: 'retired', queued: 0, released: s.released + s.queued };
    if (s.queued > 0) return { ...s, ...counts, queued: s.queued - 1 }; // the next of its share starts
    return { ...s, ...counts, value: 'idle' };
  };
  switch (e.type) {
    case 'JOB':
      return { ...s, value: 'busy' };
    case 'JOB_SHARE':
      return { ...s, value: 'busy', queued: 1 };
    case 'DRAIN':
      return s.value === 'busy' ? { ...s, queued: 0, released: s.released + s.queued } : s;
    case 'COMMAND_DONE':
    case 'MESSAGE_EXPIRED':
    case 'COMMAND_CANCELLED':
      return finish({ acked: s.acked + 1 });
    case 'CANCEL':
      return { ...s, cancels: s.cancels + 1 };
    case 'CANCEL_OTHER':
      return s;
    case 'MESSAGE_REJECTED':
      return finish({ rejected: s.rejected + 1 });
    case 'MESSAGE_DEFERRED':
      return finish({ deferred: s.deferred + 1 });
    case 'COMMAND_FAILED':
      return { ...s, value: 'failed' };
    case 'ABORT':
      return { ...s, aborts: s.aborts + 1 };
    case 'RETIRE':
      return { ...s, retire: true, value: s.value === 'idle' ? 'retiring' : s.value };
    case 'RETIRE_CONFIRMED':
      return { ...s, value: 'retired' };
  }
}

function enabledWorker(s: WorkerModel): WorkerStimulus[] {
  const events: WorkerStimulus[] = [];
  if (s.value === 'failed' || s.value === 'retired') return events;
  const taken = s.acked + s.rejected + s.deferred + s.released;
  // retiring: the reader either confirms (no job coming) or a JOB it already sent arrives
  if ((s.value === 'idle' || s.value === 'retiring') && taken < MAX_JOBS) events.push({ type: 'JOB' });
  if ((s.value === 'idle' || s.value === 'retiring') && taken + 2 <= MAX_JOBS) events.push({ type: 'JOB_SHARE' });
  if (s.value === 'busy' && s.queued > 0) events.push({ type: 'DRAIN' });
  if (s.value === 'retiring') events.push({ type: 'RETIRE_CONFIRMED' });
  if (s.value === 'busy')
    events.push({ type: 'COMMAND_DONE' }, { type: 'MESSAGE_EXPIRED' }, { type: 'MESSAGE_REJECTED' }, { type: 'MESSAGE_DEFERRED' }, { type: 'COMMAND_FAILED' });
  if (s.value === 'busy') events.push({ type: 'COMMAND_CANCELLED' });
  if (s.value === 'busy' && s.cancels < MAX_CANCELS) events.push({ type: 'CANCEL' }, { type: 'CANCEL_OTHER' });
  if (!s.retire && (s.value === 'idle' || s.value === 'busy')) events.push({ type: 'RETIRE' });
  if (s.aborts < MAX_ABORTS) events.push({ type: 'ABORT' });
  return events;
}

describe('worker: model-based', () => {
  const paths = transitionCoveringPaths<WorkerModel, WorkerStimulus>(
    { value: 'idle', acked: 0, rejected: 0, deferred: 0, aborts: 0, retire: false, queued: 0, released: 0, cancels: 0 },
    reduceWorker,
    enabledWorker,
  );

  it(`drives the real worker along ${paths.length} paths covering every model transition`, () => {
    for (const path of paths) {
      const runner = createFakeRunner();
      const h = startWorker(runner, inspectAll(modelCoverage.inspect, allCoverage.inspect));
      const jobs: LeasedMessage[] = []; // started, in order
      const pending: LeasedMessage[] = []; // dispatched with the current one, not started
      const released: LeasedMessage[] = [];
      const trail: string[] = [];
      path.events.forEach((event, i) => {
        trail.push(event.type);
        const before = i === 0 ? path.states[0] : path.states[i - 1];
        const after = path.states[i]!;
        switch (event.type) {
          case 'JOB': {
            const [message] = messages(1);
            jobs.push(message!);
            h.sut.send({ type: 'JOB', message });
            break;
          }
          case 'JOB_SHARE': {
            const [message, next] = messages(2);
            jobs.push(message!);
            pending.push(next!);
            h.sut.send({ type: 'JOB', message, more: [next!] });
            break;
          }
          case 'DRAIN':
            h.sut.send({ type: 'DRAIN' });
            break;
          case 'COMMAND_DONE':
            runner.done(WORKER_ID, resultOf(jobs.at(-1)!, 'done'));
            break;
          case 'MESSAGE_EXPIRED':
            runner.expire(WORKER_ID, resultOf(jobs.at(-1)!, 'expired'));
            break;
          case 'MESSAGE_REJECTED':
            runner.reject(WORKER_ID, 'unknown command "nope"');
            break;
          case 'MESSAGE_DEFERRED':
            runner.defer(WORKER_ID);
            break;
          case 'COMMAND_FAILED':
            runner.fail(WORKER_ID, 'boom', 'sendMail');
            break;
          case 'COMMAND_CANCELLED':
            runner.cancelled(WORKER_ID, resultOf(jobs.at(-1)!, 'cancelled'));
            break;
          case 'CANCEL':
            h.sut.send({
              type: 'CANCEL',
              cancels: [
                { id: 'elsewhere', jobId: 'j0' },
                { id: jobs.at(-1)!.id, jobId: 'j1' },
              ],
            });
            break;
          case 'CANCEL_OTHER':
            h.sut.send({ type: 'CANCEL', cancels: [{ id: 'elsewhere', jobId: 'j0' }] });
            break;
          case 'ABORT':
            h.sut.send({ type: 'ABORT', reason: 'consumer forced to stop' });
            break;
          case 'RETIRE':
          case 'RETIRE_CONFIRMED':
            h.sut.send({ type: event.type });
            break;
        }
        // Where the model says the unstarted one started, or went back to the queue.
        if (after.released > (before?.released ?? 0)) released.push(...pending.splice(0));
        else if (after.queued < (before?.queued ?? 0) && after.value === 'busy') jobs.push(pending.shift()!);
        try {
          assertWorkerMatches(h, runner, after, jobs, path.states.slice(0, i + 1), pending, released);
        } catch (error) {
          throw new Error(`after ${trail.join(' → ')}: ${(error as Error).message}`, { cause: error });
        }
      });
      h.stop();
    }
  });
});

function assertWorkerMatches(
  h: Harness,
  runner: FakeRunner,
  m: WorkerModel,
  jobs: LeasedMessage[],
  history: WorkerModel[],
  pending: LeasedMessage[],
  released: LeasedMessage[],
): void {
  const snapshot = h.sut.getSnapshot();
  // unstarted messages given back in RELEASEs, each once
  expect(h.queue.of('RELEASE').flatMap((r) => r.messages.map((m) => m.id))).toEqual(released.map((m) => m.id));
  const record = runner.get(WORKER_ID);
  expect(runner.started).toBe(1);
  expect(record.runs.map((r) => r.id)).toEqual(jobs.map((j) => j.id));
  expect(record.aborts).toHaveLength(m.aborts);
  // only the cancels of its own messages reach the runner, and only when there is one
  expect(record.cancels).toHaveLength(m.cancels);
  for (const cancels of record.cancels) expect(cancels.map((c) => c.jobId)).toEqual(['j1']);
  const finished = m.acked + m.rejected + m.deferred;
  const acks = h.queue.of('ACK');
  expect(acks).toHaveLength(m.acked);
  // each ACK names its job and carries the result record the runner produced
  for (const ack of acks) expect(ack.result?.jobId).toBe(ack.id);
  expect(h.queue.of('FAIL')).toHaveLength(m.rejected);
  // a deferred job is settled with DEFERRED (its lease no longer kept), never acked
  expect(h.queue.of('DEFERRED')).toHaveLength(m.deferred);
  const ready = readies(h);
  // one WORKER_READY per time it became idle: at start and after each job it did not retire after
  expect(ready).toHaveLength(1 + history.filter((s, i) => s.value === 'idle' && i > 0 && history[i - 1]!.value === 'busy').length);
  // entering `retiring` asks the reader to take it off the idle list
  const retiring = h.readerReceived.filter((e) => e.type === 'WORKER_RETIRING') as { type: string; worker: AnyActorRef }[];
  expect(retiring).toHaveLength(history.filter((s, i) => s.value === 'retiring' && (i === 0 || history[i - 1]!.value !== 'retiring')).length);
  for (const r of retiring) expect(r.worker).toBe(h.sut);
  // finishing a job while retiring: the reader hears it is gone, not ready
  const lost = h.readerReceived.filter((e) => e.type === 'WORKER_LOST');
  expect(lost).toEqual(m.value === 'retired' && history.at(-2)?.value === 'busy' ? [{ type: 'WORKER_LOST', worker: h.sut, busy: true }] : []);
  if (m.value === 'failed') {
    expect(snapshot.status).toBe('error');
    const error = snapshot.error as WorkerCommandError;
    expect(error).toBeInstanceOf(WorkerCommandError);
    expect(error.job).toEqual(jobs.at(-1));
    expect(error.unstarted).toEqual(pending); // the supervisor releases them
    expect(h.parentReceived.filter((e) => e.type === `xstate.error.actor.${WORKER_ID}`)).toHaveLength(1);
    return;
  }
  if (m.value === 'retired') {
    expect(snapshot.status).toBe('done');
    expect(h.parentReceived.filter((e) => e.type === `xstate.done.actor.${WORKER_ID}`)).toHaveLength(1);
    // a final state stops the runner with it
    expect(record.stopped).toBe(true);
    return;
  }
  expect(snapshot.status).toBe('active');
  expect(snapshot.value).toBe(m.value);
  expect(snapshot.context.finished).toBe(finished);
  expect(snapshot.context.retiring).toBe(m.retire);
  expect(h.parentReceived.filter((e) => e.type.startsWith('xstate.'))).toHaveLength(0);
  expect(snapshot.context.queued).toEqual(pending);
  if (m.value === 'busy') {
    expect(snapshot.context.job).toEqual(jobs.at(-1));
    expect(record.current).toEqual(jobs.at(-1));
  } else {
    expect(snapshot.context.job).toBeNull();
    if (m.value === 'idle') {
      expect(ready.at(-1)!.done).toBe(finished > 0);
      expect(ready.at(-1)!.worker).toBe(h.sut);
    }
  }
}

// ── scenarios ──────────────────────────────────────────────────────────────

describe('worker: scenarios', () => {
  it('idle → JOB → busy → COMMAND_DONE → idle: ACK to the queue, WORKER_READY done:true to the reader', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    expect(h.sut.getSnapshot().value).toBe('idle');
    expect(readies(h)).toEqual([{ type: 'WORKER_READY', worker: h.sut, done: false }]);

    const [job] = messages(1);
    h.sut.send({ type: 'JOB', message: job });
    expect(h.sut.getSnapshot().value).toBe('busy');
    expect(runner.get(WORKER_ID).runs).toEqual([job]);

    runner.done(WORKER_ID);
    expect(h.sut.getSnapshot().value).toBe('idle');
    expect(h.queue.received).toEqual([{ type: 'ACK', id: job!.id, delivery: job!.delivery }]);
    expect(readies(h).at(-1)).toEqual({ type: 'WORKER_READY', worker: h.sut, done: true });
    expect(h.sut.getSnapshot().context).toMatchObject({ job: null, finished: 1 });
  });

  it('MESSAGE_REJECTED → FAIL with the reason to the queue, back to idle, no ACK', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    const [job] = messages(1, 'not json');
    h.sut.send({ type: 'JOB', message: job });
    runner.reject(WORKER_ID, 'invalid message: Unexpected token');
    expect(h.sut.getSnapshot().value).toBe('idle');
    expect(h.queue.received).toEqual([{ type: 'FAIL', message: job, error: 'invalid message: Unexpected token' }]);
    expect(readies(h).at(-1)!.done).toBe(true);
  });

  it('MESSAGE_EXPIRED (its `expires` passed before it started) is acknowledged with its result record, back to idle', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    const [job] = messages(1);
    h.sut.send({ type: 'JOB', message: job });
    const result = resultOf(job!, 'expired');
    runner.expire(WORKER_ID, result);
    expect(h.sut.getSnapshot().value).toBe('idle');
    expect(h.queue.received).toEqual([{ type: 'ACK', id: job!.id, delivery: job!.delivery, result }]);
    expect(readies(h).at(-1)!.done).toBe(true);
  });

  it('a failure carries the retry plan and result record on to the supervisor in the WorkerCommandError', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    const [job] = messages(1);
    h.sut.send({ type: 'JOB', message: job });
    const retry = { data: '{"attempt":2}', runAt: 1_700_000_000_000 };
    const result = resultOf(job!, 'retrying');
    runner.fail(WORKER_ID, new Error('flaky'), 'fetchFeed', { retry, result });
    expect(h.sut.getSnapshot().error).toMatchObject({ command: 'fetchFeed', retry, result });
  });

  it('COMMAND_FAILED fails the worker with a WorkerCommandError naming worker, job, command and cause', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    const [job] = messages(1);
    h.sut.send({ type: 'JOB', message: job });
    const cause = new TypeError('bad input');
    runner.fail(WORKER_ID, cause, 'resizeImage');

    const snapshot = h.sut.getSnapshot();
    expect(snapshot.status).toBe('error');
    const error = snapshot.error as WorkerCommandError;
    expect(error).toBeInstanceOf(WorkerCommandError);
    expect(error).toMatchObject({ workerId: WORKER_ID, job, command: 'resizeImage', jobId: `job-of-${job!.id}`, cause });
    expect(error.message).toBe(`command "resizeImage" failed in ${WORKER_ID}: bad input`);
    // the parent (the supervisor, in the real system) learns which child failed and why
    expect(h.parentReceived.at(-1)).toMatchObject({ type: `xstate.error.actor.${WORKER_ID}`, error });
    // nothing was acknowledged or failed by the worker itself: the supervisor records it
    expect(h.queue.received).toEqual([]);
  });

  it('a non-Error thrown value becomes the cause as an Error', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    h.sut.send({ type: 'JOB', message: messages(1)[0] });
    runner.fail(WORKER_ID, undefined, 'noop');
    const error = h.sut.getSnapshot().error as WorkerCommandError;
    expect(error.cause).toBeInstanceOf(Error);
    expect((error.cause as Error).message).toBe('undefined');
  });

  it('CANCEL: the cancels of its current job and of its queued share go to the runner; COMMAND_CANCELLED acks and runs the next', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    const [first, second, third] = messages(3);
    h.sut.send({ type: 'JOB', message: first!, more: [second!, third!] });
    h.sut.send({
      type: 'CANCEL',
      cancels: [
        { id: third!.id, jobId: 'j3' },
        { id: 'other', jobId: 'x' },
        { id: first!.id, jobId: 'j1' },
      ],
    });
    expect(runner.get(WORKER_ID).cancels).toEqual([
      [
        { id: third!.id, jobId: 'j3' },
        { id: first!.id, jobId: 'j1' },
      ],
    ]);
    runner.cancelled(WORKER_ID, resultOf(first!, 'cancelled'));
    expect(h.queue.of('ACK')).toEqual([{ type: 'ACK', id: first!.id, delivery: first!.delivery, result: resultOf(first!, 'cancelled') }]);
    expect(runner.get(WORKER_ID).current).toEqual(second);
    h.stop();
  });

  it('ABORT is forwarded to the runner, idle or busy, without changing state', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    h.sut.send({ type: 'ABORT', reason: 'first' });
    expect(h.sut.getSnapshot().value).toBe('idle');
    h.sut.send({ type: 'JOB', message: messages(1)[0] });
    h.sut.send({ type: 'ABORT', reason: 'second' });
    expect(h.sut.getSnapshot().value).toBe('busy');
    expect(runner.get(WORKER_ID).aborts).toEqual(['first', 'second']);
  });

  it('RETIRE while busy: finishes the job (ACK), tells the reader it is gone, and stops with its runner', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    const [job] = messages(1);
    h.sut.send({ type: 'JOB', message: job });
    h.sut.send({ type: 'RETIRE' });
    expect(h.sut.getSnapshot().value).toBe('busy');
    runner.done(WORKER_ID);
    expect(h.queue.of('ACK').map((a) => a.id)).toEqual([job!.id]);
    expect(h.readerReceived.at(-1)).toEqual({ type: 'WORKER_LOST', worker: h.sut, busy: true });
    expect(h.sut.getSnapshot().status).toBe('done');
    expect(runner.get(WORKER_ID).stopped).toBe(true);
  });

  it('RETIRE while idle: asks the reader; a JOB already on its way still runs, else RETIRE_CONFIRMED ends it', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    h.sut.send({ type: 'RETIRE' });
    expect(h.sut.getSnapshot().value).toBe('retiring');
    expect(h.readerReceived.at(-1)).toEqual({ type: 'WORKER_RETIRING', worker: h.sut });
    const [job] = messages(1);
    h.sut.send({ type: 'JOB', message: job });
    expect(runner.get(WORKER_ID).runs).toEqual([job]);
    runner.done(WORKER_ID);
    expect(h.sut.getSnapshot().status).toBe('done');

    const other = startWorker(createFakeRunner());
    other.sut.send({ type: 'RETIRE' });
    other.sut.send({ type: 'RETIRE_CONFIRMED' });
    expect(other.sut.getSnapshot().status).toBe('done');
    expect(other.parentReceived.at(-1)).toMatchObject({ type: `xstate.done.actor.${WORKER_ID}` });
  });

  it('runs many jobs through ONE runner actor (no actor per job)', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    for (let i = 0; i < 50; i++) {
      h.sut.send({ type: 'JOB', message: messages(1)[0] });
      runner.done(WORKER_ID);
    }
    expect(runner.started).toBe(1);
    expect(h.queue.of('ACK')).toHaveLength(50);
    expect(h.sut.getSnapshot().context.finished).toBe(50);
  });

  it('without a provided runCommand the worker fails with a message saying what to provide', () => {
    const actor = createActor(workerMachine, { input: { workerId: 'w' } });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    expect(String(errors[0] ?? actor.getSnapshot().error)).toMatch(/provide\(\{ actors: \{ runCommand \} \}\)/);
  });
});

describeCoverage(modelCoverage, allCoverage);
