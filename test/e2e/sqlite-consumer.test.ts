/**
 * Issue 2's acceptance run with real processes: a producer process enqueues
 * 2,000 jobs to sqlite: while `taskmill consume -t 4` runs in another; every
 * 100th command throws. 1,980 complete exactly once, the 20 failures sit in
 * the failed store with their stacks and are each logged once with their
 * worker id, the pool still has 4 workers, and SIGTERM exits 0 within 2 s.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteQueue } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { ROOT, jsonLines, spawnCli, spawnTsx, tempDir, waitFor, type Spawned } from '../helpers/processes.js';

const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'e2e-commands.ts');
const PRODUCER = path.join(ROOT, 'test', 'fixtures', 'e2e-producer.ts');

describe('taskmill consume on SQLite, end to end', () => {
  const dir = tempDir();
  const dbPath = path.join(dir, 'queue.sqlite');
  const url = `sqlite:${dbPath}`;
  const recordFile = path.join(dir, 'records.txt');
  const logFile = path.join(dir, 'consumer.log');
  const env = { TASKMILL_QUEUE: url, RECORD_FILE: recordFile };
  const children: Spawned[] = [];
  afterAll(() => children.forEach((c) => c.child.kill('SIGKILL')));

  const records = () => (existsSync(recordFile) ? readFileSync(recordFile, 'utf8').split('\n').filter(Boolean) : []);

  it('runs 2,000 jobs from another process: 1,980 once, 20 failed and recorded, pool kept at 4', { timeout: 120_000 }, async () => {
    const consumer = spawnCli(['consume', '-t', '4', '-d', '0.02', '-m', '0.2', '-l', logFile, COMMANDS], { env });
    children.push(consumer);
    await waitFor('consumer running', () => consumer.stdout().includes('consumer running'), 20_000);

    const producer = spawnTsx([PRODUCER, '2000'], { env });
    children.push(producer);
    expect(await producer.exited).toBe(0);

    const queue = new SqliteQueue(dbPath);
    try {
      await waitFor(
        '1,980 records and 20 failures',
        async () => {
          const stats = await queue.stats();
          return records().length >= 1980 && stats.failed >= 20 && stats.ready === 0 && stats.leased === 0;
        },
        90_000,
        200,
      );

      // Exactly once: every non-failing job recorded one time, no failing one recorded.
      const ids = records().map((line) => Number(line.split(' ')[0]));
      expect(ids).toHaveLength(1980);
      expect(new Set(ids).size).toBe(1980);
      expect(ids.filter((n) => n % 100 === 0)).toEqual([]);

      const failed = await queue.failed(100);
      expect(failed).toHaveLength(20);
      for (const f of failed) {
        expect(f.error).toMatch(/^Error: fail \d+00\n\s+at /);
        expect(f.attempt).toBe(1);
      }
      const failedNumbers = failed.map((f) => Number(/fail (\d+)/.exec(f.error)![1])).sort((a, b) => a - b);
      expect(failedNumbers).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 100));
    } finally {
      await queue.close();
    }

    // The pool still has 4 workers: ask the running consumer for a snapshot.
    consumer.child.kill('SIGHUP');
    const snapshot = await waitFor('snapshot log line', () => jsonLines(consumer.stdout()).find((l) => l.msg === 'snapshot'));
    const workers = (snapshot.actors as string[]).filter((a) => a.startsWith('worker-'));
    expect(workers).toHaveLength(4);
    expect(snapshot.restarts).toBe(20);

    const started = Date.now();
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(2000);

    // Each failure logged once, with worker id, command, job id and stack — in the log file too.
    const failures = jsonLines(readFileSync(logFile, 'utf8')).filter((l) => l.msg === 'command failed; worker replaced');
    expect(failures).toHaveLength(20);
    expect(new Set(failures.map((l) => l.job)).size).toBe(20);
    for (const line of failures) {
      expect(line.worker).toMatch(/^worker-[1-4](-r\d+)?$/);
      expect(line.command).toBe('record');
      expect((line.err as { stack: string }).stack).toContain('fail ');
    }
  });

  it('sends garbage written straight into the queue to the failed store, and keeps going', { timeout: 60_000 }, async () => {
    const garbageDb = path.join(dir, 'garbage.sqlite');
    const queue = new SqliteQueue(garbageDb);
    await queue.write('{not json');
    await queue.write(encodeMessage('no-such-command', [1]).data);
    await queue.write(JSON.stringify({ v: 1, id: 'x', command: 'record', args: 'nope', enqueuedAt: 0, attempt: 1 }));
    await queue.write(encodeMessage('record', [7]).data);
    const consumer = spawnCli(['consume', '-t', '2', '-d', '0.02', '-m', '0.2', '-q', `sqlite:${garbageDb}`, COMMANDS], {
      env: { RECORD_FILE: path.join(dir, 'garbage-records.txt') },
    });
    children.push(consumer);
    try {
      await waitFor('the valid job to run', () => existsSync(path.join(dir, 'garbage-records.txt')), 30_000);
      const failed = await waitFor('3 failed messages', async () => {
        const list = await queue.failed();
        return list.length === 3 ? list : null;
      });
      const reasons = failed.map((f) => f.error).sort();
      expect(reasons[0]).toMatch(/invalid message/);
      expect(reasons.join('\n')).toContain('no command registered as "no-such-command"');
      expect(reasons.join('\n')).not.toContain('{not json'); // reasons never quote the payload
      // Logs are written asynchronously: wait for the lines rather than read them at once.
      const rejected = await waitFor('3 "message rejected" log lines', () => {
        const lines = jsonLines(consumer.stdout()).filter((l) => l.msg === 'message rejected');
        return lines.length >= 3 ? lines : null;
      });
      expect(rejected).toHaveLength(3);
      expect(rejected.map((l) => l.reason).join('\n')).not.toContain('{not json');
      consumer.child.kill('SIGTERM');
      expect(await consumer.exited).toBe(0);
    } finally {
      await queue.close();
    }
  });
});
