/**
 * The reader: demand-driven reads. Idle workers announce themselves
 * (WORKER_READY); the reader reads up to `idle workers + prefetch` messages
 * in one batch, hands one to each idle worker and keeps the rest in a small
 * buffer for the next worker that frees up. With prefetch, the next batch is
 * asked for once the buffer is down to half the prefetch while workers run,
 * so a backlog's workers never wait out a read's round trip.
 *
 * An empty polling queue is polled again after `delay`, growing by `backoff`
 * up to `maxDelay` (the seed's consumer switches); a blocking backend is
 * asked to WAIT instead. Read errors back off the same way, so an outage is
 * ridden out, never fatal. On DRAIN it stops reading at once, releases the
 * buffer and reports READER_DRAINED when no dispatched job is still running.
 *
 * When the buffer holds more than the idle workers can take one each (a
 * backlog, with prefetch), each idle worker gets its share in one JOB, up to
 * MAX_JOBS_PER_DISPATCH: it runs them in turn, so a job costs one machine
 * event instead of three. `inFlight` counts dispatches, not messages.
 *
 * The idle list and the buffer are mutated in place on the per-job path
 * (addIdleWorker, acceptMessages, dispatch), so it allocates nothing per job
 * beyond the events themselves; the rare paths (a worker lost or retiring,
 * the drain) replace them through assign.
 */
import { assertEvent, assign, enqueueActions, sendParent, sendTo, setup, type AnyActorRef } from 'xstate';
import { expectEvent, queueActor, type JobEvent, type LeasedMessage, type QueueAdapterEvent, type QueueReplyEvent, type WorkerReadyEvent } from './protocol.js';

export interface ReaderOptions {
  /** Messages read ahead of demand and buffered. Default 0 (the lease clock starts at read). */
  prefetch: number;
  /** First poll interval of an empty polling queue, ms. */
  delayMs: number;
  /** Poll interval growth factor when empty (≥ 1). */
  backoff: number;
  /** Poll interval ceiling, ms. */
  maxDelayMs: number;
  /** Ask the adapter to WAIT (server-side blocking) instead of polling. */
  blocking: boolean;
  /** Longest single WAIT, ms. */
  waitTimeoutMs: number;
}

/**
 * The most messages one JOB hands a worker. A worker runs them one after the
 * other, so a slow one delays the rest of its share: small enough that this
 * stays a short wait, large enough that the per-job cost of the actor system
 * (three events per dispatch) is spread thin.
 */
export const MAX_JOBS_PER_DISPATCH = 16;

export const DEFAULT_READER_OPTIONS: ReaderOptions = {
  prefetch: 0,
  delayMs: 100,
  backoff: 1.15,
  maxDelayMs: 10_000,
  blocking: false,
  waitTimeoutMs: 5_000,
};

export interface ReaderContext extends ReaderOptions {
  /**
   * Workers waiting for a job. Mutated in place per dispatch (push, pop): a
   * copy there would be one more allocation per job. Replaced through assign
   * when a worker leaves it any other way (lost, retiring).
   */
  idle: AnyActorRef[];
  /**
   * Messages read and not dispatched yet. Mutated in place per read and per
   * dispatch (push, shift, splice), for the same reason; replaced through
   * assign when released (drain).
   */
  buffer: LeasedMessage[];
  /** Dispatches (JOB events) whose worker has not come back (READY or LOST). */
  inFlight: number;
  /** A READ is out and its MESSAGES/READ_FAILED not back yet. */
  readPending: boolean;
  /** The current empty-queue / error poll interval. */
  currentDelayMs: number;
  paused: boolean;
}

export type ReaderEvent =
  | WorkerReadyEvent
  | { type: 'WORKER_LOST'; worker: AnyActorRef | undefined; busy: boolean }
  /** An idle worker is being scaled away: confirm if it is still on the idle list (else a JOB is on its way to it). */
  | { type: 'WORKER_RETIRING'; worker: AnyActorRef }
  | Extract<QueueReplyEvent, { type: 'MESSAGES' | 'READ_FAILED' | 'WAKE' }>
  | { type: 'PAUSE' }
  | { type: 'RESUME' }
  | { type: 'DRAIN' };

