/**
 * `periodicCommand({ every: ms }, fn)` at definition: what is refused, and the
 * schedule it registers (its slots, its next starts, how `taskmill schedule`
 * names it). The scheduler's handling of interval slots is in
 * test/machines/scheduler.test.ts; several consumers in multi-consumer.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, periodicCommand, registry } from '../../src/index.js';
import { isIntervalSchedule } from '../../src/schedule/crontab.js';

const defined: string[] = [];
afterEach(() => {
  for (const name of defined.splice(0)) registry.unregister(name);
});

describe('periodicCommand({ every })', () => {
  it('refuses an interval under 1,000 ms, fractional, too long or not a number, naming `every`, and registers nothing', () => {
    for (const every of [999, 0, -5, 1500.5, 2 ** 31, Number.NaN, '30000']) {
      const name = `bad-${String(every)}`;
      expect(() => periodicCommand({ every } as never, name, () => {})).toThrow(ConfigError);
      expect(() => periodicCommand({ every } as never, name, () => {})).toThrow(
        /periodicCommand: invalid every .*: must be an integer number of ms from 1000 to 2147483647/,
      );
      expect(registry.get(name)).toBeUndefined();
    }
  });

  it('registers an interval schedule: slots on epoch multiples of `every`, next() the following start, named for `taskmill schedule`', () => {
    const cmd = periodicCommand({ every: 15_000 }, 'quarterMinute', () => {});
    defined.push(cmd.commandName);
    const schedule = registry.get('quarterMinute')!.schedule!;
    expect(isIntervalSchedule(schedule) && schedule.every).toBe(15_000);
    expect(schedule.source).toBe('every 15000 ms');
    expect(schedule.tz).toBeUndefined();
    expect(schedule.next(new Date('2030-01-01T00:00:07Z')).toISOString()).toBe('2030-01-01T00:00:15.000Z');
    expect(schedule.next(new Date('2030-01-01T00:00:15Z')).toISOString()).toBe('2030-01-01T00:00:30.000Z');
    // A 90-second interval starts a slot in some minutes only.
    const ninety = periodicCommand({ every: 90_000 }, 'ninety', () => {});
    defined.push(ninety.commandName);
    const s90 = registry.get('ninety')!.schedule!;
    expect([0, 1, 2, 3].map((m) => s90(new Date(Date.UTC(2030, 0, 1, 0, m))))).toEqual([true, true, false, true]);
  });
});
