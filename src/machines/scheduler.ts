/**
 * The scheduler: wakes at each minute boundary, asks every periodic command
 * whether that minute is due, and for each due one asks the queue adapter to
 * claim the slot `(command, minute)` and write the message in one atomic
 * step. The claim makes it exactly-once across ALL consumers running a
 * scheduler, so there is no "run only one scheduler" rule.
 *
 * - No drift: each wait is computed afresh from `now()` to the next boundary.
 * - No double fire: a minute ≤ the last one fired is skipped (the clock
 *   jumped back, or a timer woke early).
 * - After downtime only the current minute fires; missed runs are skipped.
 * - A failed claim/write is retried every `retryMs` while still in its minute.
 *
 * In a parallel region it also promotes due delayed jobs (cmd.schedule,
 * retries with a delay) to the ready queue every `promoteMs`.
 *
 * Time: timers come from xstate's clock and "now" from the `now` input, so
 * tests drive it with a SimulatedClock. The message of each run (its id, its
 * enqueuedAt) comes from the `newMessage` input: the machine reads no clock
 * of its own and makes no ids.
 */
import { assertEvent, assign, enqueueActions, sendTo, setup } from 'xstate';
import { queueActor, type QueueAdapterEvent, type QueueReplyEvent } from './protocol.js';

export interface PeriodicEntry {
  readonly name: string;
  /** Does the minute starting at this Date match? */
  readonly schedule: (date: Date) => boolean;
}

/**
 * The wire form of one run of a periodic command enqueued at `now` (ms), with
 * a fresh id: the consumer passes the codec's encoder.
 */
export type NewMessage = (command: string, now: number) => string;

export interface SchedulerInput {
  periodic: readonly PeriodicEntry[];
  /** The current time in ms (Date.now, or a test's simulated wall clock). */
  now: () => number;
  newMessage: NewMessage;
  /** How long a slot claim lives (it only has to outlast clock skew between consumers). Default 2 h. */
  slotTtlMs?: number;
  /** Retry interval for failed claims within the minute. Default 5 s. */
  retryMs?: number;
  /** How often delayed jobs that are due are promoted to the ready queue. Default 1 s. */
  promoteMs?: number;
}

/** One claim of a slot `(command, minute)`: kept whole from the first write to the last retry. */
export interface PendingSlot {
  readonly key: string;
  readonly name: string;
  readonly minute: number;
  /** The message written with the claim (retries write the same one). */
  readonly data: string;
}

export interface SchedulerContext {
  periodic: readonly PeriodicEntry[];
  now: () => number;
  newMessage: NewMessage;
  slotTtlMs: number;
  retryMs: number;
  promoteMs: number;
  /** Epoch minute last fired (floor(ms / 60 000)); null before the first. */
  lastMinute: number | null;
  /**
   * Claims sent (WRITE_UNIQUE) and not answered yet, one entry per write,
   * oldest first: a SLOT_FAILED is retried from its entry.
   */
  writing: readonly PendingSlot[];
  /** Slots whose claim failed and is to be retried (one entry per key). */
  pending: readonly PendingSlot[];
  paused: boolean;
}

export type SchedulerEvent = Extract<QueueReplyEvent, { type: 'SLOT_WRITTEN' | 'SLOT_FAILED' }> | { type: 'PAUSE' } | { type: 'RESUME' } | { type: 'STOP' };

const MINUTE = 60_000;

/** The slot key of a command at an epoch minute: readable and unique (UTC, so DST never reuses one). */
export function slotKey(name: string, minute: number): string {
  return `${name}@${new Date(minute * MINUTE).toISOString().slice(0, 16)}Z`;
}

function writeSlot(slot: PendingSlot, ttlMs: number): QueueAdapterEvent {
  return { type: 'WRITE_UNIQUE', key: slot.key, data: slot.data, ttlMs };
}

