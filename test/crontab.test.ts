import { CronExpressionParser } from 'cron-parser';
import { afterEach, describe, expect, it } from 'vitest';
import { crontab, cronSchedule, isSchedule, toSchedule, type CrontabFields, type Schedule } from '../src/schedule/crontab.js';

const at = (iso: string): Date => new Date(iso);
const UTC = { tz: 'UTC' };

/** The first `n` results of repeatedly calling next(), as ISO strings. */
function upcoming(schedule: Schedule, from: string, n: number): string[] {
  const out: string[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) {
    t = schedule.next(t);
    out.push(t.toISOString());
  }
  return out;
}

/** Which values of one UTC field match, holding the other fields at a date where they are '*'. */
const minutesOf = (fields: CrontabFields): number[] => range(0, 59).filter((m) => crontab(fields, UTC)(new Date(Date.UTC(2025, 5, 2, 10, m))));
const hoursOf = (fields: CrontabFields): number[] => range(0, 23).filter((h) => crontab(fields, UTC)(new Date(Date.UTC(2025, 5, 2, h, 7))));
const daysOf = (fields: CrontabFields): number[] =>
  // July 2025 has 31 days
  range(1, 31).filter((d) => crontab(fields, UTC)(new Date(Date.UTC(2025, 6, d, 3, 7))));
const monthsOf = (fields: CrontabFields): number[] => range(1, 12).filter((mo) => crontab(fields, UTC)(new Date(Date.UTC(2025, mo - 1, 1, 3, 7))));
const weekdaysOf = (fields: CrontabFields): number[] =>
  // 2025-06-01 is a Sunday
  range(0, 6).filter((wd) => crontab(fields, UTC)(new Date(Date.UTC(2025, 5, 1 + wd, 3, 7))));

function range(from: number, to: number, step = 1): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

/** Every UTC minute in [from, to) the schedule matches. */
function matchesBetween(schedule: Schedule, from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = at(from).getTime(); t < at(to).getTime(); t += 60_000) {
    if (schedule(new Date(t))) out.push(new Date(t).toISOString());
  }
  return out;
}

describe('the seed examples (djutils-queue.rst)', () => {
  it("crontab(hour='0', minute='0') runs daily at midnight", () => {
    const daily = crontab({ hour: '0', minute: '0' }, UTC);
    expect(daily(at('2025-06-01T00:00:00Z'))).toBe(true);
    expect(daily(at('2025-06-01T00:00:59.999Z'))).toBe(true); // seconds are ignored
    expect(daily(at('2025-06-01T00:01:00Z'))).toBe(false);
    expect(daily(at('2025-06-01T01:00:00Z'))).toBe(false);
    expect(upcoming(daily, '2025-06-01T00:00:00Z', 2)).toEqual(['2025-06-02T00:00:00.000Z', '2025-06-03T00:00:00.000Z']);
  });

  it("crontab(day_of_week='0', hour='5,17', minute='0') runs Sundays at 5am and 5pm", () => {
    const sundays = crontab({ dayOfWeek: '0', hour: '5,17', minute: '0' }, UTC);
    expect(sundays(at('2025-06-01T05:00Z'))).toBe(true); // a Sunday
    expect(sundays(at('2025-06-01T17:00Z'))).toBe(true);
    expect(sundays(at('2025-06-02T05:00Z'))).toBe(false); // Monday
    expect(upcoming(sundays, '2025-05-31T12:00Z', 3)).toEqual(['2025-06-01T05:00:00.000Z', '2025-06-01T17:00:00.000Z', '2025-06-08T05:00:00.000Z']);
  });

  it("crontab(day='1', hour='0', minute='0') runs at midnight on the first of the month", () => {
    const monthly = crontab({ day: '1', hour: '0', minute: '0' }, UTC);
    expect(upcoming(monthly, '2025-01-15T00:00Z', 3)).toEqual(['2025-02-01T00:00:00.000Z', '2025-03-01T00:00:00.000Z', '2025-04-01T00:00:00.000Z']);
  });

  it("hours='*/4' == 0, 4, 8, 12, 16, 20", () => {
    expect(hoursOf({ hour: '*/4' })).toEqual([0, 4, 8, 12, 16, 20]);
  });
});

