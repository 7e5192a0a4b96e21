/**
 * `cronSchedule('* * * * *')`: a schedule from a Vixie cron string, parsed by
 * cron-parser into lookup tables for the schedule engine.
 */
import { createRequire } from 'node:module';
import type { CronExpressionParser as Parser } from 'cron-parser';
import { checkOptions, compile, type DayPredicate, type Schedule, type ScheduleOptions } from './engine.js';
import { describe, resolveZone } from './wall-clock.js';

// Loaded on the first cron string (~9 MiB resident): crontab({...}) schedules never need it.
const require = createRequire(import.meta.url);
let cronParser: typeof Parser | undefined;

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
      throw new TypeError(
        `cronSchedule: ${shown} has 6 fields; seconds are not supported (schedules have 1-minute resolution), use 5: minute hour day month dayOfWeek`,
      );
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