export const schedulerMachine = setup({
  types: {
    context: {} as SchedulerContext,
    events: {} as SchedulerEvent,
    input: {} as SchedulerInput,
  },
  actions: {
    /** Enqueues (claim + write) every command due in the current minute, once. */
    fireDueCommands: enqueueActions(({ context, enqueue }) => {
      const now = context.now();
      const minute = Math.floor(now / MINUTE);
      if (context.paused || (context.lastMinute !== null && minute <= context.lastMinute)) return;
      enqueue.assign({ lastMinute: minute });
      const at = new Date(minute * MINUTE);
      const fired: PendingSlot[] = [];
      for (const entry of context.periodic) {
        if (!entry.schedule(at)) continue;
        const slot: PendingSlot = { key: slotKey(entry.name, minute), name: entry.name, minute, data: context.newMessage(entry.name, now) };
        fired.push(slot);
        enqueue.sendTo(queueActor, writeSlot(slot, context.slotTtlMs));
      }
      if (fired.length > 0) enqueue.assign({ writing: [...context.writing, ...fired] });
    }),
    keepForRetry: assign(({ context, event }) => {
      assertEvent(event, 'SLOT_FAILED');
      const index = context.writing.findIndex((s) => s.key === event.key);
      // Not ours (written by a scheduler this one replaced): this one fired its own minute when it started.
      if (index === -1) return {};
      const slot = context.writing[index]!;
      const writing = context.writing.toSpliced(index, 1);
      return context.pending.some((p) => p.key === slot.key) ? { writing } : { writing, pending: [...context.pending, slot] };
    }),
    forgetSlot: assign(({ context, event }) => {
      assertEvent(event, 'SLOT_WRITTEN');
      const { key } = event;
      const index = context.writing.findIndex((s) => s.key === key);
      const writing = index === -1 ? context.writing : context.writing.toSpliced(index, 1);
      return context.pending.some((p) => p.key === key) ? { writing, pending: context.pending.filter((p) => p.key !== key) } : { writing };
    }),
    /** Retries failed slots still in their minute; older ones are given up (logged by logSlotGivenUp). */
    retryPending: enqueueActions(({ context, enqueue }) => {
      const minute = Math.floor(context.now() / MINUTE);
      const retried = context.pending.filter((s) => s.minute === minute);
      for (const slot of context.pending) {
        if (slot.minute === minute) enqueue.sendTo(queueActor, writeSlot(slot, context.slotTtlMs));
        else enqueue({ type: 'logSlotGivenUp', params: { key: slot.key } });
      }
      enqueue.assign({ pending: retried, writing: retried.length > 0 ? [...context.writing, ...retried] : context.writing });
    }),
    promoteDue: sendTo(queueActor, { type: 'PROMOTE' }),
    setPaused: assign({ paused: true }),
    clearPaused: assign({ paused: false }),
    // Logging effects; the consumer provides real ones. (`_: unknown`, not `_`: an
    // unannotated argument would defer these in TypeScript's inference, and
    // retryPending's `enqueue({ type: 'logSlotGivenUp', params })` would no longer check.)
    logSlotWritten: (_: unknown, _params: { key: string; id: string | null }) => {},
    logSlotFailed: (_: unknown, _params: { key: string; error: unknown }) => {},
    logSlotGivenUp: (_: unknown, _params: { key: string }) => {},
  },
  guards: {
    hasPending: ({ context }) => context.pending.length > 0,
  },
  delays: {
    untilNextMinute: ({ context }) => MINUTE - (context.now() % MINUTE),
    retryDelay: ({ context }) => context.retryMs,
    promoteInterval: ({ context }) => context.promoteMs,
  },
}).createMachine({
  id: 'scheduler',
  context: ({ input }) => ({
    periodic: input.periodic,
    now: input.now,
    newMessage: input.newMessage,
    slotTtlMs: input.slotTtlMs ?? 2 * 60 * MINUTE,
    retryMs: input.retryMs ?? 5_000,
    promoteMs: input.promoteMs ?? 1_000,
    lastMinute: null,
    writing: [],
    pending: [],
    paused: false,
  }),
  initial: 'running',
  on: {
    STOP: '.stopped',
    PAUSE: { actions: 'setPaused' },
    RESUME: { actions: 'clearPaused' },
  },
  states: {
    running: {
      type: 'parallel',
      states: {
        periodic: {
          initial: 'firing',
          states: {
            firing: {
              entry: 'fireDueCommands',
              always: 'waiting',
            },
            waiting: {
              after: { untilNextMinute: 'firing' },
              on: {
                SLOT_WRITTEN: {
                  actions: ['forgetSlot', { type: 'logSlotWritten', params: ({ event }) => event }],
                },
                SLOT_FAILED: {
                  target: '.retrying',
                  actions: ['keepForRetry', { type: 'logSlotFailed', params: ({ event }) => event }],
                },
              },
              initial: 'idle',
              states: {
                idle: {
                  always: { guard: 'hasPending', target: 'retrying' },
                },
                retrying: {
                  after: { retryDelay: { target: 'idle', actions: 'retryPending' } },
                },
              },
            },
          },
        },
        /** Delayed jobs (cmd.schedule, retries with a delay) become ready when due. */
        delayed: {
          initial: 'sleeping',
          states: {
            sleeping: {
              after: { promoteInterval: { target: 'sleeping', reenter: true, actions: 'promoteDue' } },
            },
          },
        },
      },
    },
    stopped: { type: 'final' },
  },
});
