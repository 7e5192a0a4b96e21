/**
 * The command line's side of periodic commands, with real processes:
 * `taskmill schedule` lists each periodic command with its schedule and its
 * next run times, and `taskmill consume` runs the scheduler unless given
 * `-n/--no-periodic` (seen in the 'consumer running' line and in the queue:
 * nothing enqueued, no slot claimed); SIGHUP's actor snapshot shows the
 * scheduler of a consumer without -n.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteQueue } from '../../src/index.js';
import { ROOT, jsonLines, spawnCli, tempDir, waitFor, type Spawned } from '../helpers/processes.js';

const SCHEDULES = path.join(ROOT, 'test', 'fixtures', 'periodic-schedules.ts');
const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'periodic-commands.ts');
const NO_PERIODIC = path.join(ROOT, 'test', 'fixtures', 'e2e-commands.ts');
const MINUTE = 60_000;
/** The zone the `schedule` process runs in: a half-hour offset shows local-zone schedules are evaluated locally. */
const LOCAL_TZ = 'Asia/Kolkata';

interface Wall {
  month: number;
  day: number;
  weekday: number;
  hour: number;
  minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
/** The wall clock of `date` in `tz`, read through Intl (independent of taskmill's crontab engine). */
function wall(date: Date, tz: string): Wall {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      month: 'numeric',
      day: 'numeric',
      weekday: 'short',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(tz, f);
  }
  const parts = Object.fromEntries(f.formatToParts(date).map((p) => [p.type, p.value]));
  const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(parts.weekday!);
  return { month: Number(parts.month), day: Number(parts.day), weekday, hour: Number(parts.hour), minute: Number(parts.minute) };
}

/** What the fixture's schedules mean, written as wall-clock predicates. */
const EXPECTED: Record<string, { source: string; matches: (d: Date) => boolean }> = {
  quarterHourly: { source: "crontab(minute='*/15') (UTC)", matches: (d) => d.getUTCMinutes() % 15 === 0 },
  fridayThe13th: {
    source: 'crontab(day=13, dayOfWeek=5, hour=0, minute=0) (UTC)',
    matches: (d) => d.getUTCDate() === 13 && d.getUTCDay() === 5 && d.getUTCHours() === 0 && d.getUTCMinutes() === 0,
  },
  nightly: { source: "cron '30 2 * * *'", matches: (d) => ((w) => w.hour === 2 && w.minute === 30)(wall(d, LOCAL_TZ)) },
  standup: {
    source: "cron '0 9 * * MON-FRI' (America/New_York)",
    matches: (d) => ((w) => w.hour === 9 && w.minute === 0 && w.weekday >= 1 && w.weekday <= 5)(wall(d, 'America/New_York')),
  },
  hourly: { source: "cron '@hourly'", matches: (d) => wall(d, LOCAL_TZ).minute === 0 },
};

/** The first minute in (from, to) that matches, or null. Whole days are skipped when no minute of a UTC day can match. */
function firstMatchBetween(matches: (d: Date) => boolean, from: number, to: number): Date | null {
  for (let t = Math.floor(from / MINUTE) * MINUTE + MINUTE; t < to; t += MINUTE) {
    const d = new Date(t);
    if (matches(d)) return d;
  }
  return null;
}

// Process start-up (tsx) is slow on a loaded machine: wait generously, never assert on speed.
const STARTUP_MS = 60_000;
const children: Spawned[] = [];
afterAll(() => children.forEach((c) => c.child.kill('SIGKILL')));

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Spawned {
  const spawned = spawnCli(args, { env });
  children.push(spawned);
  return spawned;
}

