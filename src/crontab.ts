/**
 * Schedules for periodic commands: `crontab({...})` (the seed's semantics) and
 * `cronSchedule('* * * * *')` (Vixie cron strings, parsed by cron-parser).
 *
 * Both forms compile to one matcher (lookup tables plus a day predicate) that is
 * evaluated on the wall clock of a time zone, so `schedule(date)` and
 * `schedule.next(after)` always agree, DST included: a wall-clock minute that
 * does not exist (spring forward) never matches, and a repeated one (fall back)
 * matches at both instants.
 */
import { createRequire } from 'node:module';
import type { CronExpressionParser as Parser } from 'cron-parser';

// Loaded on the first cron string (~9 MiB resident): crontab({...}) schedules never need it.
const require = createRequire(import.meta.url);
let cronParser: typeof Parser | undefined;

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

export interface CrontabFields {
  month?: string | number;
  day?: string | number;
  dayOfWeek?: string | number;
  hour?: string | number;
  minute?: string | number;
}

export interface ScheduleOptions {
  /** 'UTC' or an IANA zone such as 'Europe/Berlin'; default: the process's local zone. */
  tz?: string;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** The Gregorian calendar repeats every 400 years: no wall-clock match in that span means none ever. */
const CALENDAR_CYCLE_YEARS = 400;
/** The rarest satisfiable schedule (Feb 29 on a given weekday) recurs within 40 years. */
const NEXT_SEARCH_YEARS = 50;

// ---------------------------------------------------------------- time zones

interface Zone {
  readonly name: string | undefined;
  /** Wall-clock time of UTC instant `t`, as if it were UTC, floored to the minute. */
  wallMinute(t: number): number;
  /** True when the offset never changes, so next() can skip looking for transitions. */
  readonly fixed: boolean;
}

const floorMinute = (t: number): number => Math.floor(t / MINUTE_MS) * MINUTE_MS;

// One shared scratch Date keeps the hot path free of allocations (JS is single-threaded).
const scratch = new Date(0);

const utcZone: Zone = { name: 'UTC', fixed: true, wallMinute: floorMinute };
const localZone: Zone = {
  name: undefined,
  fixed: false,
  wallMinute(t) {
    scratch.setTime(t);
    return floorMinute(t - scratch.getTimezoneOffset() * MINUTE_MS);
  },
};
const UTC_NAMES = new Set(['UTC', 'Etc/UTC', 'Etc/UCT', 'UCT', 'Etc/Universal', 'Universal', 'Etc/Zulu', 'Zulu', 'GMT', 'Etc/GMT', 'Etc/GMT0', 'Etc/GMT+0', 'Etc/GMT-0', 'GMT0', 'Etc/Greenwich', 'Greenwich']);
const zones = new Map<string, Zone>();

function namedZone(formatter: Intl.DateTimeFormat, name: string): Zone {
  // The scheduler asks every periodic command about the same minute: remember the last answer.
  let lastMinute = Number.NaN;
  let lastWall = 0;
  return {
    name,
    fixed: false,
    wallMinute(t) {
      const minute = floorMinute(t);
      if (minute === lastMinute) return lastWall;
      // format() is ~3x cheaper than formatToParts(); 'en-US' numeric output is "M/D/YYYY, HH:MM".
      const text = formatter.format(minute);
      const n = [0, 0, 0, 0, 0];
      let i = 0;
      let inNumber = false;
      for (let k = 0; k < text.length && i < 5; k++) {
        const digit = text.charCodeAt(k) - 48;
        if (digit >= 0 && digit <= 9) {
          n[i] = n[i]! * 10 + digit;
          inNumber = true;
        } else if (inNumber) {
          i++;
          inNumber = false;
        }
      }
      lastMinute = minute;
      lastWall = utcMs(n[2]!, n[0]!, n[1]!, n[3]!, n[4]!);
      return lastWall;
    },
  };
}

function resolveZone(tz: string | undefined, who: string): Zone {
  if (tz === undefined) return localZone;
  if (typeof tz !== 'string' || tz.trim() === '') {
    throw new TypeError(`${who}: tz must be 'UTC' or an IANA time zone name such as 'Europe/Berlin', got ${describe(tz)}`);
  }
  const cached = zones.get(tz);
  if (cached) return cached;
  let formatter: Intl.DateTimeFormat;
  try {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', numberingSystem: 'latn',
      year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric',
    });
  } catch {
    throw new RangeError(`${who}: unknown time zone "${tz}" (use 'UTC' or an IANA name such as 'Europe/Berlin')`);
  }
  const name = formatter.resolvedOptions().timeZone;
  const zone = UTC_NAMES.has(name) ? { ...utcZone, name } : namedZone(formatter, name);
  zones.set(tz, zone);
  return zone;
}