describe('crontab field syntax', () => {
  it("'*' and a missing field match every value", () => {
    expect(minutesOf({ minute: '*' })).toEqual(range(0, 59));
    expect(minutesOf({})).toEqual(range(0, 59));
    expect(crontab()(at('2031-12-31T23:59Z'))).toBe(true);
  });

  it("'*/n' counts from the field's minimum", () => {
    expect(minutesOf({ minute: '*/15' })).toEqual([0, 15, 30, 45]);
    expect(daysOf({ day: '*/6' })).toEqual([1, 7, 13, 19, 25, 31]);
    expect(monthsOf({ month: '*/6' })).toEqual([1, 7]);
    expect(weekdaysOf({ dayOfWeek: '*/2' })).toEqual([0, 2, 4, 6]);
    expect(minutesOf({ minute: '*/1' })).toEqual(range(0, 59));
    expect(minutesOf({ minute: '*/59' })).toEqual([0, 59]);
    expect(minutesOf({ minute: '*/90' })).toEqual([0]);
  });

  it("'m-n', 'm-n/s', lists, and pieces that combine", () => {
    expect(hoursOf({ hour: '9-17' })).toEqual(range(9, 17));
    expect(minutesOf({ minute: '10-30/10' })).toEqual([10, 20, 30]);
    expect(minutesOf({ minute: '5,17,59' })).toEqual([5, 17, 59]);
    expect(minutesOf({ minute: '1-5,10,*/20' })).toEqual([0, 1, 2, 3, 4, 5, 10, 20, 40]);
    expect(minutesOf({ minute: ' 5 , 07 ' })).toEqual([5, 7]); // spaces around pieces, leading zeros
    expect(minutesOf({ minute: '5,5,5' })).toEqual([5]);
    expect(daysOf({ day: '31' })).toEqual([31]);
  });

  it('numbers are accepted for every field', () => {
    expect(minutesOf({ minute: 0 })).toEqual([0]);
    expect(hoursOf({ hour: 23 })).toEqual([23]);
    expect(daysOf({ day: 1 })).toEqual([1]);
    expect(monthsOf({ month: 12 })).toEqual([12]);
    expect(weekdaysOf({ dayOfWeek: 6 })).toEqual([6]);
  });

  it('dayOfWeek: 0 is Sunday and 7 is Sunday too, in ranges as well', () => {
    expect(weekdaysOf({ dayOfWeek: 0 })).toEqual([0]);
    expect(weekdaysOf({ dayOfWeek: 7 })).toEqual([0]);
    expect(weekdaysOf({ dayOfWeek: '7' })).toEqual([0]);
    expect(weekdaysOf({ dayOfWeek: '5-7' })).toEqual([0, 5, 6]); // Fri, Sat, Sun
    expect(weekdaysOf({ dayOfWeek: '0-7' })).toEqual(range(0, 6));
    expect(weekdaysOf({ dayOfWeek: '1-5' })).toEqual([1, 2, 3, 4, 5]);
    expect(weekdaysOf({ dayOfWeek: '1-7/2' })).toEqual([0, 1, 3, 5]);
  });

  it('a minute matches only when ALL five fields match (day AND dayOfWeek)', () => {
    const friday13 = crontab({ day: 13, dayOfWeek: 5, hour: 0, minute: 0 }, UTC);
    expect(upcoming(friday13, '2025-01-01T00:00Z', 5)).toEqual([
      '2025-06-13T00:00:00.000Z',
      '2026-02-13T00:00:00.000Z',
      '2026-03-13T00:00:00.000Z',
      '2026-11-13T00:00:00.000Z',
      '2027-08-13T00:00:00.000Z',
    ]);
    expect(friday13(at('2025-01-13T00:00Z'))).toBe(false); // the 13th, a Monday
    expect(friday13(at('2025-01-10T00:00Z'))).toBe(false); // a Friday, the 10th
  });

  it('describes itself with the fields given, in the order given', () => {
    const s = crontab({ minute: '0', hour: '*/4' });
    expect(s.source).toBe("crontab(minute='0', hour='*/4')");
    expect(String(s)).toBe(s.source);
    expect(crontab().source).toBe('crontab()');
    expect(crontab({ day: 1, month: undefined }).source).toBe('crontab(day=1)');
    expect(s.tz).toBeUndefined();
    expect(crontab({}, UTC).tz).toBe('UTC');
  });
});

