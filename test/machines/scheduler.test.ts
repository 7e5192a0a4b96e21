/**
 * The scheduler machine on xstate's SimulatedClock with a settable wall
 * clock (`now` input): every minute boundary, retry and clock jump happens in
 * simulated time, with a fake queue adapter answering the slot claims.
 */
import { describe, expect, it } from 'vitest';
import { SimulatedClock, type InspectionEvent } from 'xstate';
import { decodeMessage, encodeMessage } from '../../src/codec/message.js';
import { intervalSlotKey, schedulerMachine, slotKey, type PeriodicEntry, type SchedulerInput } from '../../src/machines/scheduler.js';
import { advance, Coverage, describeCoverage, coveringWalks, createHarness, inspectAll, pendingTimers, same, type Harness } from './helpers.js';

const MINUTE = 60_000;
/** 2025-01-01T00:00Z: an even minute. */
const BASE = Date.UTC(2025, 0, 1, 0, 0);
const BASE_MINUTE = BASE / MINUTE;

const modelCoverage = new Coverage(schedulerMachine);
const allCoverage = new Coverage(schedulerMachine);

const every: PeriodicEntry = { name: 'every', schedule: () => true };
const even: PeriodicEntry = { name: 'even', schedule: (d) => d.getUTCMinutes() % 2 === 0 };
const never: PeriodicEntry = { name: 'never', schedule: () => false };

interface SchedulerRig {
  h: Harness;
  clock: SimulatedClock;
  /** Moves the wall clock (what `now()` reads) without touching timers: an NTP step, a VM resume. */
  jumpWall(ms: number): void;
  wall(): number;
  /** Keys of every WRITE_UNIQUE sent, in order. */
  writes(): string[];
  givenUp: string[];
  written: { key: string; id: string | null }[];
  failedLogs: string[];
  reply(event: { type: 'SLOT_WRITTEN'; key: string; id: string | null } | { type: 'SLOT_FAILED'; key: string; error: unknown }): void;
  state(): { value: unknown; status: string; context: { lastMinute: number | null; pending: { key: string }[]; paused: boolean } };
}

/** Wraps the simulated clock the timers run on (e.g. to make them fire late or early). */
type TimerClock = (clock: SimulatedClock) => { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(id: unknown): void };

interface Wall {
  clock: SimulatedClock;
  /** What the scheduler's `now()` reads. */
  wall(): number;
  jump(ms: number): void;
}

/** A simulated timer clock starting at 0 and a wall clock starting at `startAt` that can jump. */
function createWall(startAt: number): Wall {
  const clock = new SimulatedClock();
  let offset = startAt;
  return { clock, wall: () => offset + clock.now(), jump: (ms) => void (offset += ms) };
}

/** A scheduler started at wall time `startAt` (or on a given wall). */
function startScheduler(
  startAt: number | Wall,
  input: Omit<SchedulerInput, 'now' | 'newMessage'>,
  options: { inspect?: Parameters<typeof createHarness>[0]['inspect']; timerClock?: TimerClock } = {},
): SchedulerRig {
  const { clock, wall, jump } = typeof startAt === 'number' ? createWall(startAt) : startAt;
  const givenUp: string[] = [];
  const written: { key: string; id: string | null }[] = [];
  const failedLogs: string[] = [];
  const logic = schedulerMachine.provide({
    actions: {
      logSlotGivenUp: (_, params) => void givenUp.push(params.key),
      logSlotWritten: (_, params) => void written.push(params),
      logSlotFailed: (_, params) => void failedLogs.push((params as { key: string }).key),
    },
  });
  const h = createHarness({
    logic,
    id: 'scheduler',
    systemId: 'scheduler',
    input: { ...input, now: wall, newMessage: (command: string, now: number) => encodeMessage(command, [], { now }).data },
    clock: (options.timerClock?.(clock) ?? clock) as SimulatedClock,
    inspect: options.inspect ?? allCoverage.inspect,
  });
  return {
    h,
    clock,
    jumpWall: jump,
    wall,
    writes: () => h.queue.of('WRITE_UNIQUE').map((w) => w.key),
    givenUp,
    written,
    failedLogs,
    reply: (event) => h.sut.send(event),
    state: () => h.sut.getSnapshot() as ReturnType<SchedulerRig['state']>,
  };
}