// ---------------------------------------------------------------- calendar arithmetic

function utcMs(y: number, month: number, d: number, h: number, mi: number): number {
  if (y >= 100) return Date.UTC(y, month - 1, d, h, mi);
  scratch.setTime(0); // Date.UTC maps years 0-99 to 1900-1999
  scratch.setUTCFullYear(y, month - 1, d);
  return scratch.getTime() + h * 3_600_000 + mi * MINUTE_MS;
}

function daysInMonth(y: number, month: number): number {
  if (month === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** 0 = Sunday. */
function weekday(y: number, month: number, d: number): number {
  return (((Math.floor(utcMs(y, month, d, 0, 0) / DAY_MS) + 4) % 7) + 7) % 7;
}

// ---------------------------------------------------------------- the matcher

type DayPredicate = (y: number, month: number, d: number, wd: number, dim: number) => boolean;

interface Matcher {
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

function compile(m: Matcher, zone: Zone, source: string): Schedule {
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
        if (month > 12) { month = 1; y++; }
        d = 1; h = 0; mi = 0;
        if (utcMs(y, month, 1, 0, 0) > limit) return -1;
        continue;
      }
      const hour = hourNext[h]!;
      if (hour < 0 || !m.day(y, month, d, weekday(y, month, d), dim)) {
        d++; h = 0; mi = 0;
        continue;
      }
      if (hour !== h) { h = hour; mi = 0; }
      const minute = minuteNext[mi]!;
      if (minute < 0) {
        h++; mi = 0;
        if (h > 23) { d++; h = 0; }
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

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return `"${x}"`;
  if (typeof x === 'number') return String(x);
  return typeof x;
}

function checkOptions(options: unknown, who: string): string | undefined {
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

// ---------------------------------------------------------------- crontab({...})

const FIELD_ORDER = ['month', 'day', 'dayOfWeek', 'hour', 'minute'] as const;
type FieldName = (typeof FIELD_ORDER)[number];
const RANGES: Record<FieldName, { min: number; max: number }> = {
  month: { min: 1, max: 12 },
  day: { min: 1, max: 31 },
  dayOfWeek: { min: 0, max: 7 },
  hour: { min: 0, max: 23 },
  minute: { min: 0, max: 59 },
};
const FIELD_HINTS: Record<string, string> = {
  day_of_week: 'dayOfWeek', dayofweek: 'dayOfWeek', dow: 'dayOfWeek', weekday: 'dayOfWeek', weekdays: 'dayOfWeek',
  day_of_month: 'day', dayOfMonth: 'day', dom: 'day', days: 'day', date: 'day',
  hours: 'hour', minutes: 'minute', months: 'month',
};

/**
 * The allowed values of one field as a lookup table. dayOfWeek folds 7 onto 0 (Sunday),
 * so its table has 7 slots; `*` and `*\/n` count over 0-6 for it.
 */
function parseField(field: FieldName, value: unknown): Uint8Array {
  const { min, max } = RANGES[field];
  const sunday7 = field === 'dayOfWeek';
  const table = new Uint8Array(sunday7 ? 7 : max + 1);
  const top = sunday7 ? 6 : max;
  const add = (from: number, to: number, step: number): void => {
    for (let v = from; v <= to; v += step) table[sunday7 ? v % 7 : v] = 1;
  };
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new TypeError(`crontab: ${field} piece ${value} is not an integer`);
    if (value < min || value > max) throw new RangeError(`crontab: ${field} piece "${value}" is out of range ${min}-${max}`);
    add(value, value, 1);
    return table;
  }
  if (typeof value !== 'string') {
    const hint = Array.isArray(value) ? ` (write a list as a string: '0,30')` : '';
    throw new TypeError(`crontab: ${field} must be a string like '*/4' or a number, got ${describe(value)}${hint}`);
  }
  for (const raw of value.split(',')) {
    const piece = raw.trim();
    if (piece === '') throw new TypeError(`crontab: ${field} piece "" is empty (in "${value}")`);
    const match = /^(?:(\*)|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(piece);
    if (!match || (match[4] !== undefined && !match[1] && match[3] === undefined)) {
      throw new TypeError(`crontab: ${field} piece "${piece}" is not understood (expected '*', '*/n', 'm-n', 'm-n/s' or a number)`);
    }
    const step = match[4] === undefined ? 1 : Number(match[4]);
    if (step === 0) throw new RangeError(`crontab: ${field} piece "${piece}" has a step of 0 (use 1 or more)`);
    if (match[1]) {
      add(min, top, step);
      continue;
    }
    const from = Number(match[2]);
    const to = match[3] === undefined ? from : Number(match[3]);
    if (from < min || from > max || to < min || to > max) {
      throw new RangeError(`crontab: ${field} piece "${piece}" is out of range ${min}-${max}`);
    }
    if (from > to) {
      const hint = sunday7 && to === 0 ? ` (write "${from}-7" for a range ending on Sunday)` : '';
      throw new RangeError(`crontab: ${field} piece "${piece}" is a reversed range (${from} > ${to})${hint}`);
    }
    add(from, to, step);
  }
  return table;
}

function quote(value: unknown): string {
  return typeof value === 'string' ? `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : String(value);
}

/**
 * A schedule from crontab-style fields, with the seed's semantics: a minute matches only when
 * ALL fields match (day AND dayOfWeek; Vixie cron ORs those two, see cronSchedule).
 */
export function crontab(fields: CrontabFields = {}, options?: ScheduleOptions): Schedule {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
    const hint = typeof fields === 'string' ? ` (for a cron string use cronSchedule(${quote(fields)}))` : '';
    throw new TypeError(`crontab: expected an object of fields like { hour: '0', minute: '0' }, got ${describe(fields)}${hint}`);
  }
  const tz = checkOptions(options, 'crontab');
  const given: string[] = [];
  for (const key of Object.keys(fields)) {
    if (!(FIELD_ORDER as readonly string[]).includes(key)) {
      const suggestion = FIELD_HINTS[key] ?? FIELD_HINTS[key.toLowerCase()];
      const hint = suggestion ? `did you mean ${suggestion}? ` : /^seconds?$/i.test(key) ? 'schedules have 1-minute resolution; ' : key === 'tz' ? 'pass it as an option: crontab(fields, { tz }); ' : '';
      throw new TypeError(`crontab: unknown field "${key}" (${hint}fields are ${FIELD_ORDER.join(', ')})`);
    }
    const value = (fields as Record<string, unknown>)[key];
    if (value !== undefined) given.push(`${key}=${quote(value)}`);
  }
  const table = (field: FieldName): Uint8Array => parseField(field, fields[field] === undefined ? '*' : fields[field]);
  const minute = table('minute');
  const hour = table('hour');
  const day = table('day');
  const month = table('month');
  const dayOfWeek = table('dayOfWeek');
  const zone = resolveZone(tz, 'crontab');
  return compile(
    { minute, hour, month, day: (_y, _m, d, wd) => day[d] === 1 && dayOfWeek[wd] === 1 },
    zone,
    `crontab(${given.join(', ')})`,
  );
}

// ---------------------------------------------------------------- cron strings

const MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@hourly', '@minutely', '@weekdays', '@weekends']);

/**
 * A schedule from a 5-field cron string ('minute hour day month dayOfWeek'), with Vixie
 * semantics: when both day and dayOfWeek are restricted, a day matching EITHER matches.
 * cron-parser parses it once; matching and next() run on the same engine as crontab().
 */
export function cronSchedule(expression: string, options?: ScheduleOptions): Schedule {
  if (typeof expression !== 'string') {
    throw new TypeError(`cronSchedule: expected a cron string like '*/5 * * * *', got ${describe(expression)}`);
  }
  const tz = checkOptions(options, 'cronSchedule');
  const expr = expression.trim().replace(/\s+/g, ' ');
  const shown = `cron '${expr}'`;
  if (expr.startsWith('@')) {
    if (!MACROS.has(expr)) {
      throw new TypeError(`cronSchedule: ${shown} is not supported (macros: ${[...MACROS].join(', ')})`);
    }
  } else {
    const parts = expr === '' ? [] : expr.split(' ');
    if (parts.length === 6) {
      throw new TypeError(`cronSchedule: ${shown} has 6 fields; seconds are not supported (schedules have 1-minute resolution), use 5: minute hour day month dayOfWeek`);
    }
    if (parts.length !== 5) {
      throw new TypeError(`cronSchedule: ${shown} has ${parts.length} fields; expected 5: minute hour day month dayOfWeek`);
    }
    // H picks a random value per process, so consumers would disagree on the minute.
    if (parts.some((part, i) => /H/.test(i >= 3 ? part.replace(/[a-z]{3}/gi, '') : part))) {
      throw new TypeError(`cronSchedule: ${shown} uses H (hashed values), which is not supported; write the value`);
    }
  }
  let parsed;
  try {
    cronParser ??= (require('cron-parser') as { CronExpressionParser: typeof Parser }).CronExpressionParser;
    parsed = cronParser.parse(expr);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const Class = /range|constraint|explicit day/i.test(reason) ? RangeError : TypeError;
    throw new Class(`cronSchedule: ${shown} is invalid: ${reason}`);
  }
  const f = parsed.fields;
  const numbers = (values: readonly (number | string)[], size: number, fold = size): Uint8Array => {
    const table = new Uint8Array(size);
    for (const v of values) if (typeof v === 'number') table[v % fold] = 1;
    return table;
  };
  const minute = numbers(f.minute.values, 60);
  const hour = numbers(f.hour.values, 24);
  const month = numbers(f.month.values, 13);
  const dom = numbers(f.dayOfMonth.values, 32);
  const dow = numbers(f.dayOfWeek.values, 7);
  const lastDow = new Uint8Array(7); // '5L' = the last Friday of the month
  for (const v of f.dayOfWeek.values) if (typeof v === 'string') lastDow[Number.parseInt(v, 10) % 7] = 1;
  const lastDom = f.dayOfMonth.hasLastChar;
  const nth = f.dayOfWeek.nthDay; // '5#3' = the third Friday
  const domWild = f.dayOfMonth.isWildcard;
  const dowWild = f.dayOfWeek.isWildcard;
  const day: DayPredicate = (_y, _m, d, wd, dim) => {
    const domMatch = dom[d] === 1 || (lastDom && d === dim);
    if (dowWild) return domMatch;
    const dowMatch = (dow[wd] === 1 && (nth <= 0 || Math.ceil(d / 7) === nth)) || (lastDow[wd] === 1 && d + 7 > dim);
    return domWild ? dowMatch : domMatch || dowMatch;
  };
  return compile({ minute, hour, month, day }, resolveZone(tz, 'cronSchedule'), shown);
}

// ---------------------------------------------------------------- helpers for periodicCommand

export function isSchedule(x: unknown): x is Schedule {
  if (typeof x !== 'function') return false;
  const s = x as unknown as Record<string, unknown>;
  return typeof s.next === 'function' && typeof s.source === 'string' && (s.tz === undefined || typeof s.tz === 'string');
}

/** A cron string becomes cronSchedule(input, options); a Schedule is returned as it is. */
export function toSchedule(input: Schedule | string, options?: ScheduleOptions): Schedule {
  if (typeof input === 'string') return cronSchedule(input, options);
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
