/**
 * A worker: idle → busy → idle, for its whole life. A job is not an actor and
 * not an event: the worker invokes ONE run-command actor when it starts and
 * hands it the JOB the reader dispatches — one message, or a share of a
 * backlog (`more`). The runner runs the share in turn and settles each job
 * with the queue adapter itself (ack, fail, deferred). When the share is
 * over it asks the reader for the next one (RUNNER_READY) and the reader
 * answers it directly, so a worker stays busy, hearing nothing, for as long
 * as the backlog lasts; the runner reports to the worker (SHARE_DONE) only
 * once the reader has nothing for it. A share of a backlog costs the actor
 * system one machine event (the reader's), not three.
 *
 * What the machine must decide still comes to it: a command that fails
 * (COMMAND_FAILED, its retry plan already made by the runner) fails the
 * worker — the `failed` state's entry throws a WorkerCommandError, the actor's
 * status becomes 'error', and the supervisor receives
 * `xstate.error.actor.<id>` (the seed's "that worker is taken out of the pool
 * and a new worker is started up to replace it"). Cancels, aborts, a drain and
 * a retirement go to the runner; the unstarted rest of a share goes back to
 * the queue from there.
 */
import { assertEvent, assign, enqueueActions, fromCallback, sendTo, setup, type ActorRefFrom, type AnyActorRef, type CallbackActorLogic } from 'xstate';
import type { ReaderEvent } from './reader.js';
import {
  expectEvent,
  readerActor,
  WorkerCommandError,
  type CommandFailure,
  type JobCancel,
  type JobEvent,
  type LeasedMessage,
  type RunnerInEvent,
  type RunnerOutEvent,
  type WorkerReadyEvent,
} from './protocol.js';

export interface WorkerInput {
  workerId: string;
}

export interface WorkerContext {
  workerId: string;
  /**
   * The first message of the share that made the worker busy; null when idle.
   * Later shares go from the reader to the runner without the worker hearing.
   */
  job: LeasedMessage | null;
  /** The rest of that share (the JOB's own array, not copied). */
  more: readonly LeasedMessage[];
  /** Jobs this worker has finished (settled by its runner): tells the reader a READY ends a dispatch. */
  finished: number;
  lastError: CommandFailure | null;
  /** Scaled down: stop after the current job instead of taking another. */
  retiring: boolean;
}

export type WorkerEvent =
  | JobEvent
  | RunnerOutEvent
  | { type: 'ABORT'; reason: string }
  /** The supervisor scales the pool down: finish what you are doing, then stop. */
  | { type: 'RETIRE' }
  /** The reader took this worker off its idle list: no job is on its way. */
  | { type: 'RETIRE_CONFIRMED' }
  /** The consumer drains: finish the current job, give the unstarted ones back. */
  | { type: 'DRAIN' }
  /** Jobs cancelled from another process (from the supervisor, to every worker). */
  | { type: 'CANCEL'; cancels: readonly JobCancel[] };

type ReaderRetireEvent = Extract<ReaderEvent, { type: 'WORKER_RETIRING' | 'WORKER_LOST' }>;

export interface RunCommandInput {
  workerId: string;
  /**
   * The worker itself. With it, the runner asks the reader for its next share
   * when one is over (RUNNER_READY, naming this worker); without it (a runner
   * hosted alone, in a test) it reports every share with SHARE_DONE.
   */
  worker?: AnyActorRef;
}

/** The run-command actor a worker talks to; real logic comes from actors/run-command.ts via provide(). */
export type RunCommandLogic = CallbackActorLogic<RunnerInEvent, RunCommandInput>;

const unconfiguredRunCommand: RunCommandLogic = fromCallback(() => {
  throw new Error('workerMachine: provide({ actors: { runCommand } }) before starting a worker');
});

const NO_MORE: readonly LeasedMessage[] = [];
const RELEASE_UNSTARTED: RunnerInEvent = { type: 'RELEASE_UNSTARTED' };

