/**
 * The consumer supervisor: starting → running → draining → stopped (+ failed).
 *
 * It invokes the queue adapter (the only actor doing backend I/O) for its
 * whole life, and once the queue is open spawns the reader, N workers and
 * the scheduler. When a worker fails it logs the failure (worker id,
 * command, job id, stack), records the message in the failed store, stops
 * that worker and spawns a replacement under a new id — the pool stays at N.
 *
 * Every effect is a named action or actor, so tests swap them with
 * `.provide()`; consumer.ts provides the real logging and I/O.
 */
import {
  and,
  assertEvent,
  assign,
  enqueueActions,
  fromCallback,
  sendTo,
  setup,
  stopChild,
  type ActionFunction,
  type AnyActorRef,
  type CallbackActorLogic,
  type EventObject,
  type MachineContext,
  type ParameterizedObject,
  type ProvidedActor,
} from 'xstate';
import { describeError } from '../shared/errors.js';
import { readerMachine, type ReaderEvent, type ReaderOptions } from './reader.js';
import { schedulerMachine, type NewMessage, type PeriodicEntry, type SchedulerEvent, type SchedulerInput } from './scheduler.js';
import { workerMachine, type WorkerActorRef } from './worker.js';
import { systemActor, SYSTEM_IDS, WorkerCommandError, type QueueAdapterEvent, type QueueReplyEvent } from './protocol.js';

export interface SupervisorInput {
  /** Worker actors (the seed's --threads). Default 1. */
  workers?: number;
  /** Periodic commands the scheduler enqueues (when `periodic` is on). */
  periodicCommands?: readonly PeriodicEntry[];
  /** Enqueue periodic commands. Default true. The scheduler always runs: it also promotes delayed jobs. */
  periodic?: boolean;
  reader?: Partial<ReaderOptions>;
  /** How long a drain waits for running commands before forcing. Default 30 000 ms. */
  drainTimeoutMs?: number;
  /** Worker restarts after which the consumer gives up and fails. Default: unlimited. */
  maxRestarts?: number;
  /** The scheduler's clock reading: Date.now, or a test's simulated one. */
  now: () => number;
  /** The message of one run of a periodic command (the consumer passes the codec's encoder). */
  newMessage: NewMessage;
}

export interface SupervisorContext {
  workers: number;
  /** Current actor id per worker slot; a replacement gets a new id (`worker-3-r1`). */
  workerIds: string[];
  /** Highest slot number ever used: SCALE never reuses one (a retiring worker may still hold it). */
  lastSlot: number;
  restarts: number;
  failures: number;
  schedulerRestarts: number;
  maxRestarts: number;
  drainTimeoutMs: number;
  /** Periodic commands the scheduler enqueues: empty when `periodic` is off. */
  periodicCommands: readonly PeriodicEntry[];
  readerOptions: Partial<ReaderOptions>;
  now: () => number;
  newMessage: NewMessage;
  forced: boolean;
  error: unknown;
}

export type SupervisorEvent =
  /** Drain; force after `timeoutMs` (default: the input's drainTimeoutMs). A second STOP forces at once. */
  | { type: 'STOP'; timeoutMs?: number }
  | { type: 'FORCE' }
  /** Grow or shrink the pool; retired workers finish their current job first. */
  | { type: 'SCALE'; workers: number }
  /** Stop / restart reading (running jobs continue). */
  | { type: 'PAUSE' }
  | { type: 'RESUME' }
  /** Stop / restart enqueuing periodic commands (delayed jobs are still promoted). */
  | { type: 'PAUSE_PERIODIC' }
  | { type: 'RESUME_PERIODIC' }
  | { type: 'READER_DRAINED' }
  | Extract<QueueReplyEvent, { type: 'QUEUE_READY' | 'QUEUE_FAILED' | 'QUEUE_CLOSED' | 'CANCEL_REQUESTED' }>
  | { type: `xstate.error.actor.${string}`; error: unknown; actorId?: string }
  | { type: `xstate.done.actor.${string}`; actorId?: string };

export interface SupervisorOutput {
  forced: boolean;
  error: unknown;
}

