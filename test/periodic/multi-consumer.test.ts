/**
 * Issue 3's acceptance run on a simulated clock: several in-process consumers,
 * each with its own SqliteQueue on ONE shared file and its own registry of the
 * same periodic commands, all running the scheduler. Every (command, minute)
 * that is due must be enqueued exactly once across them — with skewed clocks,
 * a clock that jumps back, consumers starting mid-minute, downtime, a clock
 * that jumps forward while running, and a backend that fails for a while.
 *
 * Time is modelled the way a real process sees it: timers run on monotonic
 * time (one shared SimulatedClock, stepped timer by timer so each fires at
 * its own due time), while each consumer's `now()` is that time plus its own
 * wall-clock offset, which the test skews and jumps.
 *
 * What is counted: every writeUnique call (a SqliteQueue subclass records the
 * slot key, whether the claim was won and the job id), and every run of a
 * periodic command (by job id) — so "exactly once" is checked both where the
 * scheduler enqueues and where the workers run.
 */
import path from 'node:path';
import pino from 'pino';
import { SimulatedClock } from 'xstate';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CommandRegistry,
  QueueConnectionError,
  SqliteQueue,
  createConsumer,
  crontab,
  periodicCommand,
  registry,
  type Consumer,
  type JobContext,
  type RegisteredCommand,
} from '../../src/index.js';
import { intervalSchedule } from '../../src/schedule/crontab.js';
import { decodeMessage } from '../../src/codec/message.js';
import { slotKey } from '../../src/machines/scheduler.js';
import { tempDir } from '../helpers/processes.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const at = (iso: string) => Date.parse(iso);

// The commands under test, registered through the public API. Each consumer
// gets its own registry holding the same schedules with a recording function.
periodicCommand(crontab({}, { tz: 'UTC' }), 'everyMinute', () => {});
periodicCommand('*/5 * * * *', 'everyFifth', () => {}); // a cron string: the process's local zone
periodicCommand(crontab({ minute: '*/3', hour: '*' }, { tz: 'UTC' }), 'everyThird', () => {});
periodicCommand(crontab({ hour: 1, minute: '10-20' }, { tz: 'UTC' }), 'oneTenToTwenty', () => {});
periodicCommand(crontab({ hour: 5, minute: 0 }, { tz: 'UTC' }), 'fiveAm', () => {});

/** Is `name` due in the minute starting at `start`? Written without crontab, as an oracle. */
const DUE: Record<string, (start: Date) => boolean> = {
  everyMinute: () => true,
  everyFifth: (d) => d.getMinutes() % 5 === 0,
  everyThird: (d) => d.getUTCMinutes() % 3 === 0,
  oneTenToTwenty: (d) => d.getUTCHours() === 1 && d.getUTCMinutes() >= 10 && d.getUTCMinutes() <= 20,
  fiveAm: (d) => d.getUTCHours() === 5 && d.getUTCMinutes() === 0,
};

/** Slot keys of every due (command, minute) for wall minutes [from, to] (ms, floored to the minute). */
function dueKeys(from: number, to: number, names = Object.keys(DUE)): string[] {
  const keys: string[] = [];
  for (let m = Math.floor(from / MINUTE); m <= Math.floor(to / MINUTE); m++) {
    for (const name of names) if (DUE[name]!(new Date(m * MINUTE))) keys.push(slotKey(name, m));
  }
  return keys.sort();
}

const minuteKey = (name: string, iso: string) => slotKey(name, Math.floor(at(iso) / MINUTE));

interface SlotAttempt {
  consumer: string;
  key: string;
  /** The message id when this call won the claim, null when it lost, 'error' when the backend failed. */
  outcome: string | null;
  jobId: string;
  /** The consumer's wall clock at the call. */
  wall: number;
}

interface Run {
  consumer: string;
  command: string;
  jobId: string;
}

class RecordingQueue extends SqliteQueue {
  failing = false;
  constructor(
    file: string,
    private readonly label: string,
    private readonly attempts: SlotAttempt[],
    private readonly wall: () => number,
  ) {
    super(file);
  }

  override async writeUnique(key: string, data: string, ttlMs: number): Promise<string | null> {
    const record = { consumer: this.label, key, jobId: decodeMessage(data).id, wall: this.wall() };
    if (this.failing) {
      this.attempts.push({ ...record, outcome: 'error' });
      throw new QueueConnectionError('injected: database is locked');
    }
    const id = await super.writeUnique(key, data, ttlMs);
    this.attempts.push({ ...record, outcome: id });
    return id;
  }
}

