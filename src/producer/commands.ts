/**
 * queueCommand and periodicCommand: wrapping a function makes calling it
 * enqueue a job. The handle they return is job.ts, the table they register
 * in registry.ts, the defaults they write with settings.ts.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { z } from 'zod';
import { BaseQueue } from '../backends/base.js';
import { ConfigError } from '../shared/errors.js';
import {
  EXPECTED,
  boolean,
  factor,
  integer,
  invalidOption,
  isEpochMs,
  isMillis,
  millis,
  nonEmptyString,
  oneOf,
  parseOption,
  parseOptions,
  positiveMillis,
  type DeclaresEvery,
} from '../shared/options.js';
import { decodeMessage, encodeMessage } from '../codec/message.js';
import { toSchedule, type Schedule } from '../schedule/crontab.js';
import { jobEvents } from './hooks.js';
import { Job } from './job.js';
import { registry } from './registry.js';
import { resolveQueue, settings } from './settings.js';

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

/**
 * What a command does when an option is not given. Not filled into its
 * options (which keep what was given: `retries` absent is not `retries: 0`
 * when the command throws a Retry); read where the option is used. The
 * others: `name` the function's, `queue` configure()'s, `timeout` and
 * `expires` none, `maxDeliveries` the consumer's, `resultTtl` configure()'s
 * resultTtlMs. @internal
 */
export const COMMAND_DEFAULTS = { retries: 0, retryDelay: 0, retryBackoff: 1, results: true } as const;

const commandNameField = nonEmptyString(NAME_MAX);

/** Strict: a misspelled option (`retry: 3`) is refused, not ignored. */
const commandOptionsSchema = z.strictObject({
  name: commandNameField.optional(),
  queue: oneOf([nonEmptyString(), z.instanceof(BaseQueue)], 'must be a BaseQueue or a queue URL').optional(),
  retries: integer(0).optional(),
  retryDelay: millis(0).optional(),
  retryBackoff: factor().optional(),
  timeout: positiveMillis().optional(),
  expires: oneOf([positiveMillis(), z.date()], `${EXPECTED.positiveMillis} or a Date`).optional(),
  maxDeliveries: integer(1).optional(),
  results: boolean().optional(),
  resultTtl: positiveMillis().optional(),
});
const _declared: DeclaresEvery<z.input<typeof commandOptionsSchema>, CommandOptions> = true;

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
  if (name === '') throw new ConfigError(`${what}: the function has no name; pass one: ${what}('name', fn)`);
  return parseOption(commandNameField, name, what, 'name');
}

/**
 * The runAt of schedule(when). Checked by hand with the shared predicates, not
 * a zod parse: it runs on every call of the enqueue path.
 */
function runAtOf(when: ScheduleWhen): number {
  if (when && typeof when === 'object' && 'delay' in when) {
    if (!isMillis(when.delay)) throw invalidOption('schedule', 'delay', when.delay, EXPECTED.millis(0));
    return Date.now() + when.delay;
  }
  if (when && typeof when === 'object' && 'eta' in when) {
    const at = when.eta instanceof Date ? when.eta.getTime() : when.eta;
    if (!isEpochMs(at)) throw invalidOption('schedule', 'eta', at, `must be a valid Date or a time in milliseconds since the epoch`);
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
    options = parseOptions(commandOptionsSchema, first, 'queueCommand');
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
export function periodicCommand<R>(schedule: Schedule | string, second: string | (() => R), third?: () => R): PeriodicCommand<R> {
  const fn = typeof second === 'function' ? second : third;
  if (typeof fn !== 'function') throw new ConfigError('periodicCommand takes (schedule, fn) or (schedule, name, fn)');
  const name = commandName(typeof second === 'string' ? second : undefined, fn, 'periodicCommand');
  const resolved = toSchedule(schedule);
  const registered: RegisteredCommand = {
    name,
    fn: fn,
    options: Object.freeze({ name }),
    schedule: resolved,
    module: callerModule(),
  };
  registry.register(registered);
  const run = async () => (await runLocally(registered, 'local', [])) as Awaited<R>;
  return Object.assign(run, { commandName: name, schedule: resolved }) as PeriodicCommand<R>;
}
