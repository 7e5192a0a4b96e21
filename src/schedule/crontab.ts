/**
 * Schedules for periodic commands: `crontab({...})` (the seed's semantics) and
 * `cronSchedule('* * * * *')` (Vixie cron strings, parsed by cron-parser).
 *
 * Both forms compile to one matcher (lookup tables plus a day predicate) that is
 * evaluated on the wall clock of a time zone, so `schedule(date)` and
 * `schedule.next(after)` always agree, DST included: a wall-clock minute that
 * does not exist (spring forward) never matches, and a repeated one (fall back)
 * matches at both instants.
 *
 * The modules, in src/schedule/: engine.ts (Schedule, the matcher and next()),
 * wall-clock.ts (time zones and calendar arithmetic), crontab-fields.ts
 * (crontab({...})) and cron-string.ts (cronSchedule). This module is their
 * public face, plus toSchedule for periodicCommand.
 */
import { cronSchedule } from './cron-string.js';
import { checkOptions, isSchedule, type Schedule, type ScheduleOptions } from './engine.js';
import { describe, resolveZone } from './wall-clock.js';
import { intervalSchedule } from './interval.js';

export { crontab, type CrontabFields } from './crontab-fields.js';
export { cronSchedule } from './cron-string.js';
export { isSchedule, type Schedule, type ScheduleOptions } from './engine.js';
export { intervalSchedule, isIntervalSchedule, MIN_INTERVAL_MS, type IntervalSchedule } from './interval.js';

/** An interval schedule: a slot every `every` ms (an integer ≥ 1,000). */
export interface EverySchedule {
  every: number;
}

/** A cron string becomes cronSchedule(input, options); `{ every }` an interval schedule; a Schedule is returned as it is. */
export function toSchedule(input: Schedule | string | EverySchedule, options?: ScheduleOptions): Schedule {
  if (typeof input === 'string') return cronSchedule(input, options);
  if (typeof input === 'object' && input !== null && 'every' in input && !isSchedule(input)) {
    if (options?.tz !== undefined) throw new TypeError('toSchedule: an { every } schedule has no time zone (its slots are UTC epoch ms)');
    return intervalSchedule(input.every);
  }
  if (isSchedule(input)) {
    const tz = checkOptions(options, 'toSchedule');
    if (tz !== undefined && resolveZone(tz, 'toSchedule').name !== input.tz) {
      throw new TypeError(`toSchedule: ${input.source} is already evaluated in ${input.tz ?? 'the local time zone'}; pass { tz } when creating it`);
    }
    return input;
  }
  const hint = typeof input === 'object' && input !== null ? ' (wrap fields in crontab({...}))' : '';
  throw new TypeError(`toSchedule: expected a schedule from crontab()/cronSchedule() or a cron string like '0 * * * *', got ${describe(input)}${hint}`);
}