const key = (name: string, minute: number) => slotKey(name, BASE_MINUTE + minute);
/** The scheduler's state value while running, with the periodic region in `periodic`. */
const running = (periodic: 'idle' | 'retrying') => ({ running: { periodic: { waiting: periodic }, delayed: 'sleeping' } });

// ── the abstract model ─────────────────────────────────────────────────────

/** Retry interval: 25 s never lands on a minute boundary, so no two timers are ever due at once. */
const RETRY_MS = 25_000;
const MAX_MINUTE = 1;
const PROMOTE_MS = 17_000;
const MAX_OUTSTANDING = 2;

interface SchedulerModel {
  value: 'idle' | 'retrying' | 'stopped';
  /** Minutes since BASE. */
  minute: number;
  /** Time within the minute, in RETRY_MS steps (0, 25 s, 50 s). */
  step: number;
  lastFired: number | null;
  /** Slots written and not answered yet, oldest first (`name@minute`). */
  outstanding: string[];
  /** Slots whose claim failed, to be retried within their minute. */
  pending: string[];
  paused: boolean;
  givenUp: number;
}

type SchedulerStimulus =
  { type: 'TICK' } | { type: 'CLAIMED' } | { type: 'LOST' } | { type: 'FAILED' } | { type: 'PAUSE' } | { type: 'RESUME' } | { type: 'STOP' };

const ENTRIES = [every, even, never];
const due = (minute: number) => ENTRIES.filter((e) => e.schedule(new Date(BASE + minute * MINUTE))).map((e) => `${e.name}@${minute}`);
const minuteOf = (slot: string) => Number(slot.slice(slot.indexOf('@') + 1));
const realKey = (slot: string) => key(slot.slice(0, slot.indexOf('@')), minuteOf(slot));
const retryFirst = (s: SchedulerModel) => s.value === 'retrying' && (s.step + 1) * RETRY_MS < MINUTE;

function reduceScheduler(state: SchedulerModel, e: SchedulerStimulus): SchedulerModel {
  const s: SchedulerModel = { ...state, outstanding: [...state.outstanding], pending: [...state.pending] };
  const settle = () => {
    s.value = s.pending.length > 0 ? 'retrying' : 'idle';
  };
  if (s.value === 'stopped') {
    // a late reply to a stopped scheduler is ignored
    s.outstanding.shift();
    return s;
  }
  switch (e.type) {
    case 'TICK':
      if (retryFirst(s)) {
        s.step++;
        for (const slot of s.pending) {
          if (minuteOf(slot) === s.minute) s.outstanding.push(slot);
          else s.givenUp++;
        }
        s.pending = s.pending.filter((slot) => minuteOf(slot) === s.minute);
      } else {
        s.minute++;
        s.step = 0;
        if (!s.paused && (s.lastFired === null || s.minute > s.lastFired)) {
          s.lastFired = s.minute;
          s.outstanding.push(...due(s.minute));
        }
      }
      settle();
      break;
    case 'CLAIMED':
    case 'LOST': {
      const slot = s.outstanding.shift()!;
      s.pending = s.pending.filter((p) => p !== slot);
      break;
    }
    case 'FAILED': {
      const slot = s.outstanding.shift()!;
      if (!s.pending.includes(slot)) s.pending.push(slot);
      s.value = 'retrying';
      break;
    }
    case 'PAUSE':
      s.paused = true;
      break;
    case 'RESUME':
      s.paused = false;
      break;
    case 'STOP':
      s.value = 'stopped';
      break;
  }
  return s;
}

function enabledScheduler(s: SchedulerModel, control: boolean): SchedulerStimulus[] {
  if (s.value === 'stopped') return s.outstanding.length > 0 ? [{ type: 'CLAIMED' }] : [];
  const events: SchedulerStimulus[] = [];
  if (s.outstanding.length > 0) events.push({ type: 'CLAIMED' }, { type: 'LOST' }, { type: 'FAILED' });
  if (s.outstanding.length < MAX_OUTSTANDING && (retryFirst(s) || s.minute < MAX_MINUTE)) events.push({ type: 'TICK' });
  if (!control) return events;
  events.push(s.paused ? { type: 'RESUME' } : { type: 'PAUSE' });
  // STOP ends a path; offering it everywhere would mean one path per state
  if (s.pending.length === 0 && s.outstanding.length <= 1 && !s.paused) events.push({ type: 'STOP' });
  return events;
}

