/**
 * `periodicCommand({ every: ms }, fn)`: an interval schedule. Its slots are
 * the epoch cut into `every`-ms pieces (slot n starts at n × every ms since
 * the epoch, UTC), so every consumer computes the same slots from its own
 * clock, and the scheduler claims each slot once across all of them, as it
 * does a cron minute. At least 1 s: below that the claim round trips would be
 * most of the work.
 */
import { ConfigError, describeValue } from '../shared/errors.js';
import type { Schedule } from './engine.js';

export const MIN_INTERVAL_MS = 1_000;
/** About 24.8 days: the longest a timer can wait in one go. */
export const MAX_INTERVAL_MS = 2 ** 31 - 1;
const MINUTE = 60_000;

/** A Schedule that starts a slot every `every` ms. */
export interface IntervalSchedule extends Schedule {
  readonly every: number;
}

export function isIntervalSchedule(schedule: Schedule): schedule is IntervalSchedule {
  return typeof (schedule as Partial<IntervalSchedule>).every === 'number';
}

/** `{ every }` as a Schedule; a ConfigError naming `every` when it is no integer from 1,000 ms. */
export function intervalSchedule(every: unknown, where = 'periodicCommand'): IntervalSchedule {
  if (typeof every !== 'number' || !Number.isInteger(every) || every < MIN_INTERVAL_MS || every > MAX_INTERVAL_MS) {
    throw new ConfigError(`${where}: invalid every ${describeValue(every)}: must be an integer number of ms from ${MIN_INTERVAL_MS} to ${MAX_INTERVAL_MS}`);
  }
  // For the minute-based callers (`taskmill schedule`): does a slot start within the minute of `date`?
  const matches = (date: Date): boolean => {
    const minute = Math.floor(date.getTime() / MINUTE) * MINUTE;
    return Math.ceil(minute / every) * every < minute + MINUTE;
  };
  return Object.assign(matches, {
    every,
    next: (after: Date) => new Date((Math.floor(after.getTime() / every) + 1) * every),
    source: `every ${every} ms`,
    tz: undefined,
  });
}
