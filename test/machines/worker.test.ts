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
  /** Shares the runner reported over (SHARE_DONE). */
  shares: number;
  /** Jobs those shares settled (acked by the runner, not by the worker). */
  settled: number;
  aborts: number;
  /** Scaled down: stops after the current job. */
  retire: boolean;
  /** Messages of the running share the runner has not started (its `more`, not released). */
  queued: number;
  /** RELEASE_UNSTARTED the worker sent its runner (drain, retire while busy, a JOB while retiring). */
  releaseRequests: number;
  /** CANCELs the worker passed to its runner (every one while busy). */
  cancels: number;
}
type WorkerStimulus =
  | { type: 'JOB' }
  /** A JOB with one more message: a share of a backlog. */
  | { type: 'JOB_SHARE' }
  | { type: 'DRAIN' }
  /** The runner settled the whole share with the queue itself and reports once. */
  | { type: 'SHARE_DONE' }
  | { type: 'COMMAND_FAILED' }
  /** A cancel naming the share's first message: forwarded to the runner. */
  | { type: 'CANCEL' }
  /** A cancel naming the share's queued message: forwarded too (the runner keeps it until it gets there). */
  | { type: 'CANCEL_QUEUED' }
  /**
   * A cancel for messages the worker never saw: another worker's, or those of a share its runner
   * took from the reader directly (RUNNER_READY). Forwarded too: only the runner knows its share.
   */
  | { type: 'CANCEL_OTHER' }
  | { type: 'ABORT' }
  | { type: 'RETIRE' }
  | { type: 'RETIRE_CONFIRMED' };

const MAX_JOBS = 3;
const MAX_ABORTS = 1;
const MAX_CANCELS = 1;

function reduceWorker(s: WorkerModel, e: WorkerStimulus): WorkerModel {
  switch (e.type) {
    case 'JOB':
    case 'JOB_SHARE': {
      const queued = e.type === 'JOB_SHARE' ? 1 : 0;
      // a retiring worker takes the JOB the reader already sent, and tells its runner to run only its first message
      return s.retire ? { ...s, value: 'busy', queued: 0, releaseRequests: s.releaseRequests + 1 } : { ...s, value: 'busy', queued };
    }
    case 'DRAIN':
      return s.value === 'busy' ? { ...s, queued: 0, releaseRequests: s.releaseRequests + 1 } : s;
    case 'SHARE_DONE': {
      const counts = { shares: s.shares + 1, settled: s.settled + 1 + s.queued, queued: 0 };
      return s.retire ? { ...s, ...counts, value: 'retired' } : { ...s, ...counts, value: 'idle' };
    }
    case 'CANCEL':
    case 'CANCEL_QUEUED':
    case 'CANCEL_OTHER':
      return { ...s, cancels: s.cancels + 1 };
    case 'COMMAND_FAILED':
      return { ...s, value: 'failed' };
    case 'ABORT':
      return { ...s, aborts: s.aborts + 1 };
    case 'RETIRE':
      if (s.value === 'idle') return { ...s, retire: true, value: 'retiring' };
      return { ...s, retire: true, queued: 0, releaseRequests: s.releaseRequests + 1 };
    case 'RETIRE_CONFIRMED':
      return { ...s, value: 'retired' };
  }
}

function enabledWorker(s: WorkerModel): WorkerStimulus[] {
  const events: WorkerStimulus[] = [];
  if (s.value === 'failed' || s.value === 'retired') return events;
  // retiring: the reader either confirms (no job coming) or a JOB it already sent arrives
  if ((s.value === 'idle' || s.value === 'retiring') && s.shares < MAX_JOBS) events.push({ type: 'JOB' }, { type: 'JOB_SHARE' });
  if (s.value === 'busy' && s.releaseRequests < 2) events.push({ type: 'DRAIN' });
  if (s.value === 'retiring') events.push({ type: 'RETIRE_CONFIRMED' });
  if (s.value === 'busy') events.push({ type: 'SHARE_DONE' }, { type: 'COMMAND_FAILED' });
  if (s.value === 'busy' && s.cancels < MAX_CANCELS) events.push({ type: 'CANCEL' }, { type: 'CANCEL_OTHER' });
  if (s.value === 'busy' && s.queued > 0 && s.cancels < MAX_CANCELS) events.push({ type: 'CANCEL_QUEUED' });
  if (!s.retire && (s.value === 'idle' || s.value === 'busy')) events.push({ type: 'RETIRE' });
  if (s.aborts < MAX_ABORTS) events.push({ type: 'ABORT' });
  return events;
}

