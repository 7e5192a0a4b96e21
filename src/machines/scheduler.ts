/**
 * The scheduler: wakes at each minute boundary, asks every periodic command
 * whether that minute is due, and for each due one asks the queue adapter to
 * claim the slot `(command, minute)` and write the message in one atomic
 * step. The claim makes it exactly-once across ALL consumers running a
 * scheduler, so there is no "run only one scheduler" rule.
 *
 * An interval command (`every` ms) has a slot per `every` ms of epoch time
 * instead of per minute: the scheduler also wakes at each of its slot
 * boundaries, and claims `(command, slot start)` the same way, with the same
 * rules (no drift, no double fire, only the current slot after downtime,
 * retries within the slot).
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
  /** Does the minute starting at this Date match? (Not asked for an interval entry.) */
  readonly schedule: (date: Date) => boolean;
  /** An interval entry: a slot every this many ms of epoch time, instead of cron minutes. */
  readonly every?: number | undefined;
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
  /** The epoch minute of a cron slot; for an interval slot, the minute its slot starts in. */
  readonly minute: number;
  /** When the slot begins and ends (ms): a failed claim is retried while the clock is within them. */
  readonly start: number;
  readonly until: number;
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
  /** Per interval entry: the slot index last fired (floor(ms / every)). */
  lastSlots: Readonly<Record<string, number>>;
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

/** The slot key of an interval command's slot starting at `start` ms: to the ms, so it never equals a minute's key. */
export function intervalSlotKey(name: string, start: number): string {
  return `${name}@${new Date(start).toISOString()}`;
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
    /** Enqueues (claim + write) every command due in the current minute, and every interval slot begun, once. */
    fireDueCommands: enqueueActions(({ context, enqueue }) => {
      if (context.paused) return;
      const now = context.now();
      const minute = Math.floor(now / MINUTE);
      const fired: PendingSlot[] = [];
      const cronDue = context.lastMinute === null || minute > context.lastMinute;
      if (cronDue) enqueue.assign({ lastMinute: minute });
      let lastSlots: Record<string, number> | null = null;
      const at = new Date(minute * MINUTE);
      for (const entry of context.periodic) {
        let slot: PendingSlot;
        if (entry.every === undefined) {
          if (!cronDue || !entry.schedule(at)) continue;
          slot = {
            key: slotKey(entry.name, minute),
            name: entry.name,
            minute,
            start: minute * MINUTE,
            until: (minute + 1) * MINUTE,
            data: context.newMessage(entry.name, now),
          };
        } else {
          const index = Math.floor(now / entry.every);
          if (index <= (context.lastSlots[entry.name] ?? Number.NEGATIVE_INFINITY)) continue;
          (lastSlots ??= { ...context.lastSlots })[entry.name] = index;
          const start = index * entry.every;
          slot = {
            key: intervalSlotKey(entry.name, start),
            name: entry.name,
            minute,
            start,
            until: start + entry.every,
            data: context.newMessage(entry.name, now),
          };
        }
        fired.push(slot);
        enqueue.sendTo(queueActor, writeSlot(slot, context.slotTtlMs));
      }
      if (lastSlots) enqueue.assign({ lastSlots });
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
    /** Retries failed slots still in their minute (or interval slot); older ones are given up (logged by logSlotGivenUp). */
    retryPending: enqueueActions(({ context, enqueue }) => {
      const now = context.now();
      const current = (s: PendingSlot) => s.start <= now && now < s.until;
      const retried = context.pending.filter(current);
      for (const slot of context.pending) {
        if (current(slot)) enqueue.sendTo(queueActor, writeSlot(slot, context.slotTtlMs));
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
    /** To the next minute boundary, or an interval entry's next slot boundary when that comes first. */
    untilNextSlot: ({ context }) => {
      const now = context.now();
      let wait = MINUTE - (now % MINUTE);
      for (const entry of context.periodic) if (entry.every !== undefined) wait = Math.min(wait, entry.every - (now % entry.every));
      return wait;
    },
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
    lastSlots: {},
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
              after: { untilNextSlot: 'firing' },
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
