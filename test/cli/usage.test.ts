/**
 * `taskmill --help`, `--version` and `consume --help`: exit 0, and the help
 * names every flag of the CLI contract (API.md) with its default.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/processes.js';
import { runCli } from '../fixtures/cli-helpers.js';

const cwd = tempDir('taskmill-cli-usage-');
const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

describe.concurrent('taskmill usage', { timeout: 90_000 }, () => {
  it('--version prints the package version and exits 0', async () => {
    const result = await runCli(['--version'], { cwd });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(version);
    expect(result.stderr).toBe('');
  });

  it('--help lists every subcommand and exits 0', async () => {
    const result = await runCli(['--help'], { cwd });
    expect(result.code).toBe(0);
    for (const sub of ['consume', 'enqueue', 'status', 'schedule', 'failed', 'retry', 'purge-failed', 'flush']) {
      expect(result.stdout).toMatch(new RegExp(`^\\s+${sub}\\b`, 'm'));
    }
  });

  it('consume --help lists every flag of the contract with its default, and exits 0', async () => {
    const result = await runCli(['consume', '--help'], { cwd });
    expect(result.code).toBe(0);
    // One entry per option; commander wraps long descriptions onto indented continuation lines.
    const entries: string[] = [];
    for (const line of result.stdout.split('\n')) {
      if (/^\s{2}-/.test(line)) entries.push(line.trim());
      else if (/^\s{3,}\S/.test(line) && entries.length > 0) entries[entries.length - 1] += ` ${line.trim()}`;
    }
    const flags: [string, RegExp | null][] = [
      ['-q, --queue <url>', /\$TASKMILL_QUEUE or sqlite:taskmill\.sqlite/],
      ['-t, --threads <n>', /default: 1\)/],
      ['-n, --no-periodic', null],
      ['-l, --logfile <file>', null],
      ['-v, --verbosity <n>', /0 warn, 1 info, 2 debug \(default: 1\)/],
      ['-d, --delay <seconds>', /\(default: 0\.1\)/],
      ['-b, --backoff <factor>', /\(default: 1\.15\)/],
      ['-m, --max-delay <seconds>', /\(default: 10\)/],
      ['-g, --grace <seconds>', /\(default: 30\)/],
      ['-p, --prefetch <n>', /\(default: 0\)/],
      ['--connect-timeout <seconds>', /\(default: 30\)/],
    ];
    for (const [flag, detail] of flags) {
      const line = entries.find((entry) => entry.startsWith(flag));
      expect(line, `consume --help should list ${flag}`).toBeDefined();
      if (detail) expect(line).toMatch(detail);
    }
    expect(result.stdout.replace(/\s+/g, ' ')).toMatch(/modules command modules to import \(default: autodiscover/);
  });

  it('help consume is the same help, exit 0', async () => {
    const result = await runCli(['help', 'consume'], { cwd });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--connect-timeout');
  });

  // Bug: main() maps commander's code 'commander.help' to exit 0, but commander
  // uses that code (with exitCode 1) for "no subcommand given" too. Fix in
  // src/cli.ts main(): take commander's own `error.exitCode` for help/version
  // codes instead of mapping codes to 0.
  it('no subcommand prints usage to stderr and exits 1', async () => {
    const result = await runCli([], { cwd });
    expect(result.stderr).toContain('Usage: taskmill');
    expect(result.code).toBe(1);
  });
});
