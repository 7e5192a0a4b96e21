/**
 * `taskmill consume` logging with real processes: -v 0 / 2 levels, -l FILE
 * JSON lines, JSON on a pipe and pretty lines on a terminal.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteQueue } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { CLI, jsonLines, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { CLI_COMMANDS, TSX_LOADER, lines, records, spawnTaskmill } from '../fixtures/cli-helpers.js';

const dir = tempDir('taskmill-cli-logging-');
const spawned: Spawned[] = [];
afterAll(() => spawned.forEach((c) => c.child.kill('SIGKILL')));

const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Runs a consumer over `jobs` on its own SQLite file until they all settled, then SIGTERMs it. */
async function consumeAll(name: string, jobs: [string, unknown[]][], flags: string[]): Promise<{ stdout: string; log: string; code: number | string }> {
  const dbPath = path.join(dir, `${name}.sqlite`);
  const logfile = path.join(dir, `${name}.log`);
  const queue = new SqliteQueue(dbPath);
  try {
    for (const [command, args] of jobs) await queue.write(encodeMessage(command, args).data);
    const consumer = spawnTaskmill(['consume', '-q', `sqlite:${dbPath}`, '-d', '0.02', '-m', '0.2', '-l', logfile, ...flags, CLI_COMMANDS], {
      env: { RECORD_FILE: path.join(dir, `${name}.records`) },
      cwd: dir,
    });
    spawned.push(consumer);
    await waitFor(
      'every job settled',
      async () => {
        const stats = await queue.stats();
        return stats.ready === 0 && stats.leased === 0 && stats.failed + records(path.join(dir, `${name}.records`)).length === jobs.length;
      },
      60_000,
      50,
    );
    consumer.child.kill('SIGTERM');
    const code = await consumer.exited;
    expect(consumer.stderr()).toBe('');
    return { stdout: consumer.stdout(), log: existsSync(logfile) ? readFileSync(logfile, 'utf8') : '', code };
  } finally {
    await queue.close();
  }
}

describe.concurrent('taskmill consume logging', { timeout: 120_000 }, () => {
  it('-v 0: warnings and errors only, on stdout and in the -l file', async () => {
    const { stdout, log, code } = await consumeAll(
      'quiet',
      [
        ['cli-ok', [1]],
        ['cli-fail', [2]],
      ],
      ['-v', '0'],
    );
    expect(code).toBe(0);
    for (const text of [stdout, log]) {
      const entries = jsonLines(text);
      expect(entries.map((l) => l.msg)).toContain('command failed; worker replaced');
      expect(entries.filter((l) => (l.level as number) < 40)).toEqual([]);
    }
  });

  it('-v 2: debug "job started" lines; -l FILE gets the same JSON lines, "job finished" included; stdout is JSON on a pipe', async () => {
    const { stdout, log, code } = await consumeAll(
      'debug',
      [
        ['cli-ok', [1]],
        ['cli-ok', [2]],
      ],
      ['-v', '2'],
    );
    expect(code).toBe(0);
    // Not a TTY: every stdout line is a pino JSON line.
    for (const line of lines(stdout)) expect(() => JSON.parse(line), line).not.toThrow();

    const started = jsonLines(stdout).filter((l) => l.msg === 'job started');
    expect(started).toHaveLength(2);
    for (const line of started) expect(line).toMatchObject({ level: 20, command: 'cli-ok', worker: 'worker-1', attempt: 1 });

    const fileEntries = jsonLines(log);
    expect(lines(log)).toHaveLength(fileEntries.length); // nothing but JSON lines in the file
    const finished = fileEntries.filter((l) => l.msg === 'job finished');
    expect(finished).toHaveLength(2);
    for (const line of finished) {
      expect(line).toMatchObject({ level: 30, command: 'cli-ok', worker: 'worker-1', attempt: 1, name: 'taskmill' });
      expect(line.job).toEqual(expect.any(String));
      expect(line.ms).toEqual(expect.any(Number));
    }
    expect(fileEntries.map((l) => l.msg)).toEqual(expect.arrayContaining(['starting consumer', 'consumer running', 'job started', 'consumer stopped']));
    // The file and stdout saw the same lines (each in its own order: the two streams are flushed apart,
    // and the signal handler's line may land in one before the other under load).
    expect(fileEntries.map((l) => l.msg).sort()).toEqual(
      jsonLines(stdout)
        .map((l) => l.msg)
        .sort(),
    );
  });

  it.skipIf(!hasScript)('on a terminal stdout is pretty (not JSON) while -l FILE stays JSON', async () => {
    const dbPath = path.join(dir, 'tty.sqlite');
    const logfile = path.join(dir, 'tty.log');
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const command = [process.execPath, '--import', TSX_LOADER, CLI, 'consume', '-q', `sqlite:${dbPath}`, '-l', logfile, CLI_COMMANDS].map(quote).join(' ');
    // script(1) runs the command on a pseudo-terminal; its own group so the test can signal both.
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor('consumer running in the log file', () => existsSync(logfile) && readFileSync(logfile, 'utf8').includes('consumer running'), 60_000);
      await waitFor('consumer running on the terminal', () => out.includes('consumer running'), 10_000);
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
    }
    await exited;
    expect(out).toMatch(/INFO.*consumer running/);
    expect(out).not.toContain('{"level"');
    const fileEntries = jsonLines(readFileSync(logfile, 'utf8'));
    expect(fileEntries.map((l) => l.msg)).toContain('consumer running');
  });
});