const INITIAL: SchedulerModel = {
  value: 'idle',
  minute: 0,
  step: 0,
  lastFired: 0,
  outstanding: due(0),
  pending: [],
  paused: false,
  givenUp: 0,
};

function replayScheduler(path: { events: SchedulerStimulus[]; states: SchedulerModel[] }): void {
  const rig = startScheduler(
    BASE,
    { periodic: ENTRIES, retryMs: RETRY_MS, slotTtlMs: 90_000, promoteMs: PROMOTE_MS },
    { inspect: inspectAll(modelCoverage.inspect, allCoverage.inspect) },
  );
  const { h } = rig;
  let replies = 0;
  let failures = 0;
  const trail: string[] = [];
  path.events.forEach((event, i) => {
    const before = i === 0 ? INITIAL : path.states[i - 1]!;
    const model = path.states[i]!;
    trail.push(event.type);
    try {
      const writes = h.queue.of('WRITE_UNIQUE');
      switch (event.type) {
        case 'TICK': {
          const next = retryFirst(before) ? before.minute * MINUTE + (before.step + 1) * RETRY_MS : (before.minute + 1) * MINUTE;
          same('timer due', pendingTimers(rig.clock).includes(next), true);
          // nothing periodic happens a millisecond early
          const quiet = JSON.stringify([rig.state().value, rig.state().context.lastMinute, rig.writes().length, rig.givenUp.length]);
          advance(rig.clock, next - 1 - rig.clock.now());
          same('1 ms before the timer', JSON.stringify([rig.state().value, rig.state().context.lastMinute, rig.writes().length, rig.givenUp.length]), quiet);
          advance(rig.clock, 1);
          break;
        }
        case 'CLAIMED':
        case 'LOST':
        case 'FAILED': {
          const { key: slot } = writes[replies++]!;
          if (event.type === 'FAILED') failures++;
          rig.reply(
            event.type === 'FAILED'
              ? { type: 'SLOT_FAILED', key: slot, error: new Error('connection reset') }
              : { type: 'SLOT_WRITTEN', key: slot, id: event.type === 'CLAIMED' ? `msg-${replies}` : null },
          );
          break;
        }
        default:
          h.sut.send({ type: event.type });
      }
      const s = rig.state();
      if (model.value === 'stopped') {
        same('status', s.status, 'done');
        same('state', s.value, 'stopped');
        same('timers left', pendingTimers(rig.clock), []);
      } else {
        same('status', s.status, 'active');
        same('state', s.value, running(model.value));
        same('wall time', rig.wall(), BASE + model.minute * MINUTE + model.step * RETRY_MS);
        // the delayed-jobs region promotes every PROMOTE_MS, whatever the periodic region does
        same('PROMOTEs', h.queue.of('PROMOTE').length, Math.floor(rig.clock.now() / PROMOTE_MS));
      }
      same('lastMinute', s.context.lastMinute, model.lastFired === null ? null : BASE_MINUTE + model.lastFired);
      same(
        'pending',
        s.context.pending.map((p) => p.key),
        model.pending.map(realKey),
      );
      same('paused', s.context.paused, model.paused);
      const all = h.queue.of('WRITE_UNIQUE');
      same(
        'unanswered writes',
        all.slice(replies).map((w) => w.key),
        model.outstanding.map(realKey),
      );
      same('given up', rig.givenUp.length, model.givenUp);
      same('failures logged', rig.failedLogs.length, failures);
    } catch (error) {
      throw new Error(`after ${trail.join(' → ')}: ${(error as Error).message}`, { cause: error });
    }
  });
  h.stop();
}

/**
 * Two models: time and slot replies only; and the same with PAUSE, RESUME and
 * STOP. The second fails while the scheduler has no root handlers for those
 * events (removed in b98669c with the parallel `running` state) — flip `it.fails` to `it` once
 * they are back.
 */
