/**
 * Issue 3's real-time acceptance run: two `taskmill consume` processes, both
 * running the scheduler, on one SQLite file, with a `* * * * *` command, across
 * two real minute boundaries. Each minute is enqueued by exactly one of them
 * (the other logs that the slot was already claimed) and runs exactly once.
 *
 * It takes two to three real minutes, so it only runs with
 * TASKMILL_SLOW_TESTS=1 (`.ci/run` sets it).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, jsonLines, spawnCli, tempDir, waitFor, type Spawned } from '../helpers/processes.js';

const SLOW = Boolean(process.env.TASKMILL_SLOW_TESTS);
if (!SLOW) {
  console.warn(
    'test/periodic/realtime.test.ts skipped: it runs for two real minutes. Run it with TASKMILL_SLOW_TESTS=1 npx vitest run test/periodic/realtime.test.ts (.ci/run does).',
  );
}

const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'periodic-commands.ts');
const MINUTE = 60_000;
const STARTUP_MS = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const minuteOf = (ms: number) => Math.floor(ms / MINUTE);
const slotMinute = (slot: string) => minuteOf(Date.parse(slot.replace(/^everyMinute@/, '')));

describe.skipIf(!SLOW)('two consumer processes with the scheduler on, in real time', () => {
  const children: Spawned[] = [];
  afterAll(() => children.forEach((c) => c.child.kill('SIGKILL')));

  it('enqueue and run a * * * * * command exactly once per minute', { timeout: 240_000 }, async () => {
    const dir = tempDir('taskmill-periodic-realtime-');
    const recordFile = path.join(dir, 'records.txt');
    const args = ['consume', '-q', `sqlite:${path.join(dir, 'queue.sqlite')}`, '-v', '2', '-d', '0.05', '-m', '0.5', COMMANDS];
    const consumers = [spawnCli(args, { env: { RECORD_FILE: recordFile } }), spawnCli(args, { env: { RECORD_FILE: recordFile } })];
    children.push(...consumers);

    const running = await Promise.all(
      consumers.map((c) => waitFor('consumer running', () => jsonLines(c.stdout()).find((l) => l.msg === 'consumer running'), STARTUP_MS)),
    );
    for (const line of running) expect(line.periodic).toBe(true);
    const startTimes = running.map((l) => l.time as number);

    // Cross two minute boundaries with both running, then stop in a quiet part of the minute.
    const boundaries = [minuteOf(Math.max(...startTimes)) + 1, minuteOf(Math.max(...startTimes)) + 2];
    await sleep(boundaries[1]! * MINUTE + 15_000 - Date.now());
    const stoppedAt = Date.now();
    for (const c of consumers) c.child.kill('SIGTERM');
    const codes = await Promise.all(consumers.map((c) => c.exited));
    expect(codes, consumers.map((c) => c.stderr()).join('\n')).toEqual([0, 0]);

    // Enqueued: one slot per minute from the first start to the stop, each by exactly one process.
    const expected: number[] = [];
    for (let m = minuteOf(Math.min(...startTimes)); m <= minuteOf(stoppedAt); m++) expected.push(m);
    const logs = consumers.map((c) => jsonLines(c.stdout()));
    const enqueued = logs.flatMap((lines) => lines.filter((l) => l.msg === 'periodic command enqueued').map((l) => l.slot as string));
    expect(enqueued.map(slotMinute).sort((a, b) => a - b)).toEqual(expected);

    // Both schedulers asked for each boundary's slot; one won, the other found it claimed.
    for (const minute of boundaries) {
      const outcomes = logs.map((lines) =>
        lines
          .filter((l) => typeof l.slot === 'string' && slotMinute(l.slot) === minute)
          .map((l) => (l.msg === 'periodic command enqueued' ? 'won' : l.msg === 'periodic slot already claimed by another consumer' ? 'lost' : String(l.msg))),
      );
      expect(outcomes.flat().sort(), `slot of ${new Date(minute * MINUTE).toISOString()}`).toEqual(['lost', 'won']);
    }

    // Run: one record per enqueued slot, no more (a record's minute is when it ran, so only counts are compared).
    const records = existsSync(recordFile) ? readFileSync(recordFile, 'utf8').split('\n').filter(Boolean) : [];
    expect(records).toHaveLength(expected.length);
    const pids = new Set(consumers.map((c) => String(c.child.pid)));
    for (const line of records) {
      const [minute, pid] = line.split(' ');
      expect(pids.has(pid!)).toBe(true);
      expect(minuteOf(Date.parse(minute!))).toBeGreaterThanOrEqual(expected[0]!);
      expect(minuteOf(Date.parse(minute!))).toBeLessThanOrEqual(minuteOf(stoppedAt));
    }
  });
});