/** A child failed (`xstate.error.actor.<id>`) or reached its final state (`xstate.done.actor.<id>`). */
type ChildErrorEvent = Extract<SupervisorEvent, { type: `xstate.error.actor.${string}` }>;
type ChildDoneEvent = Extract<SupervisorEvent, { type: `xstate.done.actor.${string}` }>;

const workerFailureParams = ({ event }: { event: ChildErrorEvent }) => ({ workerId: childId(event), error: event.error });
const childFailureParams = ({ event }: { event: ChildErrorEvent }) => ({ actorId: childId(event), error: event.error });

const unconfiguredQueueAdapter: CallbackActorLogic<QueueAdapterEvent> = fromCallback(() => {
  throw new Error('supervisorMachine: provide({ actors: { queueAdapter } }) before starting');
});

/** `worker-3-r2` → 3 */
function workerSlot(actorId: string): number {
  return Number(/^worker-(\d+)/.exec(actorId)?.[1] ?? 0);
}

/**
 * Every live worker child, including ones retiring after a SCALE down — by
 * reference, since a child stopped earlier in this step is gone by id.
 */
function liveWorkers(children: Record<string, AnyActorRef | undefined>): AnyActorRef[] {
  const live: AnyActorRef[] = [];
  for (const [id, ref] of Object.entries(children)) {
    if (!ref || !id.startsWith('worker-')) continue;
    if ((ref.getSnapshot() as { status: string }).status === 'active') live.push(ref);
  }
  return live;
}

function childId(event: ChildErrorEvent | ChildDoneEvent): string {
  return event.actorId ?? event.type.slice(event.type.indexOf('.actor.') + '.actor.'.length);
}

function schedulerInput(context: SupervisorContext): SchedulerInput {
  return { periodic: context.periodicCommands, now: context.now, newMessage: context.newMessage };
}

/**
 * Sends `event` to the actor registered under `systemId`, if there is one
 * (the reader and the scheduler come and go). A plain `sendTo` whose target
 * resolves to undefined would deliver to the sender itself: look up first.
 */
function sendToSystem<
  TContext extends MachineContext,
  TExpressionEvent extends EventObject,
  TParams extends ParameterizedObject['params'] | undefined,
  TEvent extends EventObject,
  TActor extends ProvidedActor,
  TAction extends ParameterizedObject,
  TGuard extends ParameterizedObject,
  TDelay extends string,
  TEmitted extends EventObject,
>(
  systemId: string,
  event: ReaderEvent | SchedulerEvent,
): ActionFunction<TContext, TExpressionEvent, TEvent, TParams, TActor, TAction, TGuard, TDelay, TEmitted> {
  return enqueueActions(({ system, enqueue }) => {
    const target = systemActor(system, systemId);
    if (target) enqueue.sendTo(target, event);
  });
}