describe('crontab errors name the field and the piece', () => {
  const cases: [CrontabFields, typeof RangeError | typeof TypeError, RegExp][] = [
    [{ hour: '25' }, RangeError, /^crontab: hour piece "25" is out of range 0-23$/],
    [{ hour: 24 }, RangeError, /hour piece "24" is out of range 0-23/],
    [{ minute: '60' }, RangeError, /minute piece "60" is out of range 0-59/],
    [{ minute: -1 }, RangeError, /minute piece "-1" is out of range 0-59/],
    [{ day: '0' }, RangeError, /day piece "0" is out of range 1-31/],
    [{ day: '1,32' }, RangeError, /day piece "32" is out of range 1-31/],
    [{ month: '0-3' }, RangeError, /month piece "0-3" is out of range 1-12/],
    [{ month: 13 }, RangeError, /month piece "13" is out of range 1-12/],
    [{ dayOfWeek: '8' }, RangeError, /dayOfWeek piece "8" is out of range 0-7/],
    [{ minute: '99999999999999999999' }, RangeError, /minute piece "99999999999999999999" is out of range/],
    [{ hour: '5-1' }, RangeError, /hour piece "5-1" is a reversed range \(5 > 1\)/],
    [{ dayOfWeek: '6-0' }, RangeError, /dayOfWeek piece "6-0" is a reversed range.*"6-7"/],
    [{ minute: '*/0' }, RangeError, /minute piece "\*\/0" has a step of 0/],
    [{ hour: '1-5/0' }, RangeError, /hour piece "1-5\/0" has a step of 0/],
    [{ hour: 1.5 }, TypeError, /hour piece 1.5 is not an integer/],
    [{ hour: Number.NaN }, TypeError, /hour piece NaN is not an integer/],
    [{ hour: Number.POSITIVE_INFINITY }, TypeError, /hour piece Infinity is not an integer/],
    [{ hour: '1.5' }, TypeError, /hour piece "1.5" is not understood/],
    [{ minute: '' }, TypeError, /minute piece "" is empty/],
    [{ minute: '1,,2' }, TypeError, /minute piece "" is empty \(in "1,,2"\)/],
    [{ minute: '1,' }, TypeError, /minute piece "" is empty/],
    [{ dayOfWeek: 'mon' }, TypeError, /dayOfWeek piece "mon" is not understood/],
    [{ minute: '*/' }, TypeError, /minute piece "\*\/" is not understood/],
    [{ minute: '5/15' }, TypeError, /minute piece "5\/15" is not understood/],
    [{ minute: '1-' }, TypeError, /minute piece "1-" is not understood/],
    [{ minute: '-1' }, TypeError, /minute piece "-1" is not understood/],
    [{ minute: '1-2-3' }, TypeError, /minute piece "1-2-3" is not understood/],
    [{ minute: '**' }, TypeError, /minute piece "\*\*" is not understood/],
    [{ minute: '* /2' }, TypeError, /minute piece "\* \/2" is not understood/],
    [{ hour: true as never }, TypeError, /hour must be a string like '\*\/4' or a number, got boolean/],
    [{ hour: null as never }, TypeError, /hour must be a string .* got null/],
    [{ minute: [0, 30] as never }, TypeError, /minute must be .* got an array \(write a list as a string: '0,30'\)/],
  ];
  it.each(cases)('%o', (fields, ErrorClass, message) => {
    expect(() => crontab(fields, UTC)).toThrow(ErrorClass);
    expect(() => crontab(fields, UTC)).toThrow(message);
  });

  it('rejects unknown field names and suggests the right one', () => {
    expect(() => crontab({ day_of_week: '0' } as never)).toThrow(TypeError);
    expect(() => crontab({ day_of_week: '0' } as never)).toThrow(/unknown field "day_of_week" \(did you mean dayOfWeek\?/);
    expect(() => crontab({ hours: '*/4' } as never)).toThrow(/unknown field "hours" \(did you mean hour\?/);
    expect(() => crontab({ dayOfMonth: 1 } as never)).toThrow(/did you mean day\?/);
    expect(() => crontab({ second: 0 } as never)).toThrow(/unknown field "second" \(schedules have 1-minute resolution/);
    expect(() => crontab({ tz: 'UTC' } as never)).toThrow(/unknown field "tz" \(pass it as an option/);
    expect(() => crontab({ whenever: 1 } as never)).toThrow(/unknown field "whenever" \(fields are month, day, dayOfWeek, hour, minute\)/);
  });

  it('rejects a non-object and points cron strings to cronSchedule', () => {
    expect(() => crontab('0 * * * *' as never)).toThrow(TypeError);
    expect(() => crontab('0 * * * *' as never)).toThrow(/cronSchedule\('0 \* \* \* \*'\)/);
    expect(() => crontab(null as never)).toThrow(/got null/);
    expect(() => crontab([] as never)).toThrow(/got an array/);
  });

  it('rejects unknown options and bad time zones', () => {
    expect(() => crontab({}, { timezone: 'UTC' } as never)).toThrow(TypeError);
    expect(() => crontab({}, { timezone: 'UTC' } as never)).toThrow(/unknown option "timezone" \(did you mean tz\?\)/);
    expect(() => crontab({}, { tz: 'Mars/Olympus_Mons' })).toThrow(RangeError);
    expect(() => crontab({}, { tz: 'Mars/Olympus_Mons' })).toThrow(/unknown time zone "Mars\/Olympus_Mons"/);
    expect(() => crontab({}, { tz: '' })).toThrow(TypeError);
    expect(() => crontab({}, { tz: 5 as never })).toThrow(/tz must be 'UTC' or an IANA time zone name.*got 5/);
    expect(() => crontab({}, 'UTC' as never)).toThrow(/options must be an object/);
  });

  it('rejects a schedule that can never match, at construction', () => {
    expect(() => crontab({ month: 2, day: 30 })).toThrow(RangeError);
    expect(() => crontab({ month: 2, day: '30,31' })).toThrow(/crontab\(month=2, day='30,31'\) never matches/);
    expect(() => crontab({ month: '4,6,9,11', day: 31 })).toThrow(/never matches/);
    expect(() => crontab({ month: 2, day: 29 })).not.toThrow();
    expect(() => crontab({ month: 2, day: 29, dayOfWeek: 1 })).not.toThrow(); // rare, not impossible
  });

  it('schedule(date) and next(after) want a valid Date', () => {
    const s = crontab({}, UTC);
    expect(() => s('2025-01-01' as never)).toThrow(/schedule\(date\): expected a Date, got "2025-01-01"/);
    expect(() => s(Date.now() as never)).toThrow(TypeError);
    expect(() => s(new Date(Number.NaN))).toThrow(RangeError);
    expect(() => s.next(undefined as never)).toThrow(/schedule.next\(after\): expected a Date, got undefined/);
  });
});

describe('next(after)', () => {
  it('is strictly after, at second 0, and skips the minute containing `after`', () => {
    const every = crontab({}, UTC);
    expect(every.next(at('2025-01-01T10:00:00.000Z')).toISOString()).toBe('2025-01-01T10:01:00.000Z');
    expect(every.next(at('2025-01-01T10:00:59.999Z')).toISOString()).toBe('2025-01-01T10:01:00.000Z');
    const hourly = crontab({ minute: 0 }, UTC);
    expect(hourly.next(at('2025-01-01T10:00:30Z')).toISOString()).toBe('2025-01-01T11:00:00.000Z');
    expect(hourly.next(at('2025-12-31T23:59:59Z')).toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });

  it('rolls over hour, day, month and year boundaries', () => {
    const next = (fields: CrontabFields, from: string) => crontab(fields, UTC).next(at(from)).toISOString();
    expect(next({ hour: 23, minute: 0 }, '2025-01-01T23:30Z')).toBe('2025-01-02T23:00:00.000Z');
    expect(next({ hour: '9-17', minute: '0,30' }, '2025-01-01T17:45Z')).toBe('2025-01-02T09:00:00.000Z');
    expect(next({ minute: 10 }, '2025-12-31T23:30Z')).toBe('2026-01-01T00:10:00.000Z');
    expect(next({ hour: 5, minute: 0 }, '2025-01-31T06:00Z')).toBe('2025-02-01T05:00:00.000Z');
    expect(next({ day: 1, hour: 0, minute: 0 }, '2025-12-15T00:00Z')).toBe('2026-01-01T00:00:00.000Z');
    expect(next({ month: 1, day: 1, hour: 0, minute: 0 }, '2025-01-01T00:00Z')).toBe('2026-01-01T00:00:00.000Z');
  });

  it('finds leap days: Feb 29 from 2025 is 2028-02-29, and 2100 is not a leap year', () => {
    const leap = crontab({ month: 2, day: 29, hour: 0, minute: 0 }, UTC);
    expect(upcoming(leap, '2025-01-01T00:00Z', 3)).toEqual(['2028-02-29T00:00:00.000Z', '2032-02-29T00:00:00.000Z', '2036-02-29T00:00:00.000Z']);
    expect(leap.next(at('2096-03-01T00:00Z')).toISOString()).toBe('2104-02-29T00:00:00.000Z');
    const leapMonday = crontab({ month: 2, day: 29, dayOfWeek: 1, hour: 12, minute: 0 }, { tz: 'Europe/Berlin' });
    expect(leapMonday.next(at('2017-01-01T00:00Z')).toISOString()).toBe('2044-02-29T11:00:00.000Z');
  });

  it('skips months too short for the day', () => {
    const day31 = crontab({ day: 31, hour: 0, minute: 0 }, UTC);
    expect(upcoming(day31, '2025-01-01T00:00Z', 7).map((d) => d.slice(0, 10))).toEqual([
      '2025-01-31',
      '2025-03-31',
      '2025-05-31',
      '2025-07-31',
      '2025-08-31',
      '2025-10-31',
      '2025-12-31',
    ]);
    const day29 = crontab({ day: 29, hour: 0, minute: 0 }, UTC);
    expect(upcoming(day29, '2025-01-01T00:00Z', 2).map((d) => d.slice(0, 10))).toEqual(['2025-01-29', '2025-03-29']);
  });
});

describe('time zones and DST', () => {
  it('evaluates wall-clock fields in the given zone', () => {
    const nine = (tz: string) => crontab({ hour: 9, minute: 0 }, { tz });
    expect(nine('UTC').next(at('2025-01-15T00:00Z')).toISOString()).toBe('2025-01-15T09:00:00.000Z');
    expect(nine('Europe/Berlin').next(at('2025-01-15T00:00Z')).toISOString()).toBe('2025-01-15T08:00:00.000Z');
    expect(nine('Europe/Berlin').next(at('2025-07-15T00:00Z')).toISOString()).toBe('2025-07-15T07:00:00.000Z');
    expect(nine('Asia/Kolkata').next(at('2025-01-15T00:00Z')).toISOString()).toBe('2025-01-15T03:30:00.000Z');
    expect(nine('Europe/Berlin')(at('2025-01-15T09:00Z'))).toBe(false);
    expect(nine('Europe/Berlin')(at('2025-01-15T08:00Z'))).toBe(true);
    expect(crontab({}, { tz: 'europe/berlin' }).tz).toBe('Europe/Berlin');
    const sunday = crontab({ dayOfWeek: 0, hour: 0, minute: 30 }, { tz: 'Asia/Tokyo' }); // day and weekday in the zone too
    expect(sunday.next(at('2025-05-31T00:00Z')).toISOString()).toBe('2025-05-31T15:30:00.000Z');
  });

  it('spring forward (New York): a wall-clock minute that does not exist never matches', () => {
    const twoThirty = crontab({ hour: 2, minute: 30 }, { tz: 'America/New_York' });
    expect(matchesBetween(twoThirty, '2025-03-09T05:00Z', '2025-03-10T04:00Z')).toEqual([]);
    expect(twoThirty.next(at('2025-03-08T07:30Z')).toISOString()).toBe('2025-03-10T06:30:00.000Z');
    const every = crontab({}, { tz: 'America/New_York' });
    expect(every.next(at('2025-03-09T06:59Z')).toISOString()).toBe('2025-03-09T07:00:00.000Z'); // 01:59 EST → 03:00 EDT
    expect(matchesBetween(crontab({ hour: 2 }, { tz: 'America/New_York' }), '2025-03-09T05:00Z', '2025-03-10T04:00Z')).toEqual([]);
  });

  it('fall back (New York): a repeated wall-clock minute matches at both instants', () => {
    const oneThirty = crontab({ hour: 1, minute: 30 }, { tz: 'America/New_York' });
    expect(upcoming(oneThirty, '2025-11-01T12:00Z', 3)).toEqual(['2025-11-02T05:30:00.000Z', '2025-11-02T06:30:00.000Z', '2025-11-03T06:30:00.000Z']);
    expect(matchesBetween(crontab({ hour: 1 }, { tz: 'America/New_York' }), '2025-11-02T04:00Z', '2025-11-03T04:00Z')).toHaveLength(120);
  });

  it('Berlin: 02:xx is skipped on 2025-03-30 and happens twice on 2025-10-26', () => {
    const twoOClock = crontab({ hour: 2, minute: 0 }, { tz: 'Europe/Berlin' });
    expect(twoOClock.next(at('2025-03-29T12:00Z')).toISOString()).toBe('2025-03-31T00:00:00.000Z');
    const quarterPast = crontab({ hour: 2, minute: 15 }, { tz: 'Europe/Berlin' });
    expect(upcoming(quarterPast, '2025-10-25T12:00Z', 3)).toEqual(['2025-10-26T00:15:00.000Z', '2025-10-26T01:15:00.000Z', '2025-10-27T01:15:00.000Z']);
  });

  it('a schedule that only names non-existent minutes throws "never matches" from next()', () => {
    // The second Sunday of March at 02:30 is the US spring-forward gap every year since 2007.
    const gap = crontab({ month: 3, day: '8-14', dayOfWeek: 0, hour: 2, minute: 30 }, { tz: 'America/New_York' });
    expect(() => gap.next(at('2025-01-01T00:00Z'))).toThrow(RangeError);
    expect(() => gap.next(at('2025-01-01T00:00Z'))).toThrow(/never matches within 50 years .* in America\/New_York/);
  });

  describe('the process local zone when no tz is given', () => {
    const saved = process.env.TZ;
    afterEach(() => {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    });
    it('follows TZ', () => {
      process.env.TZ = 'America/New_York';
      const local = crontab({ hour: 2, minute: 30 });
      expect(local.tz).toBeUndefined();
      expect(local(at('2025-01-15T07:30Z'))).toBe(true);
      expect(local.next(at('2025-03-08T12:00Z')).toISOString()).toBe('2025-03-10T06:30:00.000Z');
      process.env.TZ = 'UTC';
      expect(local(at('2025-01-15T02:30Z'))).toBe(true);
    });
  });
});

describe('cron strings (Vixie semantics)', () => {
  it('parses the common forms, names and 7 = Sunday', () => {
    const five = cronSchedule('*/5 * * * *', UTC);
    expect(range(0, 59).filter((m) => five(new Date(Date.UTC(2025, 0, 1, 0, m))))).toEqual(range(0, 55, 5));
    expect(cronSchedule('  */5   *  * * *  ').source).toBe("cron '*/5 * * * *'");
    expect(upcoming(cronSchedule('30 9 * JAN-MAR MON-FRI', UTC), '2025-03-28T12:00Z', 2)).toEqual(['2025-03-31T09:30:00.000Z', '2026-01-01T09:30:00.000Z']);
    expect(upcoming(cronSchedule('0 0 * * 7', UTC), '2025-06-01T12:00Z', 1)).toEqual(['2025-06-08T00:00:00.000Z']);
    expect(upcoming(cronSchedule('0 0 * * 5-7', UTC), '2025-06-02T12:00Z', 3).map((d) => d.slice(0, 10))).toEqual(['2025-06-06', '2025-06-07', '2025-06-08']);
    expect(upcoming(cronSchedule('@daily', UTC), '2025-06-02T12:00Z', 1)).toEqual(['2025-06-03T00:00:00.000Z']);
    expect(cronSchedule('@hourly', UTC)(at('2025-06-02T12:00Z'))).toBe(true);
  });

  it('ORs day and dayOfWeek when both are restricted, where crontab({...}) ANDs them', () => {
    const vixie = cronSchedule('0 0 13 * 5', UTC);
    const seed = crontab({ day: 13, dayOfWeek: 5, hour: 0, minute: 0 }, UTC);
    expect(upcoming(vixie, '2025-01-01T00:00Z', 5).map((d) => d.slice(0, 10))).toEqual([
      '2025-01-03',
      '2025-01-10',
      '2025-01-13',
      '2025-01-17',
      '2025-01-24', // every Friday and every 13th
    ]);
    expect(upcoming(seed, '2025-01-01T00:00Z', 1).map((d) => d.slice(0, 10))).toEqual(['2025-06-13']); // Friday the 13th
    expect(vixie(at('2025-01-13T00:00Z'))).toBe(true);
    expect(seed(at('2025-01-13T00:00Z'))).toBe(false);
    // Only one of the two restricted: it alone decides, in both forms.
    expect(upcoming(cronSchedule('0 0 13 * *', UTC), '2025-01-01T00:00Z', 2).map((d) => d.slice(0, 10))).toEqual(['2025-01-13', '2025-02-13']);
    expect(upcoming(cronSchedule('0 0 * * 5', UTC), '2025-01-01T00:00Z', 2).map((d) => d.slice(0, 10))).toEqual(['2025-01-03', '2025-01-10']);
  });

  it('supports L, nL and # as cron-parser parses them', () => {
    expect(upcoming(cronSchedule('0 0 L * *', UTC), '2028-01-15T00:00Z', 2).map((d) => d.slice(0, 10))).toEqual(['2028-01-31', '2028-02-29']);
    expect(upcoming(cronSchedule('0 0 * * 5L', UTC), '2025-01-01T00:00Z', 3).map((d) => d.slice(0, 10))).toEqual(['2025-01-31', '2025-02-28', '2025-03-28']);
    expect(upcoming(cronSchedule('0 0 * * 1#1', UTC), '2025-01-01T00:00Z', 3).map((d) => d.slice(0, 10))).toEqual(['2025-01-06', '2025-02-03', '2025-03-03']);
  });

  it('follows the same DST rules as crontab({...})', () => {
    const ny = { tz: 'America/New_York' };
    expect(upcoming(cronSchedule('30 1 * * *', ny), '2025-11-01T12:00Z', 2)).toEqual(upcoming(crontab({ hour: 1, minute: 30 }, ny), '2025-11-01T12:00Z', 2));
    expect(cronSchedule('30 2 * * *', ny).next(at('2025-03-08T12:00Z')).toISOString()).toBe('2025-03-10T06:30:00.000Z');
  });

  const invalid: [unknown, typeof RangeError | typeof TypeError, RegExp][] = [
    ['0 * * * * *', TypeError, /has 6 fields; seconds are not supported/],
    ['* * * *', TypeError, /has 4 fields; expected 5/],
    ['', TypeError, /has 0 fields/],
    ['H * * * *', TypeError, /uses H \(hashed values\)/],
    ['@secondly', TypeError, /cron '@secondly' is not supported/],
    ['@reboot', TypeError, /not supported/],
    ['61 * * * *', RangeError, /cron '61 \* \* \* \*' is invalid: .*0-59/],
    ['5-1 * * * *', RangeError, /cron '5-1 \* \* \* \*' is invalid/],
    ['0 0 30 2 *', RangeError, /cron '0 0 30 2 \*' is invalid/],
    ['* * * * foo', TypeError, /cron '\* \* \* \* foo' is invalid/],
    [42, TypeError, /expected a cron string like '\*\/5 \* \* \* \*', got 42/],
  ];
  it.each(invalid)('rejects %o', (expression, ErrorClass, message) => {
    expect(() => cronSchedule(expression as string)).toThrow(ErrorClass);
    expect(() => cronSchedule(expression as string)).toThrow(message);
  });

  it('accepts THU and other names without mistaking them for H', () => {
    expect(() => cronSchedule('0 0 * * THU')).not.toThrow();
    expect(() => cronSchedule('0 0 * MAR-JUN THU,SAT')).not.toThrow();
  });
});

describe('toSchedule and isSchedule', () => {
  it('turns a cron string into a schedule and passes a schedule through', () => {
    const fromString = toSchedule('*/10 * * * *', UTC);
    expect(fromString.source).toBe("cron '*/10 * * * *'");
    expect(fromString.tz).toBe('UTC');
    const s = crontab({ minute: 0 }, UTC);
    expect(toSchedule(s)).toBe(s);
    expect(toSchedule(s, UTC)).toBe(s);
    expect(() => toSchedule(s, { tz: 'Europe/Berlin' })).toThrow(/already evaluated in UTC/);
  });

  it('refuses anything else with a TypeError', () => {
    expect(() => toSchedule({ hour: '0' } as never)).toThrow(TypeError);
    expect(() => toSchedule({ hour: '0' } as never)).toThrow(/wrap fields in crontab/);
    expect(() => toSchedule(42 as never)).toThrow(/got 42/);
    expect(() => toSchedule(null as never)).toThrow(TypeError);
    expect(() => toSchedule((() => true) as never)).toThrow(TypeError);
  });

  it('isSchedule recognises schedules only', () => {
    expect(isSchedule(crontab())).toBe(true);
    expect(isSchedule(cronSchedule('* * * * *'))).toBe(true);
    expect(isSchedule(() => true)).toBe(false);
    expect(isSchedule({ next: () => new Date(), source: 'x', tz: undefined })).toBe(false);
    expect(isSchedule('* * * * *')).toBe(false);
    expect(isSchedule(null)).toBe(false);
  });
});

// ---------------------------------------------------------------- property checks

/** mulberry32: a small seeded generator so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface RandomField {
  text: string | number;
  values: Set<number>;
  star: boolean;
}

/** A random field in any syntax, with the value set it must mean (dayOfWeek folded to 0-6). */
function randomField(next: () => number, min: number, max: number, starChance: number, dow = false, maxPieces = 3): RandomField {
  const int = (a: number, b: number) => a + Math.floor(next() * (b - a + 1));
  const fold = (v: number) => (dow ? v % 7 : v);
  if (next() < starChance) return { text: '*', values: new Set(range(min, dow ? 6 : max).map(fold)), star: true };
  const pieces: string[] = [];
  const values = new Set<number>();
  const count = int(1, maxPieces);
  for (let i = 0; i < count; i++) {
    const kind = int(0, 3);
    if (kind === 0) {
      const v = int(min, max);
      pieces.push(String(v));
      values.add(fold(v));
    } else if (kind === 1) {
      const step = int(1, Math.max(1, Math.floor((max - min) / 2)));
      pieces.push(`*/${step}`);
      for (const v of range(min, dow ? 6 : max, step)) values.add(fold(v));
    } else {
      const a = int(min, max);
      const b = int(a, max);
      const step = kind === 3 ? int(1, 5) : 1;
      pieces.push(kind === 3 ? `${a}-${b}/${step}` : `${a}-${b}`);
      for (const v of range(a, b, step)) values.add(fold(v));
    }
  }
  const text = pieces.length === 1 && /^\d+$/.test(pieces[0]!) && next() < 0.5 ? Number(pieces[0]) : pieces.join(',');
  return { text, values, star: false };
}

const WEEKDAY = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 } as const;
const wallFormatters = new Map<string, Intl.DateTimeFormat>();
/** Wall-clock fields by formatToParts: independent of the module's own parsing of format(). */
function wallFields(t: number, tz: string) {
  let f = wallFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'short',
    });
    wallFormatters.set(tz, f);
  }
  const p = Object.fromEntries(f.formatToParts(t).map((x) => [x.type, x.value]));
  return { month: +p.month!, day: +p.day!, hour: +p.hour!, minute: +p.minute!, weekday: WEEKDAY[p.weekday as keyof typeof WEEKDAY] };
}

const ZONES = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'Asia/Kolkata'];
const TRANSITIONS = ['2025-03-09T07:00Z', '2025-11-02T06:00Z', '2025-03-30T01:00Z', '2025-10-26T01:00Z', '2025-04-05T15:00Z', '2025-10-04T15:30Z'].map((s) =>
  at(s).getTime(),
);
const WINDOW_MINUTES = 3 * 24 * 60;

