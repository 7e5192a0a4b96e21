/**
 * queueCommand, periodicCommand, the global command registry, configure()
 * and autodiscover(): the producer side of taskmill, and the table the
 * consumer looks commands up in.
 */
import { pathToFileURL, fileURLToPath } from 'node:url';
import path from 'node:path';
import { z } from 'zod';
import { BaseQueue } from './backends/base.js';
import { createQueue } from './backends/index.js';
import { defaultQueueUrl, DEFAULT_MAX_PAYLOAD_BYTES } from './config.js';
import { ConfigError } from './errors.js';
import { decodeMessage, encodeMessage } from './message.js';
import { toSchedule, type Schedule } from './crontab.js';
import { jobEvents } from './hooks.js';
import {
  DEFAULT_RESULT_TTL_MS,
  JobResultTimeoutError,
  parseResultRecord,
  resultRecord,
  settle,
  type JobStatus,
} from './results.js';

/** What a command sees as `this` while it runs (use a `function`, not an arrow, to read it). */
export interface JobContext {
  /** The job (envelope) id. */
  readonly jobId: string;
  readonly command: string;
  /** 1 on the first run. */
  readonly attempt: number;
  /** Aborted when the command times out or the consumer is forced to stop. */
  readonly signal: AbortSignal;
}

export interface CommandOptions {
  /** Registry name; defaults to the function's name. */
  name?: string;
  /** The queue this command is written to: a BaseQueue or a queue URL. Default: configure()'s queue. */
  queue?: BaseQueue | string;
  /** Extra attempts after a failure (default 0). */
  retries?: number;
  /** Delay before the first retry, ms (default 0). */
  retryDelay?: number;
  /** Each further retry waits retryDelay × retryBackoff^(n−1), with ±20 % jitter (default 1: constant). */
  retryBackoff?: number;
  /** Abort the command's signal and fail the attempt (retryably) after this many ms (default: none). */
  timeout?: number;
  /** A job that has not started within this many ms of being enqueued (or by this Date) is skipped and recorded as expired. */
  expires?: number | Date;
  /**
   * Deliveries without an outcome before the job is declared lost (default:
   * the consumer's `maxDeliveries`, 3). A delivery has no outcome when the
   * consumer running it died (a `process.exit()`, a crash, kill -9) or lost
   * its lease; the next delivery past this limit is not run: it goes to the
   * failed store as "worker lost", so a job that kills its process cannot
   * crash-loop the fleet.
   */
  maxDeliveries?: number;
  /** Store results so `job.result()` / `job.status()` work (default true). */
  results?: boolean;
  /** How long results are kept, ms (default: configure()'s resultTtlMs, 1 day). */
  resultTtl?: number;
}

export type CommandFunction<A extends unknown[], R> = (this: JobContext, ...args: A) => R;

type LocalOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A handle on an enqueued job: its ids, and its status and result once a consumer ran it. */
export class Job<R = unknown> {
  readonly #queue: BaseQueue | null;
  readonly #local: LocalOutcome | null;

  constructor(
    /** The job id (the envelope id): the key of its result. */
    readonly id: string,
    readonly command: string,
    /** The backend's message id (null for immediate mode). */
    readonly messageId: string | null,
    queue: BaseQueue | null,
    local: LocalOutcome | null = null,
  ) {
    this.#queue = queue;
    this.#local = local;
  }

  /** 'pending' until a consumer records an outcome: 'completed', 'failed', 'retrying', 'revoked' or 'expired'. */
  async status(): Promise<JobStatus> {
    if (this.#local) return this.#local.ok ? 'completed' : 'failed';
    const text = await this.#queue!.getResult(this.id);
    return text === null ? 'pending' : parseResultRecord(text).status;
  }

  /**
   * Waits for the command's return value (default up to 30 s). Throws
   * JobFailedError (with the remote error's name, message and stack) when it
   * failed for good, JobRevokedError / JobExpiredError, or
   * JobResultTimeoutError when `timeout` passes first.
   */
  async result({ timeout = 30_000, interval = 25 }: { timeout?: number; interval?: number } = {}): Promise<R> {
    if (this.#local) {
      if (this.#local.ok) return this.#local.value as R;
      throw this.#local.error;
    }
    const deadline = Date.now() + timeout;
    let wait = interval;
    for (;;) {
      const text = await this.#queue!.getResult(this.id);
      if (text !== null) {
        const record = parseResultRecord(text);
        if (record.status !== 'retrying') return settle(this.id, record) as R;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new JobResultTimeoutError(this.id, timeout);
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, left)));
      wait = Math.min(1_000, wait * 1.5);
    }
  }

