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
import { and, assign, enqueueActions, fromCallback, sendTo, setup, type AnyActorRef, type CallbackActorLogic } from 'xstate';
import { describeError } from '../shared/errors.js';
import { readerMachine, type ReaderEvent, type ReaderOptions } from './reader.js';
import { schedulerMachine, type PeriodicEntry } from './scheduler.js';
import { workerMachine } from './worker.js';
import { SYSTEM_IDS, WorkerCommandError, type LeasedMessage, type QueueAdapterEvent, type QueueReplyEvent } from './protocol.js';

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
  /** The scheduler's clock reading (tests pass a simulated one). Default Date.now. */
  now?: () => number;
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
  | Extract<QueueReplyEvent, { type: 'QUEUE_READY' | 'QUEUE_FAILED' | 'QUEUE_CLOSED' }>
  | { type: `xstate.error.actor.${string}`; error: unknown; actorId?: string }
  | { type: `xstate.done.actor.${string}`; actorId?: string };

export interface SupervisorOutput {
  forced: boolean;
  error: unknown;
}

type ChildError = { type: string; error: unknown; actorId?: string };

const workerFailureParams = ({ event }: { event: SupervisorEvent }) => ({
  workerId: childId(event as ChildError),
  error: (event as ChildError).error,
});
const childFailureParams = ({ event }: { event: SupervisorEvent }) => ({
  actorId: childId(event as ChildError),
  error: (event as ChildError).error,
});

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
function liveWorkers(self: AnyActorRef): AnyActorRef[] {
  const live: AnyActorRef[] = [];
  for (const [id, ref] of Object.entries(self.getSnapshot().children as Record<string, AnyActorRef | undefined>)) {
    if (id.startsWith('worker-') && ref?.getSnapshot().status === 'active') live.push(ref);
  }
  return live;
}

