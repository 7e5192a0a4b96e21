/**
 * Wall-clock time for schedules: the time zone of a schedule (UTC, the process's
 * local zone, or a named IANA zone) and the calendar arithmetic on wall-clock
 * minutes, represented as UTC ms "as if the wall clock were UTC".
 */
export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

export interface Zone {
  readonly name: string | undefined;
  /** Wall-clock time of UTC instant `t`, as if it were UTC, floored to the minute. */
  wallMinute(t: number): number;
  /** True when the offset never changes, so next() can skip looking for transitions. */
  readonly fixed: boolean;
}

export const floorMinute = (t: number): number => Math.floor(t / MINUTE_MS) * MINUTE_MS;

// One shared scratch Date keeps the hot path free of allocations (JS is single-threaded).
export const scratch = new Date(0);

const utcZone: Zone = { name: 'UTC', fixed: true, wallMinute: floorMinute };
const localZone: Zone = {
  name: undefined,
  fixed: false,
  wallMinute(t) {
    scratch.setTime(t);
    return floorMinute(t - scratch.getTimezoneOffset() * MINUTE_MS);
  },
};
const UTC_NAMES = new Set([
  'UTC',
  'Etc/UTC',
  'Etc/UCT',
  'UCT',
  'Etc/Universal',
  'Universal',
  'Etc/Zulu',
  'Zulu',
  'GMT',
  'Etc/GMT',
  'Etc/GMT0',
  'Etc/GMT+0',
  'Etc/GMT-0',
  'GMT0',
  'Etc/Greenwich',
  'Greenwich',
]);
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

export function resolveZone(tz: string | undefined, who: string): Zone {
  if (tz === undefined) return localZone;
  if (typeof tz !== 'string' || tz.trim() === '') {
    throw new TypeError(`${who}: tz must be 'UTC' or an IANA time zone name such as 'Europe/Berlin', got ${describe(tz)}`);
  }
  const cached = zones.get(tz);
  if (cached) return cached;
  let formatter: Intl.DateTimeFormat;
  try {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      numberingSystem: 'latn',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
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

export function utcMs(y: number, month: number, d: number, h: number, mi: number): number {
  if (y >= 100) return Date.UTC(y, month - 1, d, h, mi);
  scratch.setTime(0); // Date.UTC maps years 0-99 to 1900-1999
  scratch.setUTCFullYear(y, month - 1, d);
  return scratch.getTime() + h * 3_600_000 + mi * MINUTE_MS;
}

export function daysInMonth(y: number, month: number): number {
  if (month === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** 0 = Sunday. */
export function weekday(y: number, month: number, d: number): number {
  return (((Math.floor(utcMs(y, month, d, 0, 0) / DAY_MS) + 4) % 7) + 7) % 7;
}

/** How a bad argument is shown in an error message. */
export function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return `"${x}"`;
  if (typeof x === 'number') return String(x);
  return typeof x;
}