describe('taskmill schedule', () => {
  it('lists every periodic command with its schedule and its next 3 run times', { timeout: 150_000 }, async () => {
    const before = Date.now();
    const run = cli(['schedule', SCHEDULES], { TZ: LOCAL_TZ });
    expect(await run.exited, run.stderr()).toBe(0);
    const after = Date.now();
    const lines = run.stdout().trimEnd().split('\n');
    expect(lines).toHaveLength(2 * Object.keys(EXPECTED).length);

    for (let i = 0; i < lines.length; i += 2) {
      const [, name, source] = /^(\S+) {2}(.+)$/.exec(lines[i]!)!;
      const expected = EXPECTED[name!];
      expect(expected, `unexpected command ${name}`).toBeDefined();
      expect(source).toBe(expected!.source);
      const [, list] = /^ {2}next: (.+)$/.exec(lines[i + 1]!)!;
      const times = list!.split(', ');
      expect(times).toHaveLength(3);
      for (const iso of times) expect(iso).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$/);
      const ms = times.map(Date.parse);
      expect(ms[0]).toBeGreaterThan(before);
      for (let k = 0; k < 3; k++) {
        expect(expected!.matches(new Date(ms[k]!)), `${name} ${times[k]} does not match its schedule`).toBe(true);
        if (k > 0) expect(ms[k]).toBeGreaterThan(ms[k - 1]!);
        // Nothing skipped: no matching minute between one run time and the next (nor between now and the first).
        const gapStart = k === 0 ? after : ms[k - 1]!;
        expect(firstMatchBetween(expected!.matches, gapStart, ms[k]!), `${name}: a run before ${times[k]} is missing`).toBeNull();
      }
    }
  });

  it('--count changes how many run times are shown; a module without periodic commands says so', { timeout: 150_000 }, async () => {
    const five = cli(['schedule', '--count', '5', SCHEDULES]);
    expect(await five.exited, five.stderr()).toBe(0);
    const nextLines = five
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('  next: '));
    expect(nextLines.map((l) => l.split(', ').length)).toEqual([5, 5, 5, 5, 5]);

    const none = cli(['schedule', NO_PERIODIC]);
    expect(await none.exited, none.stderr()).toBe(0);
    expect(none.stdout().trim()).toBe('no periodic commands registered');
  });
});

describe('taskmill consume and the scheduler', () => {
  const dir = tempDir('taskmill-periodic-cli-');

  async function consumeOnce(label: string, extraArgs: string[]) {
    const file = path.join(dir, `${label}.sqlite`);
    const recordFile = path.join(dir, `${label}-records.txt`);
    const consumer = cli(['consume', '-q', `sqlite:${file}`, '-v', '2', '-d', '0.02', '-m', '0.2', ...extraArgs, COMMANDS], { RECORD_FILE: recordFile });
    const running = await waitFor('consumer running', () => jsonLines(consumer.stdout()).find((l) => l.msg === 'consumer running'), STARTUP_MS);
    consumer.child.kill('SIGHUP');
    const snapshot = await waitFor('snapshot log line', () => jsonLines(consumer.stdout()).find((l) => l.msg === 'snapshot'), STARTUP_MS);
    return { consumer, file, recordFile, running, actors: snapshot.actors as string[] };
  }

  function claimedSlots(file: string): string[] {
    const db = new Database(file, { readonly: true });
    try {
      return (db.prepare('SELECT key FROM taskmill_slots').all() as { key: string }[]).map((r) => r.key);
    } finally {
      db.close();
    }
  }

  // The scheduler actor may still run with -n (it also promotes delayed jobs), so this checks effects:
  // it fires at once on start, so by the time the snapshot is logged a periodic run would have been enqueued.
  it('with -n enqueues no periodic command: periodic:false, nothing enqueued or claimed', { timeout: 150_000 }, async () => {
    const { consumer, file, recordFile, running, actors } = await consumeOnce('no-periodic', ['-n']);
    expect(running.periodic).toBe(false);
    expect(actors.some((a) => a.startsWith('reader:'))).toBe(true);

    consumer.child.kill('SIGTERM');
    expect(await consumer.exited, consumer.stderr()).toBe(0);
    expect(jsonLines(consumer.stdout()).filter((l) => typeof l.slot === 'string')).toEqual([]);
    expect(claimedSlots(file)).toEqual([]);
    const queue = new SqliteQueue(file);
    try {
      expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, failed: 0 });
    } finally {
      await queue.close();
    }
    expect(existsSync(recordFile)).toBe(false);
  });

  it('without -n runs the scheduler, which fires the minute it starts in at once', { timeout: 150_000 }, async () => {
    const started = Date.now();
    const { consumer, file, recordFile, running, actors } = await consumeOnce('periodic', []);
    expect(running.periodic).toBe(true);
    expect(actors.filter((a) => a.startsWith('scheduler'))).toHaveLength(1);

    const enqueued = await waitFor(
      'periodic command enqueued',
      () => jsonLines(consumer.stdout()).find((l) => l.msg === 'periodic command enqueued'),
      STARTUP_MS,
    );
    const slotMinute = Date.parse((enqueued.slot as string).replace(/^everyMinute@/, ''));
    expect(slotMinute).toBeGreaterThanOrEqual(Math.floor(started / MINUTE) * MINUTE);
    expect(slotMinute).toBeLessThanOrEqual(Date.now());
    await waitFor('the periodic command to run', () => existsSync(recordFile) && readFileSync(recordFile, 'utf8').includes('\n'), STARTUP_MS);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited, consumer.stderr()).toBe(0);
    expect(claimedSlots(file)).toContain(enqueued.slot);
  });
});