describe('scheduler: model-based', () => {
  const models = [
    { name: 'time and slot replies', control: false, run: it },
    { name: 'with PAUSE, RESUME, STOP', control: true, run: it },
  ];
  for (const { name, control, run } of models) {
    const paths = coveringWalks<SchedulerModel, SchedulerStimulus>(INITIAL, reduceScheduler, (s) => enabledScheduler(s, control));
    const steps = paths.reduce((n, p) => n + p.events.length, 0);
    run(`${name}: ${paths.length} paths (${steps} steps) taking every model transition`, () => {
      for (const path of paths) replayScheduler(path);
    });
  }
});

// ── scenarios ──────────────────────────────────────────────────────────────

/** Entries that record the wall time of every due check of a minute. */
function recorded(wall: Wall, ...entries: PeriodicEntry[]) {
  const checks: { name: string; minute: number; at: number }[] = [];
  const wrapped = entries.map((e) => ({
    name: e.name,
    schedule: (date: Date) => {
      checks.push({ name: e.name, minute: (date.getTime() - BASE) / MINUTE, at: wall.wall() });
      return e.schedule(date);
    },
  }));
  return { wrapped, checks };
}

const minutesOf = (keys: string[], name: string) =>
  keys.filter((k) => k.startsWith(`${name}@`)).map((k) => (Date.parse(k.slice(k.indexOf('@') + 1)) - BASE) / MINUTE);

describe('scheduler: minute boundaries', () => {
  it('fires the current minute at start, then exactly at each boundary; a command not due is not written', () => {
    const wall = createWall(BASE + 42_000);
    const { wrapped, checks } = recorded(wall, every, even, never);
    const rig = startScheduler(wall, { periodic: wrapped });
    expect(rig.writes()).toEqual([key('every', 0), key('even', 0)]);

    advance(rig.clock, 18_000 - 1);
    expect(rig.writes()).toHaveLength(2);
    advance(rig.clock, 1);
    expect(rig.writes()).toEqual([key('every', 0), key('even', 0), key('every', 1)]); // minute 1 is odd: `even` not due
    advance(rig.clock, MINUTE);
    expect(rig.writes().slice(3)).toEqual([key('every', 2), key('even', 2)]); // several due at once
    expect(minutesOf(rig.writes(), 'never')).toEqual([]);
    // each minute asked once per command, at the boundary
    expect(checks.filter((c) => c.name === 'never').map((c) => [c.minute, c.at - BASE])).toEqual([
      [0, 42_000],
      [1, 60_000],
      [2, 120_000],
    ]);
  });

  it('writes each due slot as WRITE_UNIQUE with its key, a message for the command and the slot TTL', () => {
    const rig = startScheduler(BASE, { periodic: [every], slotTtlMs: 90_000 });
    const [write] = rig.h.queue.of('WRITE_UNIQUE');
    expect(write).toMatchObject({ type: 'WRITE_UNIQUE', key: 'every@2025-01-01T00:00Z', ttlMs: 90_000 });
    expect(decodeMessage(write!.data)).toMatchObject({ command: 'every', args: [] });
  });

  it('the default slot TTL is two hours', () => {
    const rig = startScheduler(BASE, { periodic: [every] });
    expect(rig.h.queue.of('WRITE_UNIQUE')[0]!.ttlMs).toBe(2 * 60 * MINUTE);
  });
});