interface Member {
  consumer: Consumer;
  queue: RecordingQueue;
  offsetMs: number;
}

/** Consumers sharing one SQLite file, one monotonic simulated time, and each its own wall-clock offset. */
class World {
  readonly time = new SimulatedClock();
  readonly attempts: SlotAttempt[] = [];
  readonly runs: Run[] = [];
  readonly logs: Record<string, unknown>[] = [];
  readonly members = new Map<string, Member>();
  readonly file = path.join(tempDir('taskmill-periodic-'), 'queue.sqlite');

  constructor(startMs: number) {
    this.time.set(startMs);
  }

  wall(label: string): number {
    return this.time.now() + (this.members.get(label)?.offsetMs ?? 0);
  }

  /** Moves one consumer's wall clock (NTP step, suspend/resume); its timers keep running on monotonic time. */
  jumpClock(label: string, byMs: number): void {
    this.members.get(label)!.offsetMs += byMs;
  }

  async start(label: string, offsetMs = 0, periodic: readonly RegisteredCommand[] = registry.periodic()): Promise<RecordingQueue> {
    const commands = new CommandRegistry();
    for (const command of periodic) {
      const runs = this.runs;
      commands.register({
        ...command,
        fn(this: JobContext) {
          runs.push({ consumer: label, command: this.command, jobId: this.jobId });
        },
      });
    }
    const queue = new RecordingQueue(this.file, label, this.attempts, () => this.wall(label));
    const clock = {
      setTimeout: (fn: (...args: unknown[]) => void, ms: number) => this.time.setTimeout(fn, ms),
      clearTimeout: (id: number) => this.time.clearTimeout(id),
      now: () => this.wall(label),
    };
    const logs = this.logs;
    const logger = pino({ level: 'debug', base: { consumer: label } }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    const consumer = createConsumer({ queue, registry: commands, periodic: true, clock, logger, pollDelayMs: 100, maxPollDelayMs: 5_000 });
    this.members.set(label, { consumer, queue, offsetMs });
    await consumer.start();
    await settle();
    return queue;
  }

  /** Advances monotonic time by `ms`, firing every timer at its own due time and letting I/O replies land in between. */
  async advance(ms: number): Promise<void> {
    const end = this.time.now() + ms;
    const timers = (this.time as unknown as { timeouts: Map<number, { start: number; timeout: number }> }).timeouts;
    for (;;) {
      await settle();
      let next = Infinity;
      for (const { start, timeout } of timers.values()) next = Math.min(next, start + timeout);
      if (next > end) break;
      // Whole ms: at a fractional due time start + timeout - start can round below timeout, and the timer would never fire.
      this.time.set(Math.max(Math.ceil(next), this.time.now()));
      if ([...timers.values()].some((t) => t.start + t.timeout <= this.time.now())) this.time.set(this.time.now() + 1);
    }
    this.time.set(end);
    await settle();
  }

  async advanceTo(iso: string): Promise<void> {
    await this.advance(at(iso) - this.time.now());
  }

  async stop(label: string): Promise<void> {
    const { consumer, queue } = this.members.get(label)!;
    const stopped = consumer.stop();
    await settle();
    expect(await stopped).toEqual({ forced: false });
    await queue.close();
    this.members.delete(label);
  }

  /** Ends a consumer the way kill -9 ends its process: its actors stop mid-step, no drain, nothing released. */
  async kill(label: string): Promise<void> {
    const { consumer, queue } = this.members.get(label)!;
    consumer.done.catch(() => {}); // how the dead one ended is not the question
    consumer.actor.stop();
    this.members.delete(label);
    await settle();
    await queue.close();
  }

  async stopAll(): Promise<void> {
    for (const label of [...this.members.keys()]) await this.stop(label);
  }

  written(): SlotAttempt[] {
    return this.attempts.filter((a) => a.outcome !== null && a.outcome !== 'error');
  }

  writtenKeys(filter: (key: string) => boolean = () => true): string[] {
    return this.written()
      .map((a) => a.key)
      .filter(filter)
      .sort();
  }

  attemptsBy(label: string): SlotAttempt[] {
    return this.attempts.filter((a) => a.consumer === label && a.outcome !== 'error');
  }

  errors(): Record<string, unknown>[] {
    return this.logs.filter((l) => (l.level as number) >= 50);
  }
}

/** Lets promise replies and setImmediate work (ACK batches) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

const minutesOf = (attempts: SlotAttempt[], name: string) =>
  attempts.filter((a) => a.key.startsWith(`${name}@`)).map((a) => Math.floor(Date.parse(a.key.slice(name.length + 1)) / MINUTE));

let world: World | null = null;
afterEach(async () => {
  await world?.stopAll();
  world = null;
});

// CPU-bound (each simulated minute is real work for five consumers): alone ~10 s, several times that beside other test files.
describe('periodic commands across three (and five) consumers sharing one SQLite file (simulated clock)', { timeout: 120_000 }, () => {
  it('enqueues and runs each due (command, minute) exactly once over 35 minutes, with skewed clocks and a clock jumping back', async () => {
    const w = (world = new World(at('2030-01-01T00:48:20Z')));

    // A starts mid-minute and fires 00:48 at once; B and C start later in the same minute and lose that claim.
    await w.start('A', 0);
    expect(w.attemptsBy('A').find((a) => a.key === minuteKey('everyMinute', '2030-01-01T00:48Z'))?.outcome).toMatch(/^\d+$/);
    await w.advance(20_000);
    await w.start('B', +7_000);
    await w.advance(15_000);
    await w.start('C', -4_000);
    for (const label of ['B', 'C']) {
      const first = w.attemptsBy(label).filter((a) => a.key === minuteKey('everyMinute', '2030-01-01T00:48Z'));
      expect(first, `${label} fires the minute it starts in, and loses the claim`).toMatchObject([{ outcome: null }]);
    }

    await w.advanceTo('2030-01-01T01:05:30Z');
    w.jumpClock('C', -2 * MINUTE); // C's wall clock now reads 01:03:26, after it already fired 01:05
    // End in a quiet second (no consumer's minute boundary within the last 20 s) so every job has been read and run.
    await w.advanceTo('2030-01-01T01:22:40Z');

    // Every due (command, minute) from 00:48 to 01:22 written exactly once, nothing else.
    const expected = dueKeys(at('2030-01-01T00:48Z'), at('2030-01-01T01:22Z'));
    expect(expected.filter((k) => k.startsWith('everyMinute@'))).toHaveLength(35);
    expect(expected.filter((k) => k.startsWith('oneTenToTwenty@'))).toHaveLength(11);
    expect(w.writtenKeys()).toEqual(expected);
    expect(w.writtenKeys((k) => k.startsWith('fiveAm@'))).toEqual([]);

    // Each scheduler asked about each slot at most once (the clock reversal did not make C fire a minute twice),
    // and none skipped a minute: its every-minute slots are contiguous from its first minute to its last.
    for (const label of ['A', 'B', 'C']) {
      const keys = w.attemptsBy(label).map((a) => a.key);
      expect(new Set(keys).size, `${label} attempted a slot twice`).toBe(keys.length);
      const minutes = minutesOf(w.attemptsBy(label), 'everyMinute');
      expect(minutes).toEqual(Array.from({ length: minutes.length }, (_, i) => minutes[0]! + i));
    }
    expect(minutesOf(w.attemptsBy('C'), 'everyMinute').at(-1)).toBe(at('2030-01-01T01:20Z') / MINUTE); // C is 2 min behind
    // The claims were shared out: every consumer won some and lost some.
    for (const label of ['A', 'B', 'C']) {
      const outcomes = w.attemptsBy(label).map((a) => a.outcome);
      expect(
        outcomes.some((o) => o === null),
        `${label} never lost a claim`,
      ).toBe(true);
    }

    // Every written job ran exactly once (on whichever consumer read it), and the queue is empty.
    expect(w.runs.map((r) => r.jobId).sort()).toEqual(
      w
        .written()
        .map((a) => a.jobId)
        .sort(),
    );
    expect(new Set(w.runs.map((r) => r.consumer)).size).toBeGreaterThan(1);
    const stats = await w.members.get('A')!.queue.stats();
    expect(stats).toMatchObject({ ready: 0, leased: 0, failed: 0 });
    expect(w.errors()).toEqual([]);
  });

  it('five consumers with clocks skewed up to ±30 s, the one furthest ahead killed mid-minute: each due (command, minute) enqueued and run exactly once', async () => {
    // Issue 9, scenario 11. B's clock is 30 s ahead, so B reaches each minute boundary first and wins its
    // claims; it is killed 10 s into its 10:05 (the others' 10:04), after claiming 10:05. The rest carry on.
    const w = (world = new World(at('2030-01-01T10:00:20Z')));
    const offsets: Record<string, number> = { A: 0, B: +30_000, C: -30_000, D: +12_000, E: -25_000 };
    for (const [label, offset] of Object.entries(offsets)) await w.start(label, offset);

    await w.advanceTo('2030-01-01T10:04:40Z'); // B's wall clock: 10:05:10
    const b0505 = w.attemptsBy('B').find((a) => a.key === minuteKey('everyMinute', '2030-01-01T10:05Z'));
    expect(b0505?.outcome, 'B, furthest ahead, claimed 10:05 before it was killed').toMatch(/^\d+$/);
    await w.kill('B');
    // A quiet second at the end: the last boundary any survivor crossed (A's 10:09) was 20 s ago; E (-25 s) is still in 10:08.
    await w.advanceTo('2030-01-01T10:09:20Z');

    // C (-30 s) fired 09:59 when it started; D (+12 s) has fired 10:09. Every due slot between, once.
    expect(w.writtenKeys()).toEqual(dueKeys(at('2030-01-01T09:59Z'), at('2030-01-01T10:09Z')));
    // B won nothing after its death; the survivors shared the minutes after it.
    expect(minutesOf(w.attemptsBy('B'), 'everyMinute').at(-1)).toBe(at('2030-01-01T10:05Z') / MINUTE);
    const after = w.written().filter((a) => a.key.startsWith('everyMinute@') && Date.parse(a.key.slice('everyMinute@'.length)) > at('2030-01-01T10:05Z'));
    expect(after.map((a) => a.consumer)).not.toContain('B');
    expect(after).toHaveLength(4);
    // Every survivor asked about every minute it lived through, once each.
    for (const label of ['A', 'C', 'D', 'E']) {
      const keys = w.attemptsBy(label).map((a) => a.key);
      expect(new Set(keys).size, `${label} attempted a slot twice`).toBe(keys.length);
      const minutes = minutesOf(w.attemptsBy(label), 'everyMinute');
      expect(minutes).toEqual(Array.from({ length: minutes.length }, (_, i) => minutes[0]! + i));
    }
    // Each written job ran exactly once, on whichever consumer (B included, before it died) read it.
    expect(w.runs.map((r) => r.jobId).sort()).toEqual(
      w
        .written()
        .map((a) => a.jobId)
        .sort(),
    );
    expect(await w.members.get('A')!.queue.stats()).toMatchObject({ ready: 0, leased: 0, failed: 0 });
    expect(w.errors()).toEqual([]);
  });

  it('after downtime fires only the current minute: missed runs are skipped, not caught up', async () => {
    const w = (world = new World(at('2030-01-01T02:00:10Z')));
    await w.start('D');
    await w.advanceTo('2030-01-01T02:03:30Z');
    await w.stop('D');

    // Five hours with no consumer at all (05:00, when fiveAm was due, passes unseen).
    await w.advance(5 * HOUR);
    await w.start('E');
    await w.start('F', 2_000);
    await w.advanceTo('2030-01-01T07:05:30Z');

    expect(w.writtenKeys()).toEqual(
      [...dueKeys(at('2030-01-01T02:00Z'), at('2030-01-01T02:03Z')), ...dueKeys(at('2030-01-01T07:03Z'), at('2030-01-01T07:05Z'))].sort(),
    );
    expect(w.writtenKeys((k) => k.startsWith('fiveAm@'))).toEqual([]);
  });

  it('when the wall clock jumps forward while running (suspend/resume), fires the new current minute and none in between', async () => {
    const w = (world = new World(at('2030-01-01T03:00:30Z')));
    await w.start('G');
    await w.start('H', -3_000);
    await w.advanceTo('2030-01-01T03:02:30Z');
    w.jumpClock('G', 3 * HOUR); // G reads 06:02:30, H still 03:02:27
    await w.advanceTo('2030-01-01T03:04:30Z');

    expect(minutesOf(w.attemptsBy('G'), 'everyMinute').map((m) => new Date(m * MINUTE).toISOString())).toEqual([
      '2030-01-01T03:00:00.000Z',
      '2030-01-01T03:01:00.000Z',
      '2030-01-01T03:02:00.000Z',
      '2030-01-01T06:03:00.000Z',
      '2030-01-01T06:04:00.000Z',
    ]);
    // H keeps the 03:xx minutes; G's jump enqueued 06:03 and 06:04 (its clock's minutes), each once.
    expect(w.writtenKeys((k) => k.startsWith('everyMinute@'))).toEqual(
      dueKeys(at('2030-01-01T03:00Z'), at('2030-01-01T03:04Z'), ['everyMinute'])
        .concat(dueKeys(at('2030-01-01T06:03Z'), at('2030-01-01T06:04Z'), ['everyMinute']))
        .sort(),
    );
  });

  it('retries a failed claim within its minute, gives the minute up once it has passed, and keeps scheduling', async () => {
    const w = (world = new World(at('2030-01-01T03:59:50Z')));
    const queue = await w.start('J');

    // 04:00: the backend fails for the first 8 s; the retry 5 s later fails too, the next one (04:00:10) succeeds.
    await w.advanceTo('2030-01-01T03:59:59Z');
    queue.failing = true;
    await w.advanceTo('2030-01-01T04:00:08Z');
    queue.failing = false;
    await w.advanceTo('2030-01-01T04:00:30Z');
    const at0400 = w.attempts.filter((a) => a.key === minuteKey('everyMinute', '2030-01-01T04:00Z'));
    expect(at0400.map((a) => a.outcome === 'error')).toEqual([true, true, false]);
    expect(at0400[2]!.wall).toBeLessThan(at('2030-01-01T04:01Z'));

    // 04:01: the backend fails for the whole minute; the slot is given up (logged), 04:02 goes through.
    queue.failing = true;
    await w.advanceTo('2030-01-01T04:01:59Z');
    queue.failing = false;
    await w.advanceTo('2030-01-01T04:02:30Z');

    expect(w.writtenKeys((k) => k.startsWith('everyMinute@'))).toEqual(['03:59', '04:00', '04:02'].map((hm) => minuteKey('everyMinute', `2030-01-01T${hm}Z`)));
    const failedTries = w.attempts.filter((a) => a.key === minuteKey('everyMinute', '2030-01-01T04:01Z'));
    expect(failedTries.length).toBeGreaterThan(5);
    expect(failedTries.every((a) => a.outcome === 'error' && a.wall < at('2030-01-01T04:02Z'))).toBe(true);
    const missed = w.logs.filter((l) => l.msg === 'periodic slot missed: its minute (or interval slot) passed while the queue was failing');
    expect(missed.map((l) => l.slot).sort()).toEqual(dueKeys(at('2030-01-01T04:01Z'), at('2030-01-01T04:01Z')));
    expect(w.logs.filter((l) => l.msg === 'actor failed')).toEqual([]);
  });
});

describe('interval commands across three consumers sharing one SQLite file (simulated clock)', { timeout: 120_000 }, () => {
  // Not registered globally (the cron tests above count every periodic command they see).
  const tenSeconds: RegisteredCommand = { name: 'everyTen', fn: () => {}, options: { name: 'everyTen' }, schedule: intervalSchedule(10_000), module: 'test' };
  const slotsOf = (keys: string[]) => keys.filter((k) => k.startsWith('everyTen@'));

  it('enqueues and runs each 10-second slot exactly once over 3 minutes, with skewed clocks and a clock jumping back', async () => {
    const w = (world = new World(at('2030-01-01T00:00:03Z')));
    await w.start('A', 0, [tenSeconds]);
    await w.advance(4_000);
    await w.start('B', +2_500, [tenSeconds]);
    await w.start('C', -1_500, [tenSeconds]);
    await w.advance(60_000);
    w.jumpClock('C', -25_000); // C has fired slots its wall clock now reads as the future
    await w.advanceTo('2030-01-01T00:03:04Z');

    const expected = Array.from({ length: 19 }, (_, i) => `everyTen@${new Date(at('2030-01-01T00:00:00Z') + i * 10_000).toISOString()}`);
    expect(slotsOf(w.writtenKeys())).toEqual(expected); // 00:00:00 … 00:03:00, each once
    for (const label of ['A', 'B', 'C']) {
      const keys = slotsOf(w.attemptsBy(label).map((a) => a.key));
      expect(new Set(keys).size, `${label} attempted a slot twice`).toBe(keys.length);
    }
    await w.advance(1_000);
    const runs = w.runs.filter((r) => r.command === 'everyTen');
    expect(new Set(runs.map((r) => r.jobId)).size).toBe(runs.length);
    expect(runs.length).toBe(expected.length);
    expect(w.errors()).toEqual([]);
  });
});