/** A child spawned from the `worker` source: its snapshot is a worker's. */
function isWorkerRef(ref: AnyActorRef | undefined): ref is WorkerActorRef {
  return ref?.src === 'worker';
}

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as SupervisorInput,
    output: {} as SupervisorOutput,
  },
  actors: {
    queueAdapter: unconfiguredQueueAdapter,
    reader: readerMachine,
    worker: workerMachine,
    scheduler: schedulerMachine,
  },
  actions: {
    spawnChildren: enqueueActions(({ context, enqueue }) => {
      // The reader first: workers announce themselves to it as they start.
      enqueue.spawnChild('reader', { id: 'reader', systemId: SYSTEM_IDS.reader, input: context.readerOptions });
      for (const id of context.workerIds) enqueue.spawnChild('worker', { id, input: { workerId: id } });
      enqueue.spawnChild('scheduler', { id: 'scheduler', systemId: SYSTEM_IDS.scheduler, input: schedulerInput(context) });
    }),
    /** Stops the failed worker and spawns its replacement under a fresh id, in one step. */
    replaceWorker: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'xstate.error.actor.*');
      const failedId = childId(event);
      const slot = workerSlot(failedId);
      const restarts = context.restarts + 1;
      const newId = `worker-${slot}-r${restarts}`;
      enqueue.stopChild(failedId);
      enqueue.spawnChild('worker', { id: newId, input: { workerId: newId } });
      enqueue.assign({ restarts, workerIds: context.workerIds.map((id) => (id === failedId ? newId : id)) });
    }),
    replaceScheduler: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'xstate.error.actor.*');
      const n = context.schedulerRestarts + 1;
      enqueue.stopChild(childId(event));
      enqueue.spawnChild('scheduler', { id: `scheduler-r${n}`, systemId: SYSTEM_IDS.scheduler, input: schedulerInput(context) });
      enqueue.assign({ schedulerRestarts: n });
    }),
    /** The failed job goes to the failed store with its error; the reader stops counting it as in flight. */
    recordFailure: enqueueActions(({ event, self, system, enqueue }) => {
      assertEvent(event, 'xstate.error.actor.*');
      const { error } = event;
      const reader = systemActor(system, SYSTEM_IDS.reader);
      if (!(error instanceof WorkerCommandError)) {
        // The worker itself broke (not its command): fail the job it held, if any, so it is not left leased.
        // What it holds is the share that made it busy. Its runner is not stopped with it (xstate leaves
        // an errored actor's children running): it finishes the share it runs, which may be a later one
        // it had from the reader (RUNNER_READY), and asks for no more once its worker is gone.
        // Not covered: a worker that breaks in the very transition that takes a share (its JOB actions).
        // xstate discards that transition, so the snapshot read here holds no job: nothing is failed or
        // released, the reader hears it was idle (its in-flight count stays one high, so a drain waits
        // out its timeout), and the share's leases are extended until the consumer stops and releases
        // them. Only a bug in those two actions (an assign and a send) could do it.
        const child = self.getSnapshot().children[childId(event)];
        const held = isWorkerRef(child) ? child.getSnapshot().context : undefined;
        const job = held?.job ?? null;
        const lost: ReaderEvent = { type: 'WORKER_LOST', worker: undefined, busy: job !== null };
        if (reader) enqueue.sendTo(reader, lost);
        if (job) {
          const fail: QueueAdapterEvent = { type: 'FAIL', message: job, error: describeError(error) };
          enqueue.sendTo(SYSTEM_IDS.queue, fail);
        }
        // Its share as dispatched: the runner may have settled some already (a refused release is harmless).
        if (held?.more.length) {
          const release: QueueAdapterEvent = { type: 'RELEASE', messages: held.more.slice() };
          enqueue.sendTo(SYSTEM_IDS.queue, release);
        }
        return;
      }
      const lost: ReaderEvent = { type: 'WORKER_LOST', worker: undefined, busy: true };
      if (reader) enqueue.sendTo(reader, lost);
      // Retried if the command has attempts left, else kept in the failed store with its error.
      const record: QueueAdapterEvent = error.retry
        ? { type: 'RETRY', message: error.job, plan: error.retry, result: error.result }
        : { type: 'FAIL', message: error.job, error: describeError(error.cause), result: error.result };
      enqueue.sendTo(SYSTEM_IDS.queue, record);
      // The rest of its share never started: back to the queue for the next worker.
      if (error.unstarted.length > 0) {
        const release: QueueAdapterEvent = { type: 'RELEASE', messages: error.unstarted.slice() };
        enqueue.sendTo(SYSTEM_IDS.queue, release);
      }
    }),
    countFailure: assign({ failures: ({ context }) => context.failures + 1 }),
    /** A child that failed and is not replaced, or a worker retired by SCALE that reached its end: let go. */
    stopEndedChild: stopChild(({ event }) => {
      assertEvent(event, ['xstate.error.actor.*', 'xstate.done.actor.*']);
      return childId(event);
    }),
    /** Spawns workers in new slots, or retires the newest ones (they finish their job, then stop). */
    scalePool: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'SCALE');
      const target = event.workers;
      const current = context.workerIds;
      if (target > current.length) {
        let slot = context.lastSlot;
        const added: string[] = [];
        for (let i = current.length; i < target; i++) {
          const id = `worker-${++slot}`;
          added.push(id);
          enqueue.spawnChild('worker', { id, input: { workerId: id } });
        }
        enqueue.assign({ workers: target, workerIds: [...current, ...added], lastSlot: slot });
      } else if (target < current.length) {
        for (const id of current.slice(target)) enqueue.sendTo(id, { type: 'RETIRE' });
        enqueue.assign({ workers: target, workerIds: current.slice(0, target) });
      }
    }),
    pauseReader: sendToSystem(SYSTEM_IDS.reader, { type: 'PAUSE' }),
    resumeReader: sendToSystem(SYSTEM_IDS.reader, { type: 'RESUME' }),
    drainReader: sendToSystem(SYSTEM_IDS.reader, { type: 'DRAIN' }),
    pauseScheduler: sendToSystem(SYSTEM_IDS.scheduler, { type: 'PAUSE' }),
    resumeScheduler: sendToSystem(SYSTEM_IDS.scheduler, { type: 'RESUME' }),
    stopScheduler: sendToSystem(SYSTEM_IDS.scheduler, { type: 'STOP' }),
    /** Busy workers give back the messages of their share they have not started. */
    drainWorkers: enqueueActions(({ self, enqueue }) => {
      for (const ref of liveWorkers(self.getSnapshot().children)) enqueue.sendTo(ref, { type: 'DRAIN' });
    }),
    /** Every worker hears of the cancels; each acts on the ones for its own messages. */
    forwardCancels: enqueueActions(({ self, event, enqueue }) => {
      assertEvent(event, 'CANCEL_REQUESTED');
      for (const ref of liveWorkers(self.getSnapshot().children)) enqueue.sendTo(ref, { type: 'CANCEL', cancels: event.cancels });
    }),
    abortWorkers: enqueueActions(({ self, enqueue }) => {
      for (const ref of liveWorkers(self.getSnapshot().children)) enqueue.sendTo(ref, { type: 'ABORT', reason: 'consumer forced to stop' });
    }),
    closeQueue: sendTo(SYSTEM_IDS.queue, { type: 'CLOSE', release: true }),
    markForced: assign({ forced: true }),
    takeDrainDeadline: assign(({ context, event }) => {
      assertEvent(event, 'STOP');
      // Typed a number, but a control event may come from anywhere (a CLI, an inspector): checked as unknown.
      const ms: unknown = event.timeoutMs;
      return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? { drainTimeoutMs: ms } : { drainTimeoutMs: context.drainTimeoutMs };
    }),
    keepError: assign({
      error: ({ event }) => {
        assertEvent(event, ['QUEUE_FAILED', 'xstate.error.actor.*']);
        return event.error;
      },
    }),
    // Logging effects; the consumer provides real ones.
    logRunning: () => {},
    logWorkerFailure: (_: unknown, _params: { workerId: string; error: unknown }) => {},
    logChildFailure: (_: unknown, _params: { actorId: string; error: unknown }) => {},
    logDraining: () => {},
    logForcing: () => {},
    logGaveUp: (_: unknown, _params: { restarts: number }) => {},
    /** `workers` as sent, which isValidScale refused. */
    logInvalidScale: (_: unknown, _params: { workers: unknown }) => {},
  },
  guards: {
    isWorker: ({ event }) => {
      assertEvent(event, ['xstate.error.actor.*', 'xstate.done.actor.*']);
      return childId(event).startsWith('worker-');
    },
    /** A worker of the current pool (not one retired by SCALE, which is not replaced). */
    isPoolWorker: ({ context, event }) => {
      assertEvent(event, 'xstate.error.actor.*');
      return context.workerIds.includes(childId(event));
    },
    isValidScale: ({ event }) => {
      assertEvent(event, 'SCALE');
      // Typed a number, but a control event may come from anywhere: checked as unknown.
      const n: unknown = event.workers;
      return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 1000;
    },
    isScheduler: ({ event }) => {
      assertEvent(event, 'xstate.error.actor.*');
      return childId(event).startsWith('scheduler');
    },
    restartLimitReached: ({ context }) => context.restarts >= context.maxRestarts,
  },
  delays: {
    drainTimeout: ({ context }) => context.drainTimeoutMs,
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => {
    const workers = input.workers ?? 1;
    return {
      workers,
      workerIds: Array.from({ length: workers }, (_, i) => `worker-${i + 1}`),
      lastSlot: workers,
      restarts: 0,
      failures: 0,
      schedulerRestarts: 0,
      maxRestarts: input.maxRestarts ?? Number.POSITIVE_INFINITY,
      drainTimeoutMs: input.drainTimeoutMs ?? 30_000,
      periodicCommands: (input.periodic ?? true) ? (input.periodicCommands ?? []) : [],
      readerOptions: input.reader ?? {},
      now: input.now,
      newMessage: input.newMessage,
      forced: false,
      error: null,
    };
  },
  invoke: {
    id: SYSTEM_IDS.queue,
    systemId: SYSTEM_IDS.queue,
    src: 'queueAdapter',
    onError: { target: '.failed', actions: 'keepError' },
  },
  on: {
    // Running or draining alike: a cancelled job stops whichever state the consumer is in.
    CANCEL_REQUESTED: { actions: 'forwardCancels' },
    // A worker retired by SCALE reached its final state: let it go.
    'xstate.done.actor.*': { guard: 'isWorker', actions: 'stopEndedChild' },
    // Outside `running` a failed child is logged and its job recorded, not replaced.
    'xstate.error.actor.*': {
      actions: ['countFailure', { type: 'logWorkerFailure', params: workerFailureParams }, 'recordFailure', 'stopEndedChild'],
    },
  },
  initial: 'starting',
  states: {
    starting: {
      on: {
        QUEUE_READY: 'running',
        QUEUE_FAILED: { target: 'failed', actions: 'keepError' },
        STOP: 'closing',
        FORCE: 'closing',
      },
    },
    running: {
      entry: ['spawnChildren', 'logRunning'],
      on: {
        // The adapter itself died: nobody can close the queue any more.
        'xstate.error.actor.queue': { target: 'failed', actions: 'keepError' },
        'xstate.error.actor.*': [
          {
            guard: and(['isPoolWorker', 'restartLimitReached']),
            target: 'failing',
            actions: [
              'countFailure',
              { type: 'logWorkerFailure', params: workerFailureParams },
              'recordFailure',
              'stopEndedChild',
              { type: 'logGaveUp', params: ({ context }) => ({ restarts: context.restarts }) },
              'keepError',
            ],
          },
          {
            guard: 'isPoolWorker',
            actions: ['countFailure', { type: 'logWorkerFailure', params: workerFailureParams }, 'recordFailure', 'replaceWorker'],
          },
          {
            // A retired worker that failed on its last job: recorded, not replaced.
            guard: 'isWorker',
            actions: ['countFailure', { type: 'logWorkerFailure', params: workerFailureParams }, 'recordFailure', 'stopEndedChild'],
          },
          {
            guard: 'isScheduler',
            actions: [{ type: 'logChildFailure', params: childFailureParams }, 'replaceScheduler'],
          },
          {
            target: 'failing',
            actions: [{ type: 'logChildFailure', params: childFailureParams }, 'keepError'],
          },
        ],
        STOP: { target: 'draining', actions: 'takeDrainDeadline' },
        FORCE: 'forcing',
        SCALE: [{ guard: 'isValidScale', actions: 'scalePool' }, { actions: { type: 'logInvalidScale', params: ({ event }) => event } }],
        PAUSE: { actions: 'pauseReader' },
        RESUME: { actions: 'resumeReader' },
        PAUSE_PERIODIC: { actions: 'pauseScheduler' },
        RESUME_PERIODIC: { actions: 'resumeScheduler' },
      },
    },
    draining: {
      entry: ['logDraining', 'stopScheduler', 'drainReader', 'drainWorkers'],
      after: { drainTimeout: 'forcing' },
      on: {
        READER_DRAINED: 'closing',
        STOP: 'forcing',
        FORCE: 'forcing',
      },
    },
    forcing: {
      entry: ['logForcing', 'markForced', 'abortWorkers', 'closeQueue'],
      on: { QUEUE_CLOSED: 'stopped' },
    },
    closing: {
      entry: 'closeQueue',
      on: { QUEUE_CLOSED: 'stopped', FORCE: { actions: 'markForced' } },
    },
    failing: {
      entry: ['abortWorkers', 'closeQueue'],
      on: { QUEUE_CLOSED: 'failed' },
    },
    stopped: { type: 'final' },
    failed: { type: 'final' },
  },
  output: ({ context }) => ({ forced: context.forced, error: context.error }),
});