describe('scheduler: claims and failures', () => {
  it('a lost claim (SLOT_WRITTEN id null: another consumer won) is final: logged, not retried', () => {
    const rig = startScheduler(BASE, { periodic: [every], retryMs: 5_000 });
    rig.reply({ type: 'SLOT_WRITTEN', key: key('every', 0), id: null });
    expect(rig.written).toEqual([{ type: 'SLOT_WRITTEN', key: key('every', 0), id: null }]);
    advance(rig.clock, 59_000);
    expect(rig.writes()).toEqual([key('every', 0)]);
    expect(rig.state().context.pending).toEqual([]);
  });

  it('a backend error is retried every retryMs within the minute until the slot is written', () => {
    const rig = startScheduler(BASE, { periodic: [every], retryMs: 5_000 });
    const slot = key('every', 0);
    rig.reply({ type: 'SLOT_FAILED', key: slot, error: new Error('ECONNRESET') });
    expect(rig.state().value).toEqual(running('retrying'));
    expect(rig.failedLogs).toEqual([slot]);
    advance(rig.clock, 4_999);
    expect(rig.writes()).toEqual([slot]);
    advance(rig.clock, 1);
    expect(rig.writes()).toEqual([slot, slot]);
    rig.reply({ type: 'SLOT_FAILED', key: slot, error: new Error('ECONNRESET') });
    advance(rig.clock, 5_000);
    expect(rig.writes()).toEqual([slot, slot, slot]);
    rig.reply({ type: 'SLOT_WRITTEN', key: slot, id: 'msg-1' });
    expect(rig.state().context.pending).toEqual([]);
    // the retry timer still runs out, finds nothing to retry, and goes idle
    advance(rig.clock, 5_000);
    expect(rig.state().value).toEqual(running('idle'));
    advance(rig.clock, 44_000);
    expect(rig.writes()).toEqual([slot, slot, slot]); // recovered: no more retries
    expect(rig.givenUp).toEqual([]);
  });

  it('retries every failed slot of the minute together', () => {
    const rig = startScheduler(BASE, { periodic: [every, even], retryMs: 5_000 });
    for (const name of ['every', 'even']) rig.reply({ type: 'SLOT_FAILED', key: key(name, 0), error: new Error('down') });
    advance(rig.clock, 5_000);
    expect(rig.writes()).toEqual([key('every', 0), key('even', 0), key('every', 0), key('even', 0)]);
  });

  it('gives a failed slot up once its minute has passed (logged), and the new minute still fires', () => {
    const rig = startScheduler(BASE + 58_000, { periodic: [every], retryMs: 5_000 });
    rig.reply({ type: 'SLOT_FAILED', key: key('every', 0), error: new Error('down') });
    advance(rig.clock, 2_000); // the boundary comes before the retry
    expect(rig.writes()).toEqual([key('every', 0), key('every', 1)]);
    expect(rig.givenUp).toEqual([]);
    advance(rig.clock, 5_000);
    expect(rig.givenUp).toEqual([key('every', 0)]);
    expect(rig.writes()).toEqual([key('every', 0), key('every', 1)]);
    expect(rig.state().context.pending).toEqual([]);
  });
});

describe('scheduler: clock jumps and drift', () => {
  it('clock reversal: when the wall clock jumps back no minute fires twice', () => {
    const rig = startScheduler(BASE, { periodic: [every] });
    advance(rig.clock, 5 * MINUTE);
    expect(minutesOf(rig.writes(), 'every')).toEqual([0, 1, 2, 3, 4, 5]);
    rig.jumpWall(-150_000); // 00:05:00 → 00:02:30
    advance(rig.clock, 3 * MINUTE + 30_000 - 1); // wall 00:05:59.999
    expect(minutesOf(rig.writes(), 'every')).toEqual([0, 1, 2, 3, 4, 5]);
    advance(rig.clock, 1);
    expect(minutesOf(rig.writes(), 'every')).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(rig.wall()).toBe(BASE + 6 * MINUTE);
  });

  it('downtime (wall clock jumps hours ahead): only the current minute fires, missed runs are skipped', () => {
    const rig = startScheduler(BASE, { periodic: [every] });
    advance(rig.clock, 30_000);
    rig.jumpWall(3 * 60 * MINUTE);
    advance(rig.clock, 30_000);
    expect(minutesOf(rig.writes(), 'every')).toEqual([0, 181]);
    // and the next boundary is computed from the new wall time
    advance(rig.clock, MINUTE);
    expect(minutesOf(rig.writes(), 'every')).toEqual([0, 181, 182]);
  });

  it('downtime (the process was suspended: timers fire hours late): only the current minute fires', () => {
    const rig = startScheduler(BASE, { periodic: [every] });
    rig.clock.set(3 * 60 * MINUTE + 12_345); // one late wake-up
    expect(minutesOf(rig.writes(), 'every')).toEqual([0, 180]);
    advance(rig.clock, MINUTE - 12_345);
    expect(minutesOf(rig.writes(), 'every')).toEqual([0, 180, 181]);
  });

  it('no drift over 120 minutes of timers firing up to 3 ms early or 7 ms late: each minute once, ≤ 7 ms after its boundary', () => {
    // A deterministic jitter on every timer, like a loaded event loop (late) or a stepped clock (early).
    const jittery: TimerClock = (clock) => {
      let seed = 42;
      const jitter = () => (seed = (seed * 16_807) % 2_147_483_647) % 11; // 0..10
      return {
        setTimeout: (fn, ms) => clock.setTimeout(fn, Math.max(0, ms + jitter() - 3)),
        clearTimeout: (id) => clock.clearTimeout(id as number),
      };
    };
    const wall = createWall(BASE + 17_123);
    const { wrapped, checks } = recorded(wall, every);
    let wakes = 0;
    const countWakes = (event: InspectionEvent) => {
      if (event.type !== '@xstate.microstep') return;
      const taken = (event as { _transitions: { target?: { key: string }[] }[] })._transitions;
      if (taken.some((t) => t.target?.some((n) => n.key === 'firing'))) wakes++;
    };
    const rig = startScheduler(wall, { periodic: wrapped }, { timerClock: jittery, inspect: inspectAll(allCoverage.inspect, countWakes) });
    advance(rig.clock, 120 * MINUTE);
    // some timers did fire early: those wake-ups found their minute already fired and waited again
    expect(wakes).toBeGreaterThan(120);
    expect(minutesOf(rig.writes(), 'every')).toEqual(Array.from({ length: 121 }, (_, i) => i));
    const lateness = checks.slice(1).map((c) => c.at - (BASE + c.minute * MINUTE));
    expect(Math.min(...lateness)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...lateness)).toBeLessThanOrEqual(7);
  });
});

