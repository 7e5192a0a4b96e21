/**
 * Child processes for end-to-end tests: the real `taskmill` CLI and helper
 * scripts, with no build needed. A child whose scripts are all this
 * repository's runs their JavaScript twins, which test/global-setup.ts
 * transpiles once per run; anything else (a TypeScript module a test wrote
 * into a temp dir, a `consume` that autodiscovers) runs under tsx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'src', 'cli.ts');
/** tsx's loader by absolute URL, so children started in any cwd (a temp dir) can load it. */
export const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export function tempDir(prefix = 'taskmill-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export interface Spawned {
  child: ChildProcess;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
}

/**
 * Where test/global-setup.ts transpiles src/ and test/ (beside the
 * project's node_modules, so bare imports resolve as from the sources).
 */
export const COMPILED = path.join(ROOT, 'node_modules', '.cache', 'taskmill-test');
/** Written last by the global setup: the twins are complete. */
export const COMPILED_MARK = path.join(COMPILED, 'complete');

/** The JavaScript twin of one of this repository's TypeScript files, or null. */
function twinOf(arg: string, cwd: string): string | null {
  const file = path.resolve(cwd, arg);
  const relative = path.relative(ROOT, file);
  if (!/^(src|test)\//.test(relative)) return null;
  const twin = path.join(COMPILED, relative.replace(/\.ts$/, '.js'));
  return existsSync(twin) ? twin : null;
}

/**
 * The node arguments for a child: the scripts' JavaScript twins when every
 * TypeScript argument has one, else tsx. Under tsx a child spends about a
 * second more CPU importing taskmill, and the suite starts hundreds of them.
 * TASKMILL_TEST_TSX=1 runs every child under tsx.
 */
function nodeArgs(args: readonly string[], cwd: string): string[] {
  const underTsx = ['--import', TSX_LOADER, ...args];
  if (process.env.TASKMILL_TEST_TSX || !existsSync(COMPILED_MARK)) return underTsx;
  // `schedule` and `enqueue -M` name the modules they were given in what they print; `schedule` and `consume` without one autodiscover below cwd.
  const subcommand = args[0] === CLI ? args[1] : undefined;
  if (subcommand === 'schedule' || (subcommand === 'enqueue' && args.some((arg) => /\.[cm]?ts$/.test(arg)))) return underTsx;
  const mapped: string[] = [];
  let twins = 0;
  for (const arg of args) {
    if (!/\.[cm]?ts$/.test(arg)) {
      mapped.push(arg);
      continue;
    }
    const twin = twinOf(arg, cwd);
    if (twin === null) return underTsx;
    mapped.push(twin);
    twins++;
  }
  if (twins === 0 || (subcommand === 'consume' && twins < 2)) return underTsx;
  return mapped;
}

export function spawnTsx(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Spawned {
  const child = spawn(process.execPath, nodeArgs(args, options.cwd ?? ROOT), {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

export function spawnCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Spawned {
  return spawnTsx([CLI, ...args], options);
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Parses pino JSON lines, skipping anything else. */
export function jsonLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a partial last line
    }
  }
  return out;
}