describe('worker: model-based', () => {
  const paths = transitionCoveringPaths<WorkerModel, WorkerStimulus>(
    { value: 'idle', shares: 0, settled: 0, aborts: 0, retire: false, queued: 0, releaseRequests: 0, cancels: 0 },
    reduceWorker,
    enabledWorker,
  );

  it(`drives the real worker along ${paths.length} paths covering every model transition`, () => {
    for (const path of paths) {
      const runner = createFakeRunner();
      const h = startWorker(runner, inspectAll(modelCoverage.inspect, allCoverage.inspect));
      const dispatched: LeasedMessage[] = []; // every message handed over, in order
      let share: LeasedMessage[] = []; // the current share
      const forwarded: string[][] = []; // the message ids of each CANCEL that should reach the runner
      const trail: string[] = [];
      path.events.forEach((event, i) => {
        trail.push(event.type);
        const after = path.states[i]!;
        switch (event.type) {
          case 'JOB':
          case 'JOB_SHARE': {
            share = messages(event.type === 'JOB' ? 1 : 2);
            dispatched.push(...share);
            h.sut.send(share.length === 1 ? { type: 'JOB', message: share[0]! } : { type: 'JOB', message: share[0]!, more: share.slice(1) });
            break;
          }
          case 'DRAIN':
            h.sut.send({ type: 'DRAIN' });
            break;
          case 'SHARE_DONE':
            runner.done(WORKER_ID, resultOf(share[0]!, 'done'));
            break;
          case 'COMMAND_FAILED':
            runner.fail(WORKER_ID, 'boom', 'sendMail');
            break;
          case 'CANCEL':
          case 'CANCEL_QUEUED': {
            const id = (event.type === 'CANCEL' ? share[0] : share[1])!.id;
            forwarded.push(['elsewhere', id]);
            h.sut.send({
              type: 'CANCEL',
              cancels: [
                { id: 'elsewhere', jobId: 'j0' },
                { id, jobId: 'j1' },
              ],
            });
            break;
          }
          case 'CANCEL_OTHER':
            forwarded.push(['elsewhere']);
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
        try {
          assertWorkerMatches(h, runner, after, dispatched, share, forwarded, path.states.slice(0, i + 1));
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
  dispatched: LeasedMessage[],
  share: LeasedMessage[],
  forwarded: string[][],
  history: WorkerModel[],
): void {
  const snapshot = h.sut.getSnapshot();
  const record = runner.get(WORKER_ID);
  expect(runner.started).toBe(1);
  // each JOB goes on to the runner whole, once
  expect(record.runs.map((r) => r.id)).toEqual(dispatched.map((j) => j.id));
  expect(record.shares).toBe(m.shares + (m.value === 'busy' || m.value === 'failed' ? 1 : 0));
  expect(record.aborts).toHaveLength(m.aborts);
  expect(record.releaseRequests).toBe(m.releaseRequests);
  // every cancel sent while busy reaches the runner, whole
  expect(record.cancels.map((cancels) => cancels.map((c) => c.id))).toEqual(forwarded);
  // the worker itself settles nothing with the queue: its runner does, per job
  expect(h.queue.received.filter((e) => e.type !== 'ACK' && e.type !== 'RELEASE')).toEqual([]);
  const ready = readies(h);
  // one WORKER_READY per time it became idle: at start and after each share it did not retire after
  expect(ready).toHaveLength(1 + history.filter((s, i) => s.value === 'idle' && i > 0 && history[i - 1]!.value === 'busy').length);
  // entering `retiring` asks the reader to take it off the idle list
  const retiring = h.readerReceived.filter((e) => e.type === 'WORKER_RETIRING') as { type: string; worker: AnyActorRef }[];
  expect(retiring).toHaveLength(history.filter((s, i) => s.value === 'retiring' && (i === 0 || history[i - 1]!.value !== 'retiring')).length);
  for (const r of retiring) expect(r.worker).toBe(h.sut);
  // finishing its share while retiring: the reader hears it is gone, not ready
  const lost = h.readerReceived.filter((e) => e.type === 'WORKER_LOST');
  expect(lost).toEqual(m.value === 'retired' && history.at(-2)?.value === 'busy' ? [{ type: 'WORKER_LOST', worker: h.sut, busy: true }] : []);
  if (m.value === 'failed') {
    expect(snapshot.status).toBe('error');
    const error = snapshot.error as WorkerCommandError;
    expect(error).toBeInstanceOf(WorkerCommandError);
    expect(error.job).toEqual(share[0]);
    // the runner's unstarted rest (none once released): the supervisor releases them
    expect(error.unstarted).toEqual(m.queued > 0 ? share.slice(1) : []);
    expect(h.parentReceived.filter((e) => e.type === `xstate.error.actor.${WORKER_ID}`)).toHaveLength(1);
    // it stopped its runner before throwing
    expect(record.stopped).toBe(true);
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
  expect(snapshot.context.finished).toBe(m.settled);
  expect(snapshot.context.retiring).toBe(m.retire);
  expect(h.parentReceived.filter((e) => e.type.startsWith('xstate.'))).toHaveLength(0);
  if (m.value === 'busy') {
    expect(snapshot.context.job).toEqual(share[0]);
    expect(snapshot.context.more).toEqual(share.slice(1));
  } else {
    expect(snapshot.context.job).toBeNull();
    expect(snapshot.context.more).toEqual([]);
    if (m.value === 'idle') {
      expect(ready.at(-1)!.done).toBe(m.shares > 0);
      expect(ready.at(-1)!.worker).toBe(h.sut);
    }
  }
}

// ── scenarios ──────────────────────────────────────────────────────────────

describe('worker: scenarios', () => {
  it('idle → JOB → busy → SHARE_DONE → idle: the JOB goes to the runner as it came, WORKER_READY done:true to the reader', () => {
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
    expect(readies(h).at(-1)).toEqual({ type: 'WORKER_READY', worker: h.sut, done: true });
    expect(h.sut.getSnapshot().context).toMatchObject({ job: null, more: [], finished: 1 });
  });

  it('a share of three is one JOB in and one SHARE_DONE out: no machine event per job', () => {
    const runner = createFakeRunner();
    const events: string[] = [];
    const h = startWorker(runner, (event) => {
      allCoverage.inspect(event);
      if (event.type === '@xstate.event' && (event.actorRef as AnyActorRef).id === WORKER_ID) events.push(event.event.type);
    });
    const share = messages(3);
    h.sut.send({ type: 'JOB', message: share[0]!, more: share.slice(1) });
    expect(runner.get(WORKER_ID).runs).toEqual(share);
    runner.done(WORKER_ID);
    expect(events.filter((type) => !type.startsWith('xstate.'))).toEqual(['JOB', 'SHARE_DONE']);
    expect(h.sut.getSnapshot().context.finished).toBe(3);
    expect(readies(h)).toHaveLength(2);
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

  it('COMMAND_FAILED fails the worker with a WorkerCommandError naming worker, job, command, cause and the unstarted rest', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    const [job, rest] = messages(2);
    h.sut.send({ type: 'JOB', message: job!, more: [rest!] });
    const cause = new TypeError('bad input');
    runner.fail(WORKER_ID, cause, 'resizeImage');

    const snapshot = h.sut.getSnapshot();
    expect(snapshot.status).toBe('error');
    const error = snapshot.error as WorkerCommandError;
    expect(error).toBeInstanceOf(WorkerCommandError);
    expect(error).toMatchObject({ workerId: WORKER_ID, job, command: 'resizeImage', jobId: `job-of-${job!.id}`, cause, unstarted: [rest] });
    expect(error.message).toBe(`command "resizeImage" failed in ${WORKER_ID}: bad input`);
    // the parent (the supervisor, in the real system) learns which child failed and why
    expect(h.parentReceived.at(-1)).toMatchObject({ type: `xstate.error.actor.${WORKER_ID}`, error });
    // nothing was acknowledged, failed or released by the worker itself: the supervisor records it
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

  it('CANCEL: while busy every cancel goes to the runner whole (it may run a share the worker never saw); idle, none', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    h.sut.send({ type: 'CANCEL', cancels: [{ id: 'early', jobId: 'x' }] }); // idle: nothing to cancel
    const [first, second, third] = messages(3);
    h.sut.send({ type: 'JOB', message: first!, more: [second!, third!] });
    const mixed = [
      { id: third!.id, jobId: 'j3' },
      { id: 'other', jobId: 'x' },
      { id: first!.id, jobId: 'j1' },
    ];
    h.sut.send({ type: 'CANCEL', cancels: mixed });
    h.sut.send({ type: 'CANCEL', cancels: [{ id: 'other', jobId: 'x' }] });
    expect(runner.get(WORKER_ID).cancels).toEqual([mixed, [{ id: 'other', jobId: 'x' }]]);
    h.stop();
  });

  it('gives its runner its own ref, so that the runner can ask the reader for the next share in its name', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    expect(runner.get(WORKER_ID).input).toEqual({ workerId: WORKER_ID, worker: h.sut });
    h.stop();
  });

  it('DRAIN while busy asks the runner to release the unstarted rest; the share still ends with SHARE_DONE', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    const [first, second] = messages(2);
    h.sut.send({ type: 'JOB', message: first!, more: [second!] });
    h.sut.send({ type: 'DRAIN' });
    expect(runner.get(WORKER_ID).releaseRequests).toBe(1);
    expect(h.sut.getSnapshot().value).toBe('busy');
    runner.done(WORKER_ID);
    expect(h.sut.getSnapshot().value).toBe('idle');
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

  it('RETIRE while busy: the runner releases the unstarted rest, finishes its job, the reader hears it is gone, it stops with its runner', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    const [job, rest] = messages(2);
    h.sut.send({ type: 'JOB', message: job!, more: [rest!] });
    h.sut.send({ type: 'RETIRE' });
    expect(h.sut.getSnapshot().value).toBe('busy');
    expect(runner.get(WORKER_ID).releaseRequests).toBe(1);
    runner.done(WORKER_ID);
    expect(h.readerReceived.at(-1)).toEqual({ type: 'WORKER_LOST', worker: h.sut, busy: true });
    expect(h.sut.getSnapshot().status).toBe('done');
    expect(runner.get(WORKER_ID).stopped).toBe(true);
  });

  it('RETIRE while idle: asks the reader; a JOB already on its way still runs (its first message only), else RETIRE_CONFIRMED ends it', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    h.sut.send({ type: 'RETIRE' });
    expect(h.sut.getSnapshot().value).toBe('retiring');
    expect(h.readerReceived.at(-1)).toEqual({ type: 'WORKER_RETIRING', worker: h.sut });
    const [job, rest] = messages(2);
    h.sut.send({ type: 'JOB', message: job!, more: [rest!] });
    expect(runner.get(WORKER_ID).runs).toEqual([job, rest]);
    expect(runner.get(WORKER_ID).releaseRequests).toBe(1);
    runner.done(WORKER_ID);
    expect(h.sut.getSnapshot().status).toBe('done');

    const other = startWorker(createFakeRunner());
    other.sut.send({ type: 'RETIRE' });
    other.sut.send({ type: 'RETIRE_CONFIRMED' });
    expect(other.sut.getSnapshot().status).toBe('done');
    expect(other.parentReceived.at(-1)).toMatchObject({ type: `xstate.done.actor.${WORKER_ID}` });
  });

  it('runs many shares through ONE runner actor (no actor per job)', () => {
    const runner = createFakeRunner();
    const h = startWorker(runner);
    for (let i = 0; i < 50; i++) {
      h.sut.send({ type: 'JOB', message: messages(1)[0] });
      runner.done(WORKER_ID);
    }
    expect(runner.started).toBe(1);
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