describe('scheduler: interval slots', () => {
  const tenSeconds: PeriodicEntry = { name: 'ten', schedule: () => false, every: 10_000 };
  const ninety: PeriodicEntry = { name: 'ninety', schedule: () => false, every: 90_000 };
  const slot = (name: string, ms: number) => intervalSlotKey(name, BASE + ms);
  const startsOf = (writes: string[], name: string) => writes.filter((k) => k.startsWith(`${name}@`)).map((k) => Date.parse(k.slice(name.length + 1)) - BASE);

  it('fires the current slot at start, then exactly at each slot boundary, besides the cron minutes', () => {
    const rig = startScheduler(BASE + 42_000, { periodic: [tenSeconds, every, ninety] });
    expect(rig.writes()).toEqual([slot('ten', 40_000), key('every', 0), slot('ninety', 0)]);
    advance(rig.clock, 8_000 - 1);
    expect(rig.writes()).toHaveLength(3);
    advance(rig.clock, 1); // 00:00:50
    expect(rig.writes().at(-1)).toBe(slot('ten', 50_000));
    advance(rig.clock, 130_000); // to 00:03:00
    expect(startsOf(rig.writes(), 'ten')).toEqual(Array.from({ length: 15 }, (_, i) => 40_000 + i * 10_000));
    expect(startsOf(rig.writes(), 'ninety')).toEqual([0, 90_000, 180_000]);
    expect(minutesOf(rig.writes(), 'every')).toEqual([0, 1, 2, 3]);
    // an interval slot key is to the ms, a minute's is not: they never collide
    expect(slot('ten', 60_000)).toBe('ten@2025-01-01T00:01:00.000Z');
    expect(new Set(rig.writes()).size).toBe(rig.writes().length);
  });

  it('clock reversal fires no slot twice; downtime fires only the current slot', () => {
    const rig = startScheduler(BASE, { periodic: [tenSeconds] });
    advance(rig.clock, 30_000);
    expect(startsOf(rig.writes(), 'ten')).toEqual([0, 10_000, 20_000, 30_000]);
    rig.jumpWall(-25_000); // 00:00:30 → 00:00:05
    advance(rig.clock, 25_000 + 9_999); // wall 00:00:39.999
    expect(startsOf(rig.writes(), 'ten')).toEqual([0, 10_000, 20_000, 30_000]);
    advance(rig.clock, 1);
    expect(startsOf(rig.writes(), 'ten')).toEqual([0, 10_000, 20_000, 30_000, 40_000]);
    rig.jumpWall(60 * MINUTE);
    advance(rig.clock, 10_000);
    expect(startsOf(rig.writes(), 'ten')).toEqual([0, 10_000, 20_000, 30_000, 40_000, 60 * MINUTE + 50_000]);
  });

  it('retries a failed slot claim while its slot lasts, then gives it up', () => {
    const rig = startScheduler(BASE + 1_000, { periodic: [{ ...tenSeconds, every: 12_000 }], retryMs: 5_000 });
    const first = slot('ten', 0);
    rig.reply({ type: 'SLOT_FAILED', key: first, error: new Error('down') });
    advance(rig.clock, 5_000); // 00:00:06: still in the slot [0, 12 s)
    expect(rig.writes()).toEqual([first, first]);
    rig.reply({ type: 'SLOT_FAILED', key: first, error: new Error('down') });
    advance(rig.clock, 5_000); // 00:00:11
    expect(rig.writes()).toEqual([first, first, first]);
    rig.reply({ type: 'SLOT_FAILED', key: first, error: new Error('down') });
    advance(rig.clock, 6_000); // the next slot fired at 12 s (restarting the retry wait): at 17 s the first is given up
    expect(rig.writes()).toEqual([first, first, first, slot('ten', 12_000)]);
    expect(rig.givenUp).toEqual([first]);
  });

  it('PAUSE skips interval slots; RESUME fires again from the next boundary', () => {
    const rig = startScheduler(BASE, { periodic: [tenSeconds] });
    rig.h.sut.send({ type: 'PAUSE' });
    advance(rig.clock, 30_000);
    expect(startsOf(rig.writes(), 'ten')).toEqual([0]);
    rig.h.sut.send({ type: 'RESUME' });
    advance(rig.clock, 10_000);
    expect(startsOf(rig.writes(), 'ten')).toEqual([0, 40_000]);
  });
});

