/**
 * `crontab({...})`: a schedule from crontab-style fields (the seed's semantics),
 * each field parsed into a lookup table for the schedule engine.
 */
import { checkOptions, compile, type Schedule, type ScheduleOptions } from './engine.js';
import { describe, resolveZone } from './wall-clock.js';

export interface CrontabFields {
  month?: string | number;
  day?: string | number;
  dayOfWeek?: string | number;
  hour?: string | number;
  minute?: string | number;
}

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
  day_of_week: 'dayOfWeek',
  dayofweek: 'dayOfWeek',
  dow: 'dayOfWeek',
  weekday: 'dayOfWeek',
  weekdays: 'dayOfWeek',
  day_of_month: 'day',
  dayOfMonth: 'day',
  dom: 'day',
  days: 'day',
  date: 'day',
  hours: 'hour',
  minutes: 'minute',
  months: 'month',
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
      const hint = suggestion
        ? `did you mean ${suggestion}? `
        : /^seconds?$/i.test(key)
          ? 'schedules have 1-minute resolution; '
          : key === 'tz'
            ? 'pass it as an option: crontab(fields, { tz }); '
            : '';
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
  return compile({ minute, hour, month, day: (_y, _m, d, wd) => day[d] === 1 && dayOfWeek[wd] === 1 }, zone, `crontab(${given.join(', ')})`);
}
