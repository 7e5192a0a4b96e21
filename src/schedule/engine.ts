/**
 * The schedule engine shared by crontab({...}) and cronSchedule('...'): both
 * compile to one matcher (lookup tables plus a day predicate) that is evaluated
 * on the wall clock of a time zone, so `schedule(date)` and `schedule.next(after)`
 * always agree, DST included: a wall-clock minute that does not exist (spring
 * forward) never matches, and a repeated one (fall back) matches at both instants.
 */
import { DAY_MS, MINUTE_MS, daysInMonth, describe, floorMinute, scratch, utcMs, weekday, type Zone } from './wall-clock.js';

export interface Schedule {
  /** Does the minute containing `date` match? Seconds and milliseconds are ignored. */
  (date: Date): boolean;
  /** The first matching minute strictly after `after` (a Date at second 0). */
  next(after: Date): Date;
  /** A readable description, e.g. `crontab(minute='0', hour='*\/4')` or `cron '*\/5 * * * *'`. */
  readonly source: string;
  /** The IANA zone the schedule is evaluated in; undefined means the process's local zone. */
  readonly tz: string | undefined;
}

export interface ScheduleOptions {
  /** 'UTC' or an IANA zone such as 'Europe/Berlin'; default: the process's local zone. */
  tz?: string;
}

/** The Gregorian calendar repeats every 400 years: no wall-clock match in that span means none ever. */
const CALENDAR_CYCLE_YEARS = 400;
/** The rarest satisfiable schedule (Feb 29 on a given weekday) recurs within 40 years. */
const NEXT_SEARCH_YEARS = 50;

export type DayPredicate = (y: number, month: number, d: number, wd: number, dim: number) => boolean;

export interface Matcher {
  minute: Uint8Array; // index 0-59
  hour: Uint8Array; // index 0-23
  month: Uint8Array; // index 1-12
  day: DayPredicate;
}

/** table[x] = the smallest allowed value >= x, or -1; one slot past the end for "none left". */
function nextTable(allowed: Uint8Array, size: number): Int8Array {
  const next = new Int8Array(size + 1).fill(-1);
  for (let x = size - 1; x >= 0; x--) next[x] = allowed[x] ? x : next[x + 1]!;
  return next;
}

export function compile(m: Matcher, zone: Zone, source: string): Schedule {
  const minuteNext = nextTable(m.minute, 60);
  const hourNext = nextTable(m.hour, 24);

  const matchesWall = (wall: number): boolean => {
    scratch.setTime(wall);
    if (!m.minute[scratch.getUTCMinutes()] || !m.hour[scratch.getUTCHours()]) return false;
    const month = scratch.getUTCMonth() + 1;
    if (!m.month[month]) return false;
    const y = scratch.getUTCFullYear();
    return m.day(y, month, scratch.getUTCDate(), scratch.getUTCDay(), daysInMonth(y, month));
  };

  /** The first matching wall-clock minute >= `from` (pure calendar, no zone), or -1 past `limit`. */
  const nextWall = (from: number, limit: number): number => {
    scratch.setTime(from);
    let y = scratch.getUTCFullYear();
    let month = scratch.getUTCMonth() + 1;
    let d = scratch.getUTCDate();
    let h = scratch.getUTCHours();
    let mi = scratch.getUTCMinutes();
    for (;;) {
      const dim = daysInMonth(y, month);
      if (!m.month[month] || d > dim) {
        month++;
        if (month > 12) {
          month = 1;
          y++;
        }
        d = 1;
        h = 0;
        mi = 0;
        if (utcMs(y, month, 1, 0, 0) > limit) return -1;
        continue;
      }
      const hour = hourNext[h]!;
      if (hour < 0 || !m.day(y, month, d, weekday(y, month, d), dim)) {
        d++;
        h = 0;
        mi = 0;
        continue;
      }
      if (hour !== h) {
        h = hour;
        mi = 0;
      }
      const minute = minuteNext[mi]!;
      if (minute < 0) {
        h++;
        mi = 0;
        if (h > 23) {
          d++;
          h = 0;
        }
        continue;
      }
      const wall = utcMs(y, month, d, h, minute);
      return wall > limit ? -1 : wall;
    }
  };

  const cycleStart = Date.UTC(2000, 0, 1);
  if (nextWall(cycleStart, Date.UTC(2000 + CALENDAR_CYCLE_YEARS, 0, 1)) < 0) {
    throw new RangeError(`${source} never matches: no date has that month, day and day of week together`);
  }

  const schedule = (date: Date): boolean => matchesWall(zone.wallMinute(timeOf(date, 'schedule(date)')));

  const next = (after: Date): Date => {
    let t = floorMinute(timeOf(after, 'schedule.next(after)')) + MINUTE_MS;
    const limit = t + NEXT_SEARCH_YEARS * 366 * DAY_MS;
    // Walk UTC instants: while the zone's offset is constant, the wall clock is a plain shift of UTC,
    // so the next wall-clock match maps straight to an instant. Offsets are probed a day apart (no zone
    // changes offset twice in a day); a change is located to the minute and the search restarts there.
    while (t <= limit) {
      const offset = zone.wallMinute(t) - t;
      const wall = nextWall(t + offset, limit + offset);
      if (wall < 0) break;
      const candidate = wall - offset;
      let transition = -1;
      if (!zone.fixed) {
        for (let probe = t; probe < candidate;) {
          const step = Math.min(candidate, probe + DAY_MS);
          if (zone.wallMinute(step) - step !== offset) {
            let lo = probe;
            let hi = step;
            while (hi - lo > MINUTE_MS) {
              const mid = lo + Math.floor((hi - lo) / 2 / MINUTE_MS) * MINUTE_MS;
              if (zone.wallMinute(mid) - mid === offset) lo = mid;
              else hi = mid;
            }
            transition = hi;
            break;
          }
          probe = step;
        }
      }
      if (transition >= 0) {
        t = transition;
      } else if (matchesWall(zone.wallMinute(candidate))) {
        return new Date(candidate);
      } else {
        t = candidate + MINUTE_MS; // cannot happen with whole-minute offsets; never return a non-match
      }
    }
    throw new RangeError(`${source} never matches within ${NEXT_SEARCH_YEARS} years after ${after.toISOString()}${zone.name ? ` in ${zone.name}` : ''}`);
  };

  return Object.defineProperties(schedule, {
    next: { value: next, enumerable: true },
    source: { value: source, enumerable: true },
    tz: { value: zone.name, enumerable: true },
    toString: { value: () => source },
  }) as Schedule;
}

function timeOf(date: unknown, who: string): number {
  if (!(date instanceof Date)) throw new TypeError(`${who}: expected a Date, got ${describe(date)}`);
  const t = date.getTime();
  if (Number.isNaN(t)) throw new RangeError(`${who}: got an invalid Date`);
  return t;
}

export function checkOptions(options: unknown, who: string): string | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${who}: options must be an object like { tz: 'UTC' }, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'tz') {
      const hint = /^time_?zone$/i.test(key) || key === 'zone' ? ' (did you mean tz?)' : '';
      throw new TypeError(`${who}: unknown option "${key}"${hint}; the only option is tz`);
    }
  }
  return (options as ScheduleOptions).tz;
}

/** Is `x` a Schedule made by crontab() or cronSchedule() (or shaped like one)? */
export function isSchedule(x: unknown): x is Schedule {
  if (typeof x !== 'function') return false;
  const s = x as unknown as Record<string, unknown>;
  return typeof s.next === 'function' && typeof s.source === 'string' && (s.tz === undefined || typeof s.tz === 'string');
}