export const readerMachine = setup({
  types: {
    context: {} as ReaderContext,
    events: {} as ReaderEvent,
    input: {},
  },
  actions: {
    /** Per dispatch (in place): the worker joins the idle list; if it just finished a job, that job is back. */
    addIdleWorker: assign(({ context, event }) => {
      expectEvent(event, 'WORKER_READY');
      context.idle.push(event.worker);
      return event.done ? { inFlight: context.inFlight - 1 } : {};
    }),
    countReturnedWorker: assign(({ context, event }) => {
      assertEvent(event, 'WORKER_READY');
      return event.done ? { inFlight: context.inFlight - 1 } : {};
    }),
    forgetWorker: assign(({ context, event }) => {
      assertEvent(event, 'WORKER_LOST');
      const { worker, busy } = event;
      const index = worker ? context.idle.indexOf(worker) : -1;
      const idle = index === -1 ? context.idle : context.idle.toSpliced(index, 1);
      return busy ? { idle, inFlight: context.inFlight - 1 } : { idle };
    }),
    confirmRetirement: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'WORKER_RETIRING');
      const { worker } = event;
      const index = context.idle.indexOf(worker);
      if (index === -1) return;
      enqueue.assign({ idle: context.idle.toSpliced(index, 1) });
      enqueue.sendTo(worker, { type: 'RETIRE_CONFIRMED' });
    }),
    /** Hands buffered messages to idle workers: one each, or an even share of a backlog. */
    dispatch: enqueueActions(({ context, enqueue }) => {
      const { idle, buffer } = context;
      let sent = 0;
      while (idle.length > 0 && buffer.length > 0) {
        const share = Math.min(MAX_JOBS_PER_DISPATCH, Math.ceil(buffer.length / idle.length));
        const message = buffer.shift()!;
        const job: JobEvent = share > 1 ? { type: 'JOB', message, more: buffer.splice(0, share - 1) } : { type: 'JOB', message };
        enqueue.sendTo(idle.pop()!, job);
        sent++;
      }
      if (sent > 0) enqueue.assign({ inFlight: context.inFlight + sent });
    }),
    requestRead: enqueueActions(({ context, enqueue }) => {
      const max = context.idle.length + context.prefetch - context.buffer.length;
      const read: QueueAdapterEvent = { type: 'READ', max };
      enqueue.assign({ readPending: true });
      enqueue.sendTo(queueActor, read);
    }),
    /** Per read (in place): the batch joins the buffer. */
    acceptMessages: assign(({ context, event }) => {
      expectEvent(event, 'MESSAGES');
      for (const message of event.messages) context.buffer.push(message);
      return { readPending: false };
    }),
    readSettled: assign({ readPending: false }),
    resetDelay: assign(({ context }) => ({ currentDelayMs: context.delayMs })),
    growDelay: assign(({ context }) => ({
      currentDelayMs: Math.min(context.maxDelayMs, context.currentDelayMs * context.backoff),
    })),
    requestWait: sendTo(queueActor, ({ context }): QueueAdapterEvent => ({ type: 'WAIT', timeoutMs: context.waitTimeoutMs })),
    /** Gives unstarted messages (buffered, or arriving after DRAIN) back to the queue. */
    releaseBuffer: enqueueActions(({ context, enqueue }) => {
      if (context.buffer.length === 0) return;
      const release: QueueAdapterEvent = { type: 'RELEASE', messages: context.buffer.slice() };
      enqueue.assign({ buffer: [] });
      enqueue.sendTo(queueActor, release);
    }),
    releaseArrivals: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'MESSAGES');
      const { messages } = event;
      if (messages.length === 0) return;
      const release: QueueAdapterEvent = { type: 'RELEASE', messages };
      enqueue.sendTo(queueActor, release);
    }),
    setPaused: assign({ paused: true }),
    clearPaused: assign({ paused: false }),
    reportDrained: sendParent({ type: 'READER_DRAINED' }),
  },
  guards: {
    /**
     * Per dispatch. Reads once the buffer can no longer give each idle worker
     * one message or, with prefetch and workers busy, once it is down to half
     * the prefetch: the next batch is then on its way while they run the rest,
     * instead of the workers waiting a whole round trip for it.
     */
    needsRead: ({ context }) => {
      if (context.paused || context.readPending) return false;
      const { length } = context.buffer;
      return length < context.idle.length || (context.inFlight > 0 && length < context.idle.length + (context.prefetch >> 1));
    },
    /** Per read. */
    emptyBatch: ({ event }) => {
      expectEvent(event, 'MESSAGES');
      return event.messages.length === 0;
    },
    isBlocking: ({ context }) => context.blocking,
    isDrained: ({ context }) => context.inFlight <= 0 && !context.readPending,
  },
  delays: {
    pollDelay: ({ context }) => context.currentDelayMs,
  },
}).createMachine({
  id: 'reader',
  context: ({ input }) => {
    const options = { ...DEFAULT_READER_OPTIONS, ...input };
    return { ...options, idle: [], buffer: [], inFlight: 0, readPending: false, currentDelayMs: options.delayMs, paused: false };
  },
  initial: 'active',
  on: {
    DRAIN: '.draining',
  },
  states: {
    active: {
      initial: 'waiting',
      on: {
        WORKER_READY: { actions: ['addIdleWorker', 'dispatch'] },
        WORKER_LOST: { actions: 'forgetWorker' },
        WORKER_RETIRING: { actions: 'confirmRetirement' },
        PAUSE: { actions: 'setPaused' },
        // No target: leaving `reading`/`blocked` would send a second READ and drop one reply.
        RESUME: { actions: 'clearPaused' },
      },
      states: {
        /** Enough buffered for the idle workers, or none idle: nothing to read. */
        waiting: {
          always: { guard: 'needsRead', target: 'reading' },
        },
        reading: {
          entry: 'requestRead',
          on: {
            MESSAGES: [
              { guard: 'emptyBatch', target: 'empty', actions: 'readSettled' },
              { target: 'waiting', actions: ['acceptMessages', 'resetDelay', 'dispatch'] },
            ],
            READ_FAILED: { target: 'backingOff', actions: 'readSettled' },
          },
        },
        /** The queue had nothing: wait on the server if it can block, else poll later. */
        empty: {
          always: [{ guard: 'isBlocking', target: 'blocked' }, { target: 'backingOff' }],
        },
        blocked: {
          entry: 'requestWait',
          on: { WAKE: 'waiting', READ_FAILED: 'backingOff' },
        },
        backingOff: {
          after: { pollDelay: { target: 'waiting', actions: 'growDelay' } },
          // The adapter promoted jobs it knows are due (a rate limit's booked start): read now.
          on: { READ_FAILED: {}, WAKE: { target: 'waiting', actions: 'resetDelay' } },
        },
      },
    },
    draining: {
      entry: 'releaseBuffer',
      always: { guard: 'isDrained', target: 'drained' },
      on: {
        WORKER_READY: { actions: 'countReturnedWorker' },
        WORKER_LOST: { actions: 'forgetWorker' },
        WORKER_RETIRING: { actions: 'confirmRetirement' },
        MESSAGES: { actions: ['readSettled', 'releaseArrivals'] },
        READ_FAILED: { actions: 'readSettled' },
      },
    },
    drained: {
      entry: 'reportDrained',
      type: 'final',
    },
  },
});