describe('scheduler: delayed jobs', () => {
  it('asks the queue to PROMOTE due delayed jobs every promoteMs, whatever the periodic region does', () => {
    const rig = startScheduler(BASE, { periodic: [], promoteMs: 1_000 });
    advance(rig.clock, 999);
    expect(rig.h.queue.of('PROMOTE')).toHaveLength(0);
    advance(rig.clock, 1);
    expect(rig.h.queue.of('PROMOTE')).toHaveLength(1);
    advance(rig.clock, 2 * MINUTE);
    expect(rig.h.queue.of('PROMOTE')).toHaveLength(121);
  });
});

/**
 * PAUSE, RESUME and STOP lost their handlers in b98669c (the root `on` of the
 * scheduler went away when `running` became a parallel state): these fail
 * until it is back — then flip `it.fails` to `it`.
 */
describe('scheduler: PAUSE, RESUME, STOP', () => {
  it('PAUSE skips the minutes while paused (no catch-up); RESUME fires again from the next boundary', () => {
    const rig = startScheduler(BASE, { periodic: [every] });
    rig.h.sut.send({ type: 'PAUSE' });
    expect(rig.state().context.paused).toBe(true);
    advance(rig.clock, 2 * MINUTE + 30_000);
    expect(minutesOf(rig.writes(), 'every')).toEqual([0]);
    rig.h.sut.send({ type: 'RESUME' });
    advance(rig.clock, 30_000);
    expect(minutesOf(rig.writes(), 'every')).toEqual([0, 3]);
  });

  it('STOP is final: no timers left, nothing written, late replies ignored', () => {
    const rig = startScheduler(BASE, { periodic: [every], retryMs: 5_000 });
    rig.reply({ type: 'SLOT_FAILED', key: key('every', 0), error: new Error('down') });
    rig.h.sut.send({ type: 'STOP' });
    expect(rig.state().status).toBe('done');
    expect(rig.state().value).toBe('stopped');
    expect(pendingTimers(rig.clock)).toEqual([]);
    rig.reply({ type: 'SLOT_WRITTEN', key: key('every', 0), id: 'late' });
    advance(rig.clock, 10 * MINUTE);
    expect(rig.writes()).toEqual([key('every', 0)]);
    expect(rig.h.queue.of('PROMOTE')).toHaveLength(0);
  });
});

describeCoverage(modelCoverage, allCoverage);