  /** Removes the job if it has not started; true when revoked (recorded as 'revoked'), false when too late. */
  async revoke({ ttl = settings.resultTtlMs }: { ttl?: number } = {}): Promise<boolean> {
    if (!this.#queue || this.messageId === null) return false;
    if (!(await this.#queue.remove(this.messageId))) return false;
    await this.#queue.setResults([{ jobId: this.id, record: resultRecord({ status: 'revoked', attempt: 0, at: Date.now() }), ttlMs: ttl }]);
    if (jobEvents.has('revoked')) jobEvents.emit('revoked', { jobId: this.id, command: this.command, messageId: this.messageId });
    return true;
  }
}

/** When a scheduled job may start: after `delay` ms, or at `eta`. */
export type ScheduleWhen = { delay: number } | { eta: Date | number };

export interface QueuedCommand<A extends unknown[], R> {
  /** Enqueues the command; resolves once the message is written. */
  (...args: A): Promise<Job<Awaited<R>>>;
  /** Enqueues the command to run no earlier than `when` (1-second precision: the scheduler promotes due jobs each second). */
  schedule(when: ScheduleWhen, ...args: A): Promise<Job<Awaited<R>>>;
  /** Runs the command in this process now, bypassing the queue. */
  local(...args: A): Promise<Awaited<R>>;
  readonly commandName: string;
  readonly options: Readonly<CommandOptions>;
}

export interface PeriodicCommand<R> {
  (): Promise<Awaited<R>>;
  readonly commandName: string;
  readonly schedule: Schedule;
}

export interface RegisteredCommand {
  readonly name: string;
  readonly fn: (this: JobContext, ...args: unknown[]) => unknown;
  readonly options: Readonly<CommandOptions>;
  /** Set for periodic commands. */
  readonly schedule: Schedule | null;
  /** The module that registered it, for duplicate-name errors. */
  readonly module: string | undefined;
}

const NAME_MAX = 200;

const commandOptionsSchema = z.strictObject({
  name: z.string().min(1).max(NAME_MAX).optional(),
  queue: z.union([z.string().min(1), z.instanceof(BaseQueue)]).optional(),
  retries: z.number().int().min(0).optional(),
  retryDelay: z.number().min(0).finite().optional(),
  retryBackoff: z.number().min(1).finite().optional(),
  timeout: z.number().positive().finite().optional(),
  expires: z.union([z.number().positive().finite(), z.date()]).optional(),
  maxDeliveries: z.number().int().min(1).optional(),
  results: z.boolean().optional(),
  resultTtl: z.number().positive().finite().optional(),
});

function validateOptions(options: CommandOptions): CommandOptions {
  const parsed = commandOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join('.') : 'options';
    throw new ConfigError(`invalid command option ${where}: ${issue.message}`);
  }
  return parsed.data as CommandOptions;
}

const THIS_MODULE = fileURLToPath(import.meta.url).replace(/\.[cm]?[jt]s$/, '');
const STACK_FILE = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?$/;

/** The module file that called into this one, read off the stack (for error messages only). */
function callerModule(): string | undefined {
  for (const line of (new Error().stack ?? '').split('\n').slice(1)) {
    const match = STACK_FILE.exec(line.trim());
    if (!match) continue;
    const file = match[1]!.startsWith('file://') ? fileURLToPath(match[1]!) : match[1]!;
    if (file.replace(/\.[cm]?[jt]s$/, '') === THIS_MODULE) continue;
    return path.relative(process.cwd(), file) || file;
  }
  return undefined;
}

export class CommandRegistry {
  readonly #commands = new Map<string, RegisteredCommand>();

  register(command: RegisteredCommand): void {
    const existing = this.#commands.get(command.name);
    if (existing) {
      throw new ConfigError(
        `command name "${command.name}" is already taken: registered by ${existing.module ?? 'an unknown module'} and again by ${command.module ?? 'an unknown module'}`,
      );
    }
    this.#commands.set(command.name, command);
  }

  get(name: string): RegisteredCommand | undefined {
    return this.#commands.get(name);
  }

  has(name: string): boolean {
    return this.#commands.has(name);
  }

  names(): string[] {
    return [...this.#commands.keys()];
  }

  /** The periodic commands, in registration order. */
  periodic(): RegisteredCommand[] {
    return [...this.#commands.values()].filter((c) => c.schedule !== null);
  }

  /** Removes one command (tests, hot reload). */
  unregister(name: string): boolean {
    return this.#commands.delete(name);
  }

  clear(): void {
    this.#commands.clear();
  }
}

/** The global command registry. */
export const registry = new CommandRegistry();

// ── configure() ────────────────────────────────────────────────────────────

export interface TaskmillSettings {
  /** The default queue for commands without their own: a BaseQueue or URL. Default $TASKMILL_QUEUE, else sqlite:taskmill.sqlite. */
  queue?: BaseQueue | string;
  /** Run commands in-process when called (the seed's QUEUE_ALWAYS_EAGER), for tests. Default false. */
  immediate?: boolean;
  /** Largest encoded message accepted at enqueue, bytes. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** How long job results are kept, ms. Default 1 day. */
  resultTtlMs?: number;
}

const settings: { queue: BaseQueue | string | undefined; immediate: boolean; maxPayloadBytes: number; resultTtlMs: number } = {
  queue: undefined,
  immediate: false,
  maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
  resultTtlMs: DEFAULT_RESULT_TTL_MS,
};
const queuesByUrl = new Map<string, BaseQueue>();

export function configure(options: TaskmillSettings): void {
  if (options.queue !== undefined) {
    if (typeof options.queue !== 'string' && !(options.queue instanceof BaseQueue)) {
      throw new ConfigError('configure({ queue }) takes a queue URL or a BaseQueue');
    }
    settings.queue = options.queue;
  }
  if (options.immediate !== undefined) settings.immediate = Boolean(options.immediate);
  if (options.maxPayloadBytes !== undefined) {
    const n = options.maxPayloadBytes;
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`configure({ maxPayloadBytes }) must be a positive integer, got ${String(n)}`);
    settings.maxPayloadBytes = n;
  }
  if (options.resultTtlMs !== undefined) {
    const n = options.resultTtlMs;
    if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`configure({ resultTtlMs }) must be a positive number of ms, got ${String(n)}`);
    settings.resultTtlMs = n;
  }
}

/** The current settings (read-only view). */
export function getSettings(): Readonly<TaskmillSettings> {
  return { ...settings };
}

/** Resolves a queue option (instance or URL, or the configured default) to one cached BaseQueue per URL. */
export function resolveQueue(queue?: BaseQueue | string): BaseQueue {
  const target = queue ?? settings.queue ?? defaultQueueUrl();
  if (target instanceof BaseQueue) return target;
  const cached = queuesByUrl.get(target);
  if (cached) return cached;
  const created = createQueue(target);
  queuesByUrl.set(target, created);
  return created;
}

/** Closes every queue opened from a URL by commands (producers call this before exiting). */
export async function closeQueues(): Promise<void> {
  const queues = [...queuesByUrl.values()];
  queuesByUrl.clear();
  await Promise.all(queues.map((q) => q.close()));
}

// ── running a command locally ──────────────────────────────────────────────

const neverAborted = new AbortController().signal;

function localContext(jobId: string, command: string): JobContext {
  return { jobId, command, attempt: 1, signal: neverAborted };
}

async function runLocally(command: RegisteredCommand, jobId: string, args: unknown[]): Promise<unknown> {
  return await command.fn.apply(localContext(jobId, command.name), args);
}

// ── queueCommand / periodicCommand ─────────────────────────────────────────

function commandName(explicit: string | undefined, fn: Function, what: string): string {
  const name = explicit ?? fn.name;
  if (typeof name !== 'string' || name.length === 0) {
    throw new ConfigError(`${what}: the function has no name; pass one: ${what}('name', fn)`);
  }
  if (name.length > NAME_MAX) throw new ConfigError(`${what}: command name is longer than ${NAME_MAX} characters`);
  return name;
}

function runAtOf(when: ScheduleWhen): number {
  if (when && typeof when === 'object' && 'delay' in when) {
    if (!Number.isFinite(when.delay) || when.delay < 0) throw new ConfigError(`schedule({ delay }) must be a number of ms ≥ 0, got ${String(when.delay)}`);
    return Date.now() + when.delay;
  }
  if (when && typeof when === 'object' && 'eta' in when) {
    const at = when.eta instanceof Date ? when.eta.getTime() : when.eta;
    if (typeof at !== 'number' || !Number.isFinite(at)) throw new ConfigError('schedule({ eta }) must be a valid Date or ms since the epoch');
    return at;
  }
  throw new ConfigError('schedule() takes { delay: ms } or { eta: Date } as its first argument');
}

export function queueCommand<A extends unknown[], R>(fn: CommandFunction<A, R>): QueuedCommand<A, R>;
export function queueCommand<A extends unknown[], R>(name: string, fn: CommandFunction<A, R>): QueuedCommand<A, R>;
export function queueCommand<A extends unknown[], R>(options: CommandOptions, fn: CommandFunction<A, R>): QueuedCommand<A, R>;
export function queueCommand<A extends unknown[], R>(
  first: CommandFunction<A, R> | string | CommandOptions,
  second?: CommandFunction<A, R>,
): QueuedCommand<A, R> {
  let options: CommandOptions;
  let fn: CommandFunction<A, R>;
  if (typeof first === 'function') {
    fn = first;
    options = {};
  } else if (typeof first === 'string') {
    fn = second!;
    options = { name: first };
  } else if (first && typeof first === 'object') {
    fn = second!;
    options = validateOptions(first);
  } else {
    throw new ConfigError('queueCommand takes (fn), (name, fn) or (options, fn)');
  }
  if (typeof fn !== 'function') throw new ConfigError('queueCommand: the last argument must be the command function');
  const name = commandName(options.name, fn, 'queueCommand');
  const registered: RegisteredCommand = {
    name,
    fn: fn as RegisteredCommand['fn'],
    options: Object.freeze({ ...options, name }),
    schedule: null,
    module: callerModule(),
  };
  registry.register(registered);

  const write = async (runAt: number | undefined, args: A): Promise<Job<Awaited<R>>> => {
    const now = Date.now();
    const expires = options.expires;
    const expiresAt = expires === undefined ? undefined : expires instanceof Date ? expires.getTime() : now + expires;
    const { id, data } = encodeMessage(name, args, {
      maxBytes: settings.maxPayloadBytes,
      now,
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    });
    if (settings.immediate) {
      // Run what a consumer would run: the decoded copy, so tests catch args that do not survive the trip.
      const value = await runLocally(registered, id, decodeMessage(data).args);
      return new Job(id, name, null, null, { ok: true, value });
    }
    const queue = resolveQueue(options.queue);
    const messageId = await queue.write(data, runAt !== undefined ? { runAt } : undefined);
    if (jobEvents.has('enqueued')) jobEvents.emit('enqueued', { jobId: id, command: name, messageId, runAt });
    return new Job(id, name, messageId, queue);
  };
  const enqueue = (...args: A) => write(undefined, args);
  const schedule = (when: ScheduleWhen, ...args: A) => write(runAtOf(when), args);

  return Object.assign(enqueue, {
    schedule,
    local: async (...args: A) => (await runLocally(registered, 'local', args)) as Awaited<R>,
    commandName: name,
    options: registered.options,
  }) as QueuedCommand<A, R>;
}

export function periodicCommand<R>(schedule: Schedule | string, fn: () => R): PeriodicCommand<R>;
export function periodicCommand<R>(schedule: Schedule | string, name: string, fn: () => R): PeriodicCommand<R>;
export function periodicCommand<R>(
  schedule: Schedule | string,
  second: string | (() => R),
  third?: () => R,
): PeriodicCommand<R> {
  const fn = typeof second === 'function' ? second : third;
  if (typeof fn !== 'function') throw new ConfigError('periodicCommand takes (schedule, fn) or (schedule, name, fn)');
  const name = commandName(typeof second === 'string' ? second : undefined, fn, 'periodicCommand');
  const resolved = toSchedule(schedule);
  const registered: RegisteredCommand = {
    name,
    fn: fn as RegisteredCommand['fn'],
    options: Object.freeze({ name }),
    schedule: resolved,
    module: callerModule(),
  };
  registry.register(registered);
  const run = async () => (await runLocally(registered, 'local', [])) as Awaited<R>;
  return Object.assign(run, { commandName: name, schedule: resolved }) as PeriodicCommand<R>;
}

// ── autodiscover ───────────────────────────────────────────────────────────

export const DEFAULT_DISCOVERY_PATTERNS = ['**/commands.{js,mjs,cjs,ts,mts,cts}'];

let tsLoaderRegistered = false;

/**
 * Imports a module by path; TypeScript goes through tsx so users need no build
 * step. Both of tsx's hooks are registered: in a `"type": "commonjs"` package a
 * `.ts` file is CommonJS, and Node's own require() of it would take its
 * `import` syntax for ESM and fail ("require() … in a cycle"). Its
 * `require('taskmill')` then reaches this same instance through index.cjs.
 */
export async function importModule(file: string): Promise<void> {
  const absolute = path.resolve(file);
  if (/\.(?:ts|mts|cts|tsx)$/.test(absolute) && !tsLoaderRegistered && !(process.features as { typescript?: unknown }).typescript) {
    const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
    esm.register();
    cjs.register();
    tsLoaderRegistered = true;
  }
  await import(pathToFileURL(absolute).href);
}

/**
 * Imports every module matching `patterns` (default: files named
 * commands.{js,mjs,cjs,ts,mts,cts} below cwd, outside node_modules and dot-folders)
 * and returns the paths imported, sorted.
 */
export async function autodiscover(patterns?: string | string[], options: { cwd?: string } = {}): Promise<string[]> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const list = patterns === undefined ? DEFAULT_DISCOVERY_PATTERNS : Array.isArray(patterns) ? patterns : [patterns];
  const files = (
    await (await import('tinyglobby')).glob(list, { cwd, absolute: true, ignore: ['**/node_modules/**', '**/.*/**'], onlyFiles: true })
  ).sort();
  for (const file of files) await importModule(file);
  return files;
}
