/**
 * A worker: idle → busy → idle, for its whole life. A job is an event, not an
 * actor: the worker invokes ONE run-command actor when it starts and hands it
 * each job in turn, so nothing is created per job. With a backlog the reader
 * hands it several messages in one JOB (`more`): it runs them one after the
 * other without going idle in between, so a job costs one machine event (its
 * runner's outcome) instead of three. Messages it has not started go back to
 * the queue when it drains, retires or fails.
 *
 * A command that fails makes the worker fail: the `failed` state's entry
 * throws a WorkerCommandError, the actor's status becomes 'error', and the
 * supervisor receives `xstate.error.actor.<id>` — the seed's "that worker is
 * taken out of the pool and a new worker is started up to replace it".
 */
import { assertEvent, assign, enqueueActions, fromCallback, sendTo, setup, type ActorRefFrom, type AnyActorRef, type CallbackActorLogic } from 'xstate';
import type { ReaderEvent } from './reader.js';
import {
  expectEvent,
  queueActor,
  readerActor,
  WorkerCommandError,
  type JobCancel,
  type JobEvent,
  type LeasedMessage,
  type QueueAdapterEvent,
  type RunnerInEvent,
  type RunnerOutEvent,
  type WorkerReadyEvent,
} from './protocol.js';

export interface WorkerInput {
  workerId: string;
}

export interface WorkerContext {
  workerId: string;
  /** The job being run; null when idle. */
  job: LeasedMessage | null;
  /**
   * Dispatched with it, not started yet: run next, in order. Mutated in place
   * on the per-job path (takeJob, takeQueued): replacing it would allocate a
   * copy of the share for every job; everything else goes through assign.
   */
  queued: LeasedMessage[];
  /** Jobs this worker has finished (ok or rejected): tells the reader a READY ends a job. */
  finished: number;
  lastError: Omit<Extract<RunnerOutEvent, { type: 'COMMAND_FAILED' }>, 'type'> | null;
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
}

/** The run-command actor a worker talks to; real logic comes from actors/run-command.ts via provide(). */
export type RunCommandLogic = CallbackActorLogic<RunnerInEvent, RunCommandInput>;

const unconfiguredRunCommand: RunCommandLogic = fromCallback(() => {
  throw new Error('workerMachine: provide({ actors: { runCommand } }) before starting a worker');
});

/** The cancels for the job it runs or one of its queued messages. */
function ownCancels(context: WorkerContext, cancels: readonly JobCancel[]): JobCancel[] {
  return cancels.filter((c) => c.id === context.job?.id || context.queued.some((m) => m.id === c.id));
}

/** Keeps a transition list's literal types when it is defined outside the machine config. */
function transitionList<const T>(list: T): T {
  return list;
}

/**
 * A job's end, the same for each outcome (done, expired, rejected, deferred): settle it
 * with the queue, then stop if retiring, run the next of the share if there
 * is one, else go idle. `const` keeps the literal names, so the machine
 * config below still checks every guard, target and action.
 */
const jobSettled = transitionList([
  { guard: 'isRetiring', target: 'retired', actions: ['settleJob', 'finishJob', 'releaseQueued', 'reportRetired'] },
  { guard: 'hasQueued', actions: ['settleJob', 'finishJob', 'takeQueued', 'startJob'] },
  { target: 'idle', actions: ['settleJob', 'finishJob'] },
]);

