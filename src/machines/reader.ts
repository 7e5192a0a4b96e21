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
 * MAX_JOBS_PER_DISPATCH: it runs them in turn, so the machine events of a
 * dispatch are spread over its jobs. `inFlight` counts dispatches, not
 * messages: the busy workers.
 *
 * A busy worker's runner that finished its share asks for the next one
 * itself (RUNNER_READY) and is answered directly: with a JOB from the buffer,
 * or from the read on its way (it waits in `askingRunners` meanwhile), or with
 * NO_JOB when no read is coming (an empty or failed read, a pause, a backoff,
 * the drain), whereupon its worker goes idle the usual way. Its worker stays
 * busy and in `inFlight` throughout, so a backlog's share costs one machine
 * event, this one.
 *
 * The idle list, the waiting runners and the buffer are mutated in place on
 * the per-share path (addIdleWorker, addAskingRunner, acceptMessages,
 * dispatch), so it allocates nothing per job
 * beyond the events themselves; the rare paths (a worker lost or retiring,
 * the drain) replace them through assign.
 */
import { assertEvent, assign, enqueueActions, sendParent, sendTo, setup, type AnyActorRef } from 'xstate';
import {
  expectEvent,
  queueActor,
  type JobEvent,
  type LeasedMessage,
  type QueueAdapterEvent,
  type QueueReplyEvent,
  type RunnerInEvent,
  type RunnerReadyEvent,
  type RunnerWithdrawEvent,
  type WorkerReadyEvent,
} from './protocol.js';

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
 * The most messages one JOB hands a worker (or its runner). They run one
 * after the other, so a slow one delays the rest of its share: small enough
 * that this stays a short wait, large enough that the per-job cost of the
 * actor system (one event per share of a backlog) is spread thin.
 */
export const MAX_JOBS_PER_DISPATCH = 16;

const NO_JOB: RunnerInEvent = { type: 'NO_JOB' };

/** The next taker's share of `length` buffered messages among `takers`: even, at most MAX_JOBS_PER_DISPATCH. */
const shareOf = (length: number, takers: number): number => Math.min(MAX_JOBS_PER_DISPATCH, Math.ceil(length / takers));

/**
 * Hands buffered messages out (in place): one each, or an even share of a backlog. Waiting
 * runners first (their workers are busy already), then idle workers. → how many idle workers
 * it made busy.
 */
function handOut(context: ReaderContext, send: (to: AnyActorRef, job: JobEvent) => void): number {
  const { idle, askingRunners, buffer } = context;
  let busied = 0;
  while (askingRunners.length + idle.length > 0 && buffer.length > 0) {
    const share = shareOf(buffer.length, askingRunners.length + idle.length);
    const message = buffer.shift()!;
    const job: JobEvent = share > 1 ? { type: 'JOB', message, more: buffer.splice(0, share - 1) } : { type: 'JOB', message };
    if (askingRunners.length > 0) send(askingRunners.pop()!.runner, job);
    else {
      send(idle.pop()!, job);
      busied++;
    }
  }
  return busied;
}

/**
 * What handOut leaves of a buffer of `length` messages among `takers` takers: the read is decided
 * on the state after the hand-out before the shares go, so the READ is sent ahead of them (a share
 * of synchronous jobs runs to its end as its JOB is delivered, and the READ would wait for it).
 */
function leftAfterHandOut(length: number, takers: number): number {
  while (takers > 0 && length > 0) {
    length -= shareOf(length, takers);
    takers--;
  }
  return length;
}

export const DEFAULT_READER_OPTIONS: ReaderOptions = {
  prefetch: 0,
  delayMs: 100,
  backoff: 1.15,
  maxDelayMs: 10_000,
  blocking: false,
  waitTimeoutMs: 5_000,
};