function childId(event: ChildError): string {
  return event.actorId ?? event.type.slice('xstate.error.actor.'.length);
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
      enqueue.spawnChild('scheduler', {
        id: 'scheduler',
        systemId: SYSTEM_IDS.scheduler,
        input: { periodic: context.periodicCommands, now: context.now },
      });
    }),
    /** Stops the failed worker and spawns its replacement under a fresh id, in one step. */
    replaceWorker: enqueueActions(({ context, event, enqueue }) => {
      const failedId = childId(event as ChildError);
      const slot = workerSlot(failedId);
      const restarts = context.restarts + 1;
      const newId = `worker-${slot}-r${restarts}`;
      enqueue.stopChild(failedId);
      enqueue.spawnChild('worker', { id: newId, input: { workerId: newId } });
      enqueue.assign({ restarts, workerIds: context.workerIds.map((id) => (id === failedId ? newId : id)) });
    }),
    replaceScheduler: enqueueActions(({ context, event, enqueue }) => {
      const n = context.schedulerRestarts + 1;
      enqueue.stopChild(childId(event as ChildError));
      enqueue.spawnChild('scheduler', {
        id: `scheduler-r${n}`,
        systemId: SYSTEM_IDS.scheduler,
        input: { periodic: context.periodicCommands, now: context.now },
      });
      enqueue.assign({ schedulerRestarts: n });
    }),
    /** The failed job goes to the failed store with its error; the reader stops counting it as in flight. */
    recordFailure: enqueueActions(({ event, self, system, enqueue }) => {
      const { error } = event as ChildError;
      const reader = system.get(SYSTEM_IDS.reader);
      if (!(error instanceof WorkerCommandError)) {
        // The worker itself broke (not its command): fail the job it held, if any, so it is not left leased.
        const child = self.getSnapshot().children[childId(event as ChildError)];
        const held = (child?.getSnapshot() as { context?: { job?: LeasedMessage | null; queued?: readonly LeasedMessage[] } } | undefined)?.context;
        const job = held?.job ?? null;
        const lost: ReaderEvent = { type: 'WORKER_LOST', worker: undefined, busy: job !== null };
        if (reader) enqueue.sendTo(reader, lost);
        if (job) {
          const fail: QueueAdapterEvent = { type: 'FAIL', message: job, error: describeError(error) };
          enqueue.sendTo(SYSTEM_IDS.queue, fail);
        }
        if (held?.queued?.length) {
          const release: QueueAdapterEvent = { type: 'RELEASE', ids: held.queued.map((m) => m.id) };
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
        const release: QueueAdapterEvent = { type: 'RELEASE', ids: error.unstarted.map((m) => m.id) };
        enqueue.sendTo(SYSTEM_IDS.queue, release);
      }
    }),
    countFailure: assign({ failures: ({ context }) => context.failures + 1 }),
    /** A failed child that is not replaced still has to be let go. */
    stopFailedChild: enqueueActions(({ event, enqueue }) => enqueue.stopChild(childId(event as ChildError))),
    /** Spawns workers in new slots, or retires the newest ones (they finish their job, then stop). */
    scalePool: enqueueActions(({ context, event, enqueue }) => {
      const target = (event as { workers: number }).workers;
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
    pauseReader: enqueueActions(({ system, enqueue }) => {
      const reader = system.get(SYSTEM_IDS.reader);
      if (reader) enqueue.sendTo(reader, { type: 'PAUSE' });
    }),
    resumeReader: enqueueActions(({ system, enqueue }) => {
      const reader = system.get(SYSTEM_IDS.reader);
      if (reader) enqueue.sendTo(reader, { type: 'RESUME' });
    }),
    pauseScheduler: enqueueActions(({ system, enqueue }) => {
      const scheduler = system.get(SYSTEM_IDS.scheduler);
      if (scheduler) enqueue.sendTo(scheduler, { type: 'PAUSE' });
    }),
    resumeScheduler: enqueueActions(({ system, enqueue }) => {
      const scheduler = system.get(SYSTEM_IDS.scheduler);
      if (scheduler) enqueue.sendTo(scheduler, { type: 'RESUME' });
    }),
    // A sendTo whose target resolves to undefined would deliver to the sender itself: look up first.
    drainReader: enqueueActions(({ system, enqueue }) => {
      const reader = system.get(SYSTEM_IDS.reader);
      if (reader) enqueue.sendTo(reader, { type: 'DRAIN' });
    }),
    stopScheduler: enqueueActions(({ system, enqueue }) => {
      const scheduler = system.get(SYSTEM_IDS.scheduler);
      if (scheduler) enqueue.sendTo(scheduler, { type: 'STOP' });
    }),
    /** Busy workers give back the messages of their share they have not started. */
    drainWorkers: enqueueActions(({ self, enqueue }) => {
      for (const ref of liveWorkers(self)) enqueue.sendTo(ref, { type: 'DRAIN' });
    }),
    abortWorkers: enqueueActions(({ self, enqueue }) => {
      for (const ref of liveWorkers(self)) enqueue.sendTo(ref, { type: 'ABORT', reason: 'consumer forced to stop' });
    }),
    closeQueue: sendTo(SYSTEM_IDS.queue, { type: 'CLOSE', release: true }),
    markForced: assign({ forced: true }),
    takeDrainDeadline: assign(({ context, event }) => {
      const ms = (event as { timeoutMs?: unknown }).timeoutMs;
      return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? { drainTimeoutMs: ms } : { drainTimeoutMs: context.drainTimeoutMs };
    }),
    keepError: assign({ error: ({ event }) => (event as { error?: unknown }).error }),
    // Logging effects; the consumer provides real ones.
    logRunning: () => {},
    logWorkerFailure: (_: unknown, _params: unknown) => {},
    logChildFailure: (_: unknown, _params: unknown) => {},
    logDraining: () => {},
    logForcing: () => {},
    logGaveUp: (_: unknown, _params: unknown) => {},
    logInvalidScale: (_: unknown, _params: unknown) => {},
  },
  guards: {
    isWorker: ({ event }) => childId(event as ChildError).startsWith('worker-'),
    /** A worker of the current pool (not one retired by SCALE, which is not replaced). */
    isPoolWorker: ({ context, event }) => context.workerIds.includes(childId(event as ChildError)),
    isValidScale: ({ event }) => {
      const n = (event as { workers: unknown }).workers;
      return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 1000;
    },
    isScheduler: ({ event }) => childId(event as ChildError).startsWith('scheduler'),
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
      now: input.now ?? Date.now,
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
    // A worker retired by SCALE reached its final state: let it go.
    'xstate.done.actor.*': {
      guard: 'isWorker',
      actions: enqueueActions(({ event, enqueue }) => enqueue.stopChild(childId(event as ChildError))),
    },
    // Outside `running` a failed child is logged and its job recorded, not replaced.
    'xstate.error.actor.*': {
      actions: ['countFailure', { type: 'logWorkerFailure', params: workerFailureParams }, 'recordFailure', 'stopFailedChild'],
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
              'stopFailedChild',
              { type: 'logGaveUp', params: ({ context }: { context: SupervisorContext }) => ({ restarts: context.restarts }) },
              'keepError',
            ],
          },
          {
            guard: 'isPoolWorker',
            actions: [
              'countFailure',
              { type: 'logWorkerFailure', params: workerFailureParams },
              'recordFailure',
              'replaceWorker',
            ],
          },
          {
            // A retired worker that failed on its last job: recorded, not replaced.
            guard: 'isWorker',
            actions: ['countFailure', { type: 'logWorkerFailure', params: workerFailureParams }, 'recordFailure', 'stopFailedChild'],
          },
          {
            guard: 'isScheduler',
            actions: [
              { type: 'logChildFailure', params: childFailureParams },
              'replaceScheduler',
            ],
          },
          {
            target: 'failing',
            actions: [
              { type: 'logChildFailure', params: childFailureParams },
              'keepError',
            ],
          },
        ],
        STOP: { target: 'draining', actions: 'takeDrainDeadline' },
        FORCE: 'forcing',
        SCALE: [{ guard: 'isValidScale', actions: 'scalePool' }, { actions: { type: 'logInvalidScale', params: ({ event }: { event: SupervisorEvent }) => event } }],
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