export const workerMachine = setup({
  types: {
    context: {} as WorkerContext,
    events: {} as WorkerEvent,
    input: {} as WorkerInput,
  },
  actors: { runCommand: unconfiguredRunCommand },
  actions: {
    announceReady: sendTo(readerActor, ({ self, context }): WorkerReadyEvent => ({ type: 'WORKER_READY', worker: self, done: context.finished > 0 })),
    /** Per dispatch: the rest of the share is appended in place (`queued` is empty here). */
    takeJob: assign(({ context, event }) => {
      expectEvent(event, 'JOB');
      const { message, more } = event;
      if (more) for (const m of more) context.queued.push(m);
      return { job: message };
    }),
    /** Per job of a share: the next one is taken off the front in place. */
    takeQueued: assign(({ context }) => ({ job: context.queued.shift()! })),
    /** Unstarted messages go back to the queue (ready again, their delivery not counted). */
    releaseQueued: enqueueActions(({ context, enqueue }) => {
      if (context.queued.length === 0) return;
      const release: QueueAdapterEvent = { type: 'RELEASE', messages: context.queued.slice() };
      enqueue.assign({ queued: [] });
      enqueue.sendTo(queueActor, release);
    }),
    startJob: sendTo('runner', ({ context }): RunnerInEvent => ({ type: 'RUN', message: context.job! })),
    /** Per job: done or expired is acknowledged (with its result record), a message that cannot run is failed. */
    settleJob: sendTo(queueActor, ({ context, event }): QueueAdapterEvent => {
      switch (event.type) {
        case 'COMMAND_DONE':
        case 'COMMAND_CANCELLED':
        case 'MESSAGE_EXPIRED':
          return { type: 'ACK', id: context.job!.id, delivery: context.job!.delivery, result: event.result };
        case 'MESSAGE_REJECTED':
          return { type: 'FAIL', message: context.job!, error: event.reason };
        case 'MESSAGE_DEFERRED':
          return { type: 'DEFERRED', id: context.job!.id, delivery: context.job!.delivery };
        default:
          throw new Error(`worker: no job outcome in a ${event.type} event`);
      }
    }),
    finishJob: assign({ job: null, finished: ({ context }) => context.finished + 1 }),
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
    /** Only the cancels of its own messages reach the runner, which keeps those of queued ones until it gets to them. */
    forwardCancels: sendTo('runner', ({ context, event }): RunnerInEvent => {
      assertEvent(event, 'CANCEL');
      return { type: 'CANCEL', cancels: ownCancels(context, event.cancels) };
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
      throw new WorkerCommandError(context.workerId, context.job!, context.lastError!, [...context.queued]);
    },
  },
  guards: {
    isRetiring: ({ context }) => context.retiring,
    hasQueued: ({ context }) => context.queued.length > 0,
    holdsCancelled: ({ context, event }) => {
      assertEvent(event, 'CANCEL');
      return ownCancels(context, event.cancels).length > 0;
    },
  },
}).createMachine({
  id: 'worker',
  context: ({ input }) => ({ workerId: input.workerId, job: null, queued: [], finished: 0, lastError: null, retiring: false }),
  invoke: { id: 'runner', src: 'runCommand', input: ({ context }) => ({ workerId: context.workerId }) },
  on: { ABORT: { actions: 'forwardAbort' } },
  initial: 'idle',
  states: {
    idle: {
      entry: 'announceReady',
      on: {
        JOB: { target: 'busy', actions: 'takeJob' },
        RETIRE: { target: 'retiring', actions: 'markRetiring' },
      },
    },
    /** Waiting for the reader: either it confirms (no job coming) or a JOB already sent arrives. */
    retiring: {
      entry: 'requestRetirement',
      on: {
        RETIRE_CONFIRMED: 'retired',
        JOB: { target: 'busy', actions: 'takeJob' },
      },
    },
    busy: {
      entry: 'startJob',
      on: {
        COMMAND_DONE: jobSettled,
        MESSAGE_EXPIRED: jobSettled,
        MESSAGE_REJECTED: jobSettled,
        MESSAGE_DEFERRED: jobSettled,
        COMMAND_CANCELLED: jobSettled,
        CANCEL: { guard: 'holdsCancelled', actions: 'forwardCancels' },
        COMMAND_FAILED: { target: 'failed', actions: 'recordFailure' },
        RETIRE: { actions: 'markRetiring' },
        DRAIN: { actions: 'releaseQueued' },
      },
    },
    retired: { type: 'final' },
    failed: {
      entry: 'throwCommandError',
    },
  },
});

export type WorkerActorRef = ActorRefFrom<typeof workerMachine>;