describe('property: next() agrees with a brute-force minute walk', () => {
  for (const form of ['crontab', 'cron'] as const) {
    it(`${form}: 150 random schedules in five zones, near and away from DST changes`, () => {
      const seed = form === 'crontab' ? 20251127 : 7;
      const next = rng(seed);
      // cron-parser refuses overlapping pieces ('1-5,3'), so cron strings get fewer of them.
      const pieces = form === 'crontab' ? 3 : 2;
      let tested = 0;
      for (let i = 0; tested < 150 && i < 600; i++) {
        const f = {
          minute: randomField(next, 0, 59, 0.3, false, pieces),
          hour: randomField(next, 0, 23, 0.5, false, pieces),
          day: randomField(next, 1, 31, 0.8, false, pieces),
          month: randomField(next, 1, 12, 0.85, false, pieces),
          dayOfWeek: randomField(next, 0, 7, 0.7, true, pieces),
        };
        const tz = ZONES[Math.floor(next() * ZONES.length)]!;
        const base = next() < 0.6 ? TRANSITIONS[Math.floor(next() * TRANSITIONS.length)]! : Date.UTC(2024, 0, 1) + next() * 3 * 365 * 86_400_000;
        const after = new Date(Math.floor(base - next() * 2 * 86_400_000));
        let schedule: Schedule;
        const dayIn = (w: ReturnType<typeof wallFields>) => {
          const dom = f.day.values.has(w.day);
          const dow = f.dayOfWeek.values.has(w.weekday);
          if (form === 'crontab') return dom && dow;
          return f.day.star || f.dayOfWeek.star ? dom && dow : dom || dow; // Vixie
        };
        const expected = (t: number): boolean => {
          const w = wallFields(t, tz);
          return f.minute.values.has(w.minute) && f.hour.values.has(w.hour) && f.month.values.has(w.month) && dayIn(w);
        };
        try {
          schedule =
            form === 'crontab'
              ? crontab({ minute: f.minute.text, hour: f.hour.text, day: f.day.text, month: f.month.text, dayOfWeek: f.dayOfWeek.text }, { tz })
              : cronSchedule([f.minute, f.hour, f.day, f.month, f.dayOfWeek].map((x) => x.text).join(' '), { tz });
        } catch (error) {
          // Only an impossible day/month combination (or, for cron-parser, a repeated value) may be refused.
          expect(String(error), `seed ${seed} #${i}`).toMatch(form === 'crontab' ? /never matches/ : /never matches|day of month|duplicate values/);
          continue;
        }
        tested++;
        const label = `seed ${seed} #${i} ${schedule.source} tz=${tz} after=${after.toISOString()}`;
        const got = schedule.next(after);
        expect(got.getTime() % 60_000, label).toBe(0);
        expect(got.getTime(), label).toBeGreaterThan(after.getTime());
        expect(schedule(got), label).toBe(true);
        expect(expected(got.getTime()), label).toBe(true);
        let brute = -1;
        const start = Math.floor(after.getTime() / 60_000) * 60_000 + 60_000;
        for (let t = start; t < start + WINDOW_MINUTES * 60_000; t += 60_000) {
          if (expected(t)) {
            brute = t;
            break;
          }
        }
        if (brute >= 0) expect(got.toISOString(), label).toBe(new Date(brute).toISOString());
        else expect(got.getTime(), label).toBeGreaterThanOrEqual(start + WINDOW_MINUTES * 60_000);
        // The predicate agrees with the oracle at random instants too (seconds included).
        for (let k = 0; k < 5; k++) {
          const t = after.getTime() + Math.floor(next() * 3 * 86_400_000);
          expect(schedule(new Date(t)), `${label} at ${new Date(t).toISOString()}`).toBe(expected(t));
        }
      }
      expect(tested).toBe(150);
    });
  }

  it('cron strings: next() matches cron-parser in UTC (an independent implementation)', () => {
    const next = rng(99);
    for (let i = 0; i < 150; i++) {
      const fields = [
        randomField(next, 0, 59, 0.3),
        randomField(next, 0, 23, 0.5),
        randomField(next, 1, 31, 0.6),
        randomField(next, 1, 12, 0.7),
        randomField(next, 0, 7, 0.6, true),
      ].map((x) => x.text);
      const specials = ['L', '5L', '1#2', '0#5'];
      if (next() < 0.15) fields[2] = 'L';
      if (next() < 0.15) fields[4] = specials[Math.floor(next() * specials.length)]!;
      const expression = fields.join(' ');
      let schedule: Schedule;
      try {
        schedule = cronSchedule(expression, UTC);
      } catch {
        expect(() => CronExpressionParser.parse(expression, { tz: 'UTC' })).toThrow();
        continue;
      }
      let ours = new Date(Date.UTC(2024, 0, 1) + Math.floor(next() * 3 * 365 * 86_400_000));
      const theirs = CronExpressionParser.parse(expression, { tz: 'UTC', currentDate: ours });
      for (let k = 0; k < 4; k++) {
        ours = schedule.next(ours);
        expect(ours.toISOString(), `${expression} step ${k}`).toBe(theirs.next().toISOString());
      }
    }
  });
});
