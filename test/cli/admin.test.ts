/**
 * The admin subcommands on a temp SQLite file, with real processes:
 * enqueue → status → a consumer run with a failing command → failed (plain,
 * --stack, --json) → retry ID / retry --all → purge-failed → flush.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteQueue } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { tempDir, waitFor } from '../helpers/processes.js';
import { CLI_COMMANDS, records, runCli, spawnTaskmill, type CliResult } from '../fixtures/cli-helpers.js';

const dir = tempDir('taskmill-cli-admin-');
const dbPath = path.join(dir, 'queue.sqlite');
const recordFile = path.join(dir, 'records.txt');
// The queue comes from $TASKMILL_QUEUE here, so that path is covered too; -q is covered elsewhere.
const env = { TASKMILL_QUEUE: `sqlite:${dbPath}`, RECORD_FILE: recordFile };

async function taskmill(...args: string[]): Promise<string> {
  const result: CliResult = await runCli(args, { env, cwd: dir });
  expect(result.code, `taskmill ${args.join(' ')} failed:\n${result.stderr}`).toBe(0);
  return result.stdout;
}

async function status(): Promise<{ ready: number; leased: number; failed: number; queue: string }> {
  return JSON.parse(await taskmill('status', '--json')) as { ready: number; leased: number; failed: number; queue: string };
}

describe('taskmill admin subcommands on SQLite', () => {
  const queue = new SqliteQueue(dbPath);
  afterAll(() => queue.close());

  /** Leases every ready message and fails it, as a consumer would (cheaper than another consumer run). */
  async function failAllReady(reason: string): Promise<void> {
    for (const message of await queue.readBatch(100)) await queue.fail(message.id, reason);
  }

  it('enqueue → status → consume → failed → retry → purge-failed → flush', { timeout: 240_000 }, async () => {
    const enqueuedFail = await taskmill('enqueue', 'cli-fail', '[7]');
    const enqueued = /^enqueued cli-fail job (\S+) \(message (\S+)\)$/.exec(enqueuedFail.trim());
    expect(enqueued, enqueuedFail).not.toBeNull();
    await taskmill('enqueue', 'cli-ok', '[1]');
    await taskmill('enqueue', 'cli-ok'); // args default to []

    expect(await status()).toMatchObject({ queue: `sqlite:${dbPath}`, ready: 3, leased: 0, failed: 0 });
    const plainStatus = await taskmill('status');
    expect(plainStatus).toMatch(/ready\s+3\n\s+leased\s+0\n\s+delayed\s+0\n\s+failed\s+0/);

    // One consumer run: cli-ok runs twice, cli-fail lands in the failed store.
    const consumer = spawnTaskmill(['consume', '-d', '0.02', '-m', '0.2', CLI_COMMANDS], { env, cwd: dir });
    try {
      await waitFor(
        'the three jobs settled',
        async () => {
          const stats = await queue.stats();
          return stats.failed === 1 && stats.ready === 0 && stats.leased === 0;
        },
        120_000,
        100,
      );
      consumer.child.kill('SIGTERM');
      expect(await consumer.exited).toBe(0);
    } finally {
      consumer.child.kill('SIGKILL');
    }
    expect(records(recordFile).sort()).toEqual(['ok 1', 'ok undefined']);
    expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, failed: 1 });

    // failed: the message id, its command and the error's first line — no stack unless --stack.
    const messageId = enqueued![2]!;
    const listed = await taskmill('failed');
    expect(listed).toMatch(new RegExp(`^${messageId}  \\S+Z  attempt 1  cli-fail\\n  Error: cli-fail 7 went wrong\\n$`));
    const withStack = await taskmill('failed', '--stack');
    expect(withStack).toMatch(/Error: cli-fail 7 went wrong\n\s+at /);
    const json = (await taskmill('failed', '--json'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(json).toHaveLength(1);
    expect(json[0]).toMatchObject({ id: messageId, attempt: 1 });
    expect(json[0]!.error).toMatch(/^Error: cli-fail 7 went wrong\n\s+at /);
    expect(JSON.parse(json[0]!.data as string)).toMatchObject({ command: 'cli-fail', id: enqueued![1] });

    // retry ID puts it back as ready.
    expect(await taskmill('retry', messageId)).toBe('requeued 1 message\n');
    expect(await status()).toMatchObject({ ready: 1, leased: 0, failed: 0 });
    expect(await taskmill('failed')).toBe('no failed messages\n');
    expect(await taskmill('retry', messageId)).toBe('requeued 0 messages\n'); // no longer failed

    // retry --all, with more than one.
    await queue.write(encodeMessage('cli-fail', [8]).data);
    await failAllReady('Error: made to fail\n    at test');
    expect(await queue.stats()).toMatchObject({ ready: 0, failed: 2 });
    expect(await taskmill('retry', '--all')).toBe('requeued 2 messages\n');
    expect(await queue.stats()).toMatchObject({ ready: 2, leased: 0, failed: 0 });

    // purge-failed deletes only the failed store.
    await failAllReady('Error: made to fail again');
    await queue.write(encodeMessage('cli-ok', [2]).data);
    expect(await taskmill('purge-failed')).toBe('deleted 2 failed messages\n');
    expect(await queue.stats()).toMatchObject({ ready: 1, leased: 0, failed: 0 });

    // flush empties everything: ready, leased and failed.
    await queue.write(encodeMessage('cli-fail', [9]).data);
    await queue.write(encodeMessage('cli-ok', [3]).data);
    const [toFail, toLease] = await queue.readBatch(2); // cli-ok [2] and cli-fail [9]; cli-ok [3] stays ready
    expect(await queue.fail(toFail!.id, 'Error: one more')).toBe(true);
    expect(toLease).toBeDefined();
    expect(await queue.stats()).toMatchObject({ ready: 1, leased: 1, failed: 1 });
    expect(await taskmill('flush')).toBe('queue flushed\n');
    expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, failed: 0 });
  });

  it('-q wins over $TASKMILL_QUEUE', { timeout: 120_000 }, async () => {
    const other = path.join(dir, 'other.sqlite');
    const result = await runCli(['status', '--json', '-q', `sqlite:${other}`], { env, cwd: dir });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ queue: `sqlite:${other}`, ready: 0, leased: 0, failed: 0 });
  });
});