/** Answers every waiting runner NO_JOB and empties the list (what enqueueActions hands an action). */
function releaseEvery(
  context: ReaderContext,
  enqueue: { sendTo(to: AnyActorRef, event: RunnerInEvent): void; assign(values: Pick<ReaderContext, 'askingRunners'>): void },
): void {
  if (context.askingRunners.length === 0) return;
  for (const { runner } of context.askingRunners) enqueue.sendTo(runner, NO_JOB);
  enqueue.assign({ askingRunners: [] });
}

/** A busy worker's runner that asked for its next share (RUNNER_READY) and has no answer yet. */
export interface AskingRunner {
  worker: AnyActorRef;
  runner: AnyActorRef;
}

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
  /**
   * Runners of busy workers waiting for the read on its way. Mutated in place
   * per share (push, pop), like `idle`; replaced through assign otherwise.
   */
  askingRunners: AskingRunner[];
  /** Dispatches (JOB events to idle workers) whose worker has not come back (READY or LOST): the busy workers. */
  inFlight: number;
  /** A READ is out and its MESSAGES/READ_FAILED not back yet. */
  readPending: boolean;
  /** The current empty-queue / error poll interval. */
  currentDelayMs: number;
  paused: boolean;
}

export type ReaderEvent =
  | WorkerReadyEvent
  | RunnerReadyEvent
  | RunnerWithdrawEvent
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
      const askingRunners =
        worker && context.askingRunners.some((w) => w.worker === worker) ? context.askingRunners.filter((w) => w.worker !== worker) : context.askingRunners;
      return busy ? { idle, askingRunners, inFlight: context.inFlight - 1 } : { idle, askingRunners };
    }),
    /**
     * Per share of a backlog: the runner joins the takers (in place); `dispatch` serves it once
     * the read is decided. Its worker stays busy, counted in inFlight, so this changes no count:
     * no assign, and no copy of the context, on this path.
     */
    addAskingRunner: ({ context, event }) => {
      expectEvent(event, 'RUNNER_READY');
      context.askingRunners.push({ worker: event.worker, runner: event.runner });
    },
    /** No read is coming (blocked, backing off): the runner is served from the buffer now, or not at all. */
    serveRunner: enqueueActions(({ context, event, enqueue }) => {
      expectEvent(event, 'RUNNER_READY');
      context.askingRunners.push({ worker: event.worker, runner: event.runner });
      const busied = handOut(context, (to, job) => enqueue.sendTo(to, job));
      if (busied > 0) enqueue.assign({ inFlight: context.inFlight + busied });
      // Paused, no read is coming (a pending one may, but a pause should not keep a worker busy).
      if (context.paused) releaseEvery(context, enqueue);
    }),
    /** No read is coming: every waiting runner hears NO_JOB, reports its share over, and its worker goes idle. */
    releaseAskingRunners: enqueueActions(({ context, enqueue }) => releaseEvery(context, enqueue)),
    /** Its worker drains or retires: a runner still waiting is answered now. */
    withdrawRunner: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'RUNNER_WITHDRAW');
      const index = context.askingRunners.findIndex((w) => w.runner === event.runner);
      if (index === -1) return; // answered already: its JOB or NO_JOB is on its way
      enqueue.assign({ askingRunners: context.askingRunners.toSpliced(index, 1) });
      enqueue.sendTo(event.runner, NO_JOB);
    }),
    answerNoJob: sendTo(
      ({ event }) => (event as RunnerReadyEvent).runner,
      (): RunnerInEvent => NO_JOB,
    ),
    confirmRetirement: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'WORKER_RETIRING');
      const { worker } = event;
      const index = context.idle.indexOf(worker);
      if (index === -1) return;
      enqueue.assign({ idle: context.idle.toSpliced(index, 1) });
      enqueue.sendTo(worker, { type: 'RETIRE_CONFIRMED' });
    }),
    /**
     * Hands buffered messages out: one each, or an even share of a backlog. Waiting runners
     * first (their workers are busy already), then idle workers, which become busy. Paused, no
     * read is coming: a runner left without a share hears NO_JOB.
     */
    dispatch: enqueueActions(({ context, enqueue }) => {
      const busied = handOut(context, (to, job) => enqueue.sendTo(to, job));
      if (busied > 0) enqueue.assign({ inFlight: context.inFlight + busied });
      if (context.paused) releaseEvery(context, enqueue);
    }),
    /** Sized for the state after the hand-out that follows it (see leftAfterHandOut). */
    requestRead: enqueueActions(({ context, enqueue }) => {
      const { length } = context.buffer;
      const takers = context.idle.length + context.askingRunners.length;
      const max = takers - Math.min(takers, length) + context.prefetch - leftAfterHandOut(length, takers);
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
      // Judged on the state after the hand-out the buffer is due for (it follows the READ).
      const { length } = context.buffer;
      const takers = context.idle.length + context.askingRunners.length;
      const served = Math.min(takers, length);
      const left = leftAfterHandOut(length, takers);
      const unserved = takers - served;
      const busy = context.inFlight + Math.max(0, served - context.askingRunners.length);
      return left < unserved || (busy > 0 && left < unserved + (context.prefetch >> 1));
    },
    /** Per event: something to hand out, or (paused) a runner to answer. */
    canHandOut: ({ context }) =>
      (context.buffer.length > 0 && context.idle.length + context.askingRunners.length > 0) || (context.paused && context.askingRunners.length > 0),
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
    return { ...options, idle: [], buffer: [], askingRunners: [], inFlight: 0, readPending: false, currentDelayMs: options.delayMs, paused: false };
  },
  initial: 'active',
  on: {
    DRAIN: '.draining',
  },
  states: {
    active: {
      initial: 'waiting',
      // After `waiting`'s read decision, so a READ goes out before the shares (see leftAfterHandOut).
      always: { guard: 'canHandOut', actions: 'dispatch' },
      on: {
        WORKER_READY: { actions: 'addIdleWorker' },
        // A read is on its way or about to be asked for (`waiting`'s always): the runner waits for it.
        RUNNER_READY: { actions: 'addAskingRunner' },
        RUNNER_WITHDRAW: { actions: 'withdrawRunner' },
        WORKER_LOST: { actions: 'forgetWorker' },
        WORKER_RETIRING: { actions: 'confirmRetirement' },
        PAUSE: { actions: ['setPaused', 'releaseAskingRunners'] },
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
              { guard: 'emptyBatch', target: 'empty', actions: ['readSettled', 'releaseAskingRunners'] },
              { target: 'waiting', actions: ['acceptMessages', 'resetDelay'] },
            ],
            READ_FAILED: { target: 'backingOff', actions: ['readSettled', 'releaseAskingRunners'] },
          },
        },
        /** The queue had nothing: wait on the server if it can block, else poll later. */
        empty: {
          always: [{ guard: 'isBlocking', target: 'blocked' }, { target: 'backingOff' }],
        },
        blocked: {
          entry: 'requestWait',
          on: {
            WAKE: 'waiting',
            READ_FAILED: 'backingOff',
            // The queue was empty: a runner the buffer cannot serve is not kept busy for the wait.
            RUNNER_READY: { actions: ['serveRunner', 'releaseAskingRunners'] },
          },
        },
        backingOff: {
          after: { pollDelay: { target: 'waiting', actions: 'growDelay' } },
          on: {
            READ_FAILED: {},
            // The adapter promoted jobs it knows are due (a rate limit's booked start): read now.
            WAKE: { target: 'waiting', actions: 'resetDelay' },
            RUNNER_READY: { actions: ['serveRunner', 'releaseAskingRunners'] },
          },
        },
      },
    },
    draining: {
      entry: ['releaseBuffer', 'releaseAskingRunners'],
      always: { guard: 'isDrained', target: 'drained' },
      on: {
        WORKER_READY: { actions: 'countReturnedWorker' },
        RUNNER_READY: { actions: 'answerNoJob' },
        RUNNER_WITHDRAW: { actions: 'withdrawRunner' },
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
