/**
 * A worker: idle → busy → idle, for its whole life. A job is an event, not an
 * actor: the worker invokes ONE run-command actor when it starts and hands it
 * each job in turn, so nothing is created per job.
 *
 * A command that fails makes the worker fail: the `failed` state's entry
 * throws a WorkerCommandError, the actor's status becomes 'error', and the
 * supervisor receives `xstate.error.actor.<id>` — the seed's "that worker is
 * taken out of the pool and a new worker is started up to replace it".
 */
import { assign, fromCallback, sendTo, setup, type ActorRefFrom, type CallbackActorLogic } from 'xstate';
import {
  SYSTEM_IDS,
  WorkerCommandError,
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
  /** Jobs this worker has finished (ok or rejected): tells the reader a READY ends a job. */
  finished: number;
  lastError: Omit<Extract<RunnerOutEvent, { type: 'COMMAND_FAILED' }>, 'type'> | null;
}

export type WorkerEvent = JobEvent | RunnerOutEvent | { type: 'ABORT'; reason: string };

export interface RunCommandInput {
  workerId: string;
}

/** The run-command actor a worker talks to; real logic comes from actors/run-command.ts via provide(). */
export type RunCommandLogic = CallbackActorLogic<RunnerInEvent, RunCommandInput>;

const unconfiguredRunCommand: RunCommandLogic = fromCallback(() => {
  throw new Error('workerMachine: provide({ actors: { runCommand } }) before starting a worker');
});

export const workerMachine = setup({
  types: {
    context: {} as WorkerContext,
    events: {} as WorkerEvent,
    input: {} as WorkerInput,
  },
  actors: { runCommand: unconfiguredRunCommand },
  actions: {
    announceReady: sendTo(
      ({ system }) => system.get(SYSTEM_IDS.reader),
      ({ self, context }): WorkerReadyEvent => ({ type: 'WORKER_READY', worker: self, done: context.finished > 0 }),
    ),
    takeJob: assign({ job: ({ event }) => (event as JobEvent).message }),
    startJob: sendTo('runner', ({ context }): RunnerInEvent => ({ type: 'RUN', message: context.job! })),
    ackJob: sendTo(
      ({ system }) => system.get(SYSTEM_IDS.queue),
      ({ context, event }): QueueAdapterEvent => ({
        type: 'ACK',
        id: context.job!.id,
        result: (event as Extract<RunnerOutEvent, { type: 'COMMAND_DONE' | 'MESSAGE_EXPIRED' }>).result,
      }),
    ),
    rejectJob: sendTo(
      ({ system }) => system.get(SYSTEM_IDS.queue),
      ({ context, event }): QueueAdapterEvent => ({
        type: 'FAIL',
        message: context.job!,
        error: (event as Extract<RunnerOutEvent, { type: 'MESSAGE_REJECTED' }>).reason,
      }),
    ),
    finishJob: assign({ job: null, finished: ({ context }) => context.finished + 1 }),
    recordFailure: assign({
      lastError: ({ event }) => {
        const { type: _type, ...failure } = event as Extract<RunnerOutEvent, { type: 'COMMAND_FAILED' }>;
        return failure;
      },
    }),
    forwardAbort: sendTo('runner', ({ event }): RunnerInEvent => ({
      type: 'ABORT',
      reason: (event as { reason: string }).reason,
    })),
    /** Fails the actor on purpose: its supervisor logs, records and replaces it. */
    throwCommandError: ({ context }) => {
      throw new WorkerCommandError(context.workerId, context.job!, context.lastError!);
    },
  },
}).createMachine({
  id: 'worker',
  context: ({ input }) => ({ workerId: input.workerId, job: null, finished: 0, lastError: null }),
  invoke: { id: 'runner', src: 'runCommand', input: ({ context }) => ({ workerId: context.workerId }) },
  on: { ABORT: { actions: 'forwardAbort' } },
  initial: 'idle',
  states: {
    idle: {
      entry: 'announceReady',
      on: { JOB: { target: 'busy', actions: 'takeJob' } },
    },
    busy: {
      entry: 'startJob',
      on: {
        COMMAND_DONE: { target: 'idle', actions: ['ackJob', 'finishJob'] },
        MESSAGE_EXPIRED: { target: 'idle', actions: ['ackJob', 'finishJob'] },
        MESSAGE_REJECTED: { target: 'idle', actions: ['rejectJob', 'finishJob'] },
        COMMAND_FAILED: { target: 'failed', actions: 'recordFailure' },
      },
    },
    failed: {
      entry: 'throwCommandError',
    },
  },
});

export type WorkerActorRef = ActorRefFrom<typeof workerMachine>;