export const workerMachine = setup({
  types: {
    context: {} as WorkerContext,
    events: {} as WorkerEvent,
    input: {} as WorkerInput,
  },
  actors: { runCommand: unconfiguredRunCommand },
  actions: {
    announceReady: sendTo(readerActor, ({ self, context }): WorkerReadyEvent => ({ type: 'WORKER_READY', worker: self, done: context.finished > 0 })),
    /** Per dispatch: the share is kept as it came, for cancels and a failure of the worker itself. */
    takeShare: assign(({ event }) => {
      expectEvent(event, 'JOB');
      return { job: event.message, more: event.more ?? NO_MORE };
    }),
    /** Per dispatch: the JOB itself goes on to the runner (no copy); a retiring worker runs only its first message. */
    startShare: enqueueActions(({ context, event, enqueue }) => {
      expectEvent(event, 'JOB');
      enqueue.sendTo('runner', event);
      if (context.retiring) enqueue.sendTo('runner', RELEASE_UNSTARTED);
    }),
    /** Per dispatch: the runner settled the share's jobs with the queue itself. */
    finishShare: assign(({ context, event }) => {
      expectEvent(event, 'SHARE_DONE');
      return { job: null, more: NO_MORE, finished: context.finished + event.finished };
    }),
    /** Drain or retire: the share's unstarted messages go back to the queue (from the runner, which knows which). */
    releaseUnstarted: sendTo('runner', RELEASE_UNSTARTED),
    markRetiring: assign({ retiring: true }),
    /** Asks the reader to drop this worker from its idle list (a JOB may already be on its way). */
    requestRetirement: sendTo(readerActor, ({ self }): ReaderRetireEvent => ({ type: 'WORKER_RETIRING', worker: self })),
    /** Tells the reader a busy worker finished its last job and is gone. */
    reportRetired: sendTo(readerActor, ({ self }): ReaderRetireEvent => ({ type: 'WORKER_LOST', worker: self, busy: true })),
    recordFailure: assign({
      lastError: ({ event }) => {
        assertEvent(event, 'COMMAND_FAILED');
        const { type: _type, ...failure } = event;
        return failure;
      },
    }),
    /**
     * A busy worker's runner may be on a share the worker never saw (RUNNER_READY), so every
     * cancel goes to it: it acts on those of its share and keeps those of queued messages until it gets to them.
     */
    forwardCancels: sendTo('runner', ({ event }): RunnerInEvent => {
      assertEvent(event, 'CANCEL');
      return { type: 'CANCEL', cancels: event.cancels };
    }),
    forwardAbort: sendTo('runner', ({ event }): RunnerInEvent => {
      assertEvent(event, 'ABORT');
      return { type: 'ABORT', reason: event.reason };
    }),
    /** Fails the actor on purpose: its supervisor logs, records and replaces it. */
    throwCommandError: ({ context, self }) => {
      // xstate does not stop the children of an actor that errors: stop the runner first, or it leaks.
      // (`xstate.stop` is xstate's own event, outside the runner's typed events: hence AnyActorRef.)
      const runner: AnyActorRef | undefined = self.getSnapshot().children.runner;
      runner?.send({ type: 'xstate.stop' });
      const failure = context.lastError!;
      throw new WorkerCommandError(context.workerId, failure.message, failure, failure.unstarted);
    },
  },
  guards: {
    isRetiring: ({ context }) => context.retiring,
  },
}).createMachine({
  id: 'worker',
  context: ({ input }) => ({ workerId: input.workerId, job: null, more: NO_MORE, finished: 0, lastError: null, retiring: false }),
  invoke: { id: 'runner', src: 'runCommand', input: ({ context, self }) => ({ workerId: context.workerId, worker: self }) },
  on: { ABORT: { actions: 'forwardAbort' } },
  initial: 'idle',
  states: {
    idle: {
      entry: 'announceReady',
      on: {
        JOB: { target: 'busy', actions: 'takeShare' },
        RETIRE: { target: 'retiring', actions: 'markRetiring' },
      },
    },
    /** Waiting for the reader: either it confirms (no job coming) or a JOB already sent arrives. */
    retiring: {
      entry: 'requestRetirement',
      on: {
        RETIRE_CONFIRMED: 'retired',
        JOB: { target: 'busy', actions: 'takeShare' },
      },
    },
    busy: {
      entry: 'startShare',
      on: {
        SHARE_DONE: [
          { guard: 'isRetiring', target: 'retired', actions: ['finishShare', 'reportRetired'] },
          { target: 'idle', actions: 'finishShare' },
        ],
        CANCEL: { actions: 'forwardCancels' },
        COMMAND_FAILED: { target: 'failed', actions: 'recordFailure' },
        RETIRE: { actions: ['markRetiring', 'releaseUnstarted'] },
        DRAIN: { actions: 'releaseUnstarted' },
      },
    },
    retired: { type: 'final' },
    failed: {
      entry: 'throwCommandError',
    },
  },
});

export type WorkerActorRef = ActorRefFrom<typeof workerMachine>;
