/**
 * queueCommand and periodicCommand: wrapping a function makes calling it
 * enqueue a job. The handle they return is job.ts, the table they register
 * in registry.ts, the defaults they write with settings.ts.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { BaseQueue, MAX_PRIORITY, MIN_PRIORITY, type StartGates, type WriteOptions } from '../backends/base.js';
import { ConfigError, describeValue } from '../shared/errors.js';
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
  callback,
  parseOption,
  parseOptions,
  positiveMillis,
  type DeclaresEvery,
} from '../shared/options.js';
import { decodeMessage, encodeMessage, type EnvelopeFlow } from '../codec/message.js';
import { serializeArgs } from '../codec/tagged-json.js';
import { toSchedule, type EverySchedule, type Schedule } from '../schedule/crontab.js';
import { concurrencyField, gateKeysOf, rateLimitField, startGatesOf, type ConcurrencyOptions, type GateKeys, type RateLimitOptions } from './gates.js';
import { COMPOSE, makeStep, type Composable, type Step } from './composition.js';
import { jobEvents } from './hooks.js';
import { enqueueSpan, type SpanEnd } from '../observability/tracing.js';
import { Job } from './job.js';
import { runLocally } from './local-run.js';
import { registry } from './registry.js';
import { resolveQueue, settings } from './settings.js';
import { poolField, type Pool } from '../pool/kinds.js';

/** What a command sees as `this` while it runs (use a `function`, not an arrow, to read it). */
export interface JobContext {
  /** The job (envelope) id. */
  readonly jobId: string;
  readonly command: string;
  /** 1 on the first run. */
  readonly attempt: number;
  /** Aborted when the command times out or the consumer is forced to stop. */
  readonly signal: AbortSignal;
  /**
   * Reports how far the job is: a number from 0 to 100, or a JSON value (`{ stage: 'upload' }`);
   * `job.progress()` reads the latest. Throws a TypeError naming a value it cannot store.
   * See docs/job-lifecycle.md#progress.
   */
  progress(value: unknown): void;
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
  /**
   * An integer from -1000 to 1000; a consumer starts higher priorities first, and jobs of one
   * priority oldest first (default 0). Strict: a steady stream of higher ones starves lower ones
   * (see docs/flow-control.md). `schedule({ priority })` overrides it per call.
   */
  priority?: number;
  /**
   * While a job of this command with the same key is waiting, delayed or running, enqueuing
   * again writes nothing and returns that job (`job.duplicate === true`); once it is done the key
   * is free. `true` keys on the arguments; `{ key }` computes the key from them; `{ ttl }` (ms)
   * frees the key after that long even if the job is still there. See docs/flow-control.md.
   */
  unique?: boolean | UniqueOptions;
  /**
   * At most `limit` jobs of this command start in any window of `per` ms, across every consumer
   * (one window per `key(...args)` value when given). Jobs over it wait in the queue, unstarted,
   * until their booked start; they are never failed. See docs/flow-control.md.
   */
  rateLimit?: RateLimitOptions;
  /**
   * At most `limit` jobs of this command run at once across every consumer (per `key(...args)`
   * value when given). The others wait, parked, until a slot frees; a consumer that dies holding
   * a slot gives it back when its lease lapses. See docs/flow-control.md.
   */
  concurrency?: ConcurrencyOptions;
  /**
   * Where a consumer runs it: `'inline'` on its own event loop, `'threads'` in a worker thread,
   * `'processes'` in a child process (each worker owns one). Wins over the consumer's `pool`.
   * Default: the consumer's (`'inline'`). See docs/isolation.md.
   */
  pool?: Pool;
}

export interface UniqueOptions {
  /** The job's key from its arguments (default: the arguments themselves). Keys are per command. */
  key?: (...args: never[]) => string;
  /** Hold the key at most this long, ms (default: until the job is done). */
  ttl?: number;
}

export type CommandFunction<A extends unknown[], R> = (this: JobContext, ...args: A) => R;

/** Per-call options of `schedule()`: when the job may start (`delay` ms from now, or at `eta`; neither: now) and its priority. */
export interface ScheduleWhen {
  delay?: number;
  eta?: Date | number;
  /** Overrides the command's `priority` for this job. */
  priority?: number;
  /** Enqueue this job uniquely under this key (overrides the command's `unique` key). */
  uniqueKey?: string;
  /**
   * Write the job in your own transaction: a `pg` Client or PoolClient inside BEGIN … COMMIT
   * (PostgreSQL queue), or your better-sqlite3 Database on the queue's file inside
   * `db.transaction()` (SQLite queue). The job exists if and only if that transaction commits.
   * See docs/transactions.md.
   */
  tx?: unknown;
}

export interface QueuedCommand<A extends unknown[], R> {
  /** Enqueues the command; resolves once the message is written. */
  (...args: A): Promise<Job<Awaited<R>>>;
  /**
   * Enqueues the command with per-call options: to run no earlier than `delay` / `eta`
   * (1-second precision: the scheduler promotes due jobs each second), at `priority`.
   */
  schedule(options: ScheduleWhen, ...args: A): Promise<Job<Awaited<R>>>;
  /**
   * Enqueues one job per argument list, in order, in one backend round trip (one transaction,
   * one script call per chunk of 1,000 on Redis); resolves with the jobs in the same order.
   * The command's options (priority, expires, …) apply to every job.
   */
  map(argsList: Iterable<A>): Promise<Job<Awaited<R>>[]>;
  /** Runs the command in this process now, bypassing the queue. */
  local(...args: A): Promise<Awaited<R>>;
  /**
   * A step for `pipeline()` / `group()`: this command with these arguments, not enqueued. In a
   * pipeline a later step gets the previous result in front of them, so it takes the arguments
   * after the first. The arguments are serialized now: one that cannot be sent throws here.
   */
  with(...args: A | DropFirst<A>): Step<Awaited<R>>;
  readonly commandName: string;
  readonly options: Readonly<CommandOptions>;
  /** What pipeline() and group() use (not public). */
  readonly [COMPOSE]: Composable;
}

/** A parameter list without its first parameter (what a later step of a pipeline is given besides the previous result). */
export type DropFirst<A extends unknown[]> = A extends [unknown, ...infer T] ? T : A extends [unknown?, ...infer T] ? T : never;

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
  /** The module that registered it (relative to the working directory), for messages. */
  readonly module: string | undefined;
  /** That module's absolute path: what a pool's thread or process imports to find it. @internal */
  readonly moduleFile?: string | undefined;
  /** The gates a consumer passes before it starts a job of it (from the job's keys); null when it has none. @internal */
  readonly startGates?: ((keys: GateKeys) => StartGates) | null;
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
  priority: integer(MIN_PRIORITY, MAX_PRIORITY).optional(),
  unique: oneOf(
    [boolean(), z.strictObject({ key: callback<(...args: never[]) => string>().optional(), ttl: positiveMillis().optional() })],
    'must be true, false or { key?: (...args) => string, ttl?: ms }',
  ).optional(),
  rateLimit: rateLimitField.optional(),
  concurrency: concurrencyField.optional(),
  pool: poolField.optional(),
});
const _declared: DeclaresEvery<z.input<typeof commandOptionsSchema>, CommandOptions> = true;

const THIS_MODULE = fileURLToPath(import.meta.url).replace(/\.[cm]?[jt]s$/, '');
const STACK_FILE = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?$/;

/**
 * The module file that called into this one, read off the stack: for messages, and for a pool's
 * threads and processes, which import it to find the command. ESM (`file://` frames), CommonJS
 * and tsx (source-mapped to the .ts file) all name the file; a REPL or eval names none.
 */
function callerModule(): { module: string | undefined; moduleFile: string | undefined } {
  for (const line of (new Error().stack ?? '').split('\n').slice(1)) {
    const match = STACK_FILE.exec(line.trim());
    if (!match) continue;
    const file = match[1]!.startsWith('file://') ? fileURLToPath(match[1]!) : match[1]!;
    if (file.replace(/\.[cm]?[jt]s$/, '') === THIS_MODULE) continue;
    return { module: path.relative(process.cwd(), file) || file, moduleFile: file };
  }
  return { module: undefined, moduleFile: undefined };
}

// ── queueCommand / periodicCommand ─────────────────────────────────────────

function commandName(explicit: string | undefined, fn: Function, what: string): string {
  const name = explicit ?? fn.name;
  if (name === '') throw new ConfigError(`${what}: the function has no name; pass one: ${what}('name', fn)`);
  return parseOption(commandNameField, name, what, 'name');
}

const SCHEDULE_KEYS = new Set(['delay', 'eta', 'priority', 'uniqueKey', 'tx']);

/** The write options of one `schedule()` call; a ConfigError naming the option when one is wrong. */
function scheduleOptionsOf(options: ScheduleWhen, commandPriority: number | undefined): WriteOptions {
  if (!options || typeof options !== 'object') throw new ConfigError('schedule() takes { delay?, eta?, priority?, uniqueKey?, tx? } as its first argument');
  for (const key of Object.keys(options)) {
    if (!SCHEDULE_KEYS.has(key)) throw new ConfigError(`schedule(): unknown option ${JSON.stringify(key)} (options: delay, eta, priority, uniqueKey, tx)`);
  }
  const write: WriteOptions = {};
  if (options.delay !== undefined && options.eta !== undefined) throw new ConfigError('schedule(): give delay or eta, not both');
  if (options.delay !== undefined) {
    if (!isMillis(options.delay)) throw invalidOption('schedule', 'delay', options.delay, EXPECTED.millis(0));
    write.runAt = Date.now() + options.delay;
  } else if (options.eta !== undefined) {
    const at = options.eta instanceof Date ? options.eta.getTime() : options.eta;
    if (!isEpochMs(at)) throw invalidOption('schedule', 'eta', at, 'must be a valid Date or a time in milliseconds since the epoch');
    write.runAt = at;
  }
  const priority = options.priority ?? commandPriority;
  if (priority !== undefined) {
    if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
      throw invalidOption('schedule', 'priority', priority, `must be an integer from ${MIN_PRIORITY} to ${MAX_PRIORITY}`);
    }
    if (priority !== 0) write.priority = priority;
  }
  return write;
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
    ...callerModule(),
    startGates: startGatesOf(name, options.rateLimit, options.concurrency),
  };
  registry.register(registered);

  // Built once: most enqueues pass these very options.
  const defaultWrite: WriteOptions | undefined = options.priority ? { priority: options.priority } : undefined;
  const gateKeys = gateKeysOf(name, options.rateLimit, options.concurrency);
  const encode = (args: A, now: number, composed?: { id: string; flow: EnvelopeFlow | undefined }, trace?: string) => {
    const expires = options.expires;
    const expiresAt = expires === undefined ? undefined : expires instanceof Date ? expires.getTime() : now + expires;
    return encodeMessage(name, args, {
      maxBytes: settings.maxPayloadBytes,
      now,
      ...(composed ? { id: composed.id, ...(composed.flow ? { flow: composed.flow } : {}) } : {}),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
      ...(gateKeys ? gateKeys(args) : {}),
      ...(trace !== undefined ? { trace } : {}),
    });
  };
  const runImmediately = async (id: string, data: string) => {
    // Run what a consumer would run: the decoded copy, so tests catch args that do not survive the trip.
    const { value, progress } = await runLocally(registered, id, decodeMessage(data).args);
    return new Job<Awaited<R>>(id, name, null, null, { ok: true, value, progress });
  };
  const unique = options.unique === true ? {} : options.unique || null;
  const keyTtlMs = unique?.ttl;
  /** The stored unique key of a job (per command: the command's name first), or null when it is not unique. */
  const uniqueKeyOf = (args: A, explicit: string | undefined): string | null => {
    if (explicit !== undefined) return `${name}:${explicit}`;
    if (!unique) return null;
    if (!unique.key) return `${name}:${createHash('sha256').update(serializeArgs(args)).digest('base64url')}`;
    let key: unknown;
    try {
      key = (unique.key as unknown as (...args: A) => unknown)(...args);
    } catch (error) {
      throw new ConfigError(`${name}: unique.key threw: ${error instanceof Error ? error.message : describeValue(error)}; nothing was enqueued`);
    }
    if (typeof key !== 'string' || key === '') throw invalidOption(name, 'unique.key()', key, 'must return a non-empty string');
    return `${name}:${key}`;
  };
  /** Writes one encoded job, once under its key when it has one, in the caller's transaction when given one. */
  const writeOne = async (
    queue: BaseQueue,
    id: string,
    data: string,
    writeOptions: WriteOptions | undefined,
    key: string | null,
    tx?: unknown,
  ): Promise<Job<Awaited<R>>> => {
    if (key !== null || tx !== undefined) {
      // No await before the backend call: a SQLite transaction is synchronous, so the write must be made within this call.
      const once = keyTtlMs === undefined ? writeOptions : { ...writeOptions, keyTtlMs };
      const written = await (tx === undefined
        ? queue.writeOnce(key!, data, once)
        : queue.writeInTransaction(tx, data, { ...once, ...(key !== null ? { uniqueKey: key } : {}) }));
      if (written.duplicate) return new Job<Awaited<R>>(decodeMessage(written.data).id, name, written.id, queue, null, true);
      if (jobEvents.has('enqueued')) jobEvents.emit('enqueued', { jobId: id, command: name, messageId: written.id, runAt: writeOptions?.runAt });
      return new Job<Awaited<R>>(id, name, written.id, queue);
    }
    const messageId = await queue.write(data, writeOptions);
    if (jobEvents.has('enqueued')) jobEvents.emit('enqueued', { jobId: id, command: name, messageId, runAt: writeOptions?.runAt });
    return new Job<Awaited<R>>(id, name, messageId, queue);
  };
  const write = async (writeOptions: WriteOptions | undefined, args: A, explicitKey?: string, tx?: unknown): Promise<Job<Awaited<R>>> => {
    const key = uniqueKeyOf(args, explicitKey);
    if (settings.immediate) {
      const { id, data } = encode(args, Date.now());
      return runImmediately(id, data);
    }
    const queue = resolveQueue(options.queue);
    const span = enqueueSpan(name, queue.name);
    const { id, data } = encode(args, Date.now(), undefined, span?.traceparent);
    if (!span) return writeOne(queue, id, data, writeOptions, key, tx);
    return traced(span, () => writeOne(queue, id, data, writeOptions, key, tx), { 'messaging.message.id': id });
  };
  const enqueue = (...args: A) => write(defaultWrite, args);
  const schedule = async (when: ScheduleWhen, ...args: A) => {
    const writeOptions = scheduleOptionsOf(when, options.priority);
    const explicit = when.uniqueKey;
    if (explicit !== undefined && (typeof explicit !== 'string' || explicit === ''))
      throw invalidOption('schedule', 'uniqueKey', explicit, 'must be a non-empty string');
    if (when.tx === null) throw invalidOption('schedule', 'tx', when.tx, 'must be the client (PostgreSQL) or Database (SQLite) of your transaction');
    return write(writeOptions, args, explicit, when.tx);
  };
  const map = async (argsList: Iterable<A>): Promise<Job<Awaited<R>>[]> => {
    if (argsList === null || typeof argsList !== 'object' || typeof (argsList as Partial<Iterable<A>>)[Symbol.iterator] !== 'function') {
      throw new ConfigError(`${name}.map() takes a list of argument lists, got ${describeValue(argsList)}`);
    }
    const lists = [...argsList];
    for (const [i, args] of lists.entries()) {
      if (!Array.isArray(args)) throw new ConfigError(`${name}.map(): entry #${i} must be an array of arguments, got ${describeValue(args)}`);
    }
    // Every message is encoded (and its key computed) before anything is written: a bad entry writes nothing.
    const now = Date.now();
    const keys = lists.map((args) => uniqueKeyOf(args, undefined));
    // One span for the call: its jobs' runs are each a child of it.
    const span = settings.immediate || lists.length === 0 ? null : enqueueSpan(name, resolveQueue(options.queue).name);
    const encoded = lists.map((args) => encode(args, now, undefined, span?.traceparent));
    if (span) return traced(span, () => writeMany(encoded, keys), { 'messaging.batch.message_count': encoded.length });
    return writeMany(encoded, keys);
  };
  const writeMany = async (encoded: { id: string; data: string }[], keys: (string | null)[]): Promise<Job<Awaited<R>>[]> => {
    if (settings.immediate) {
      const jobs: Job<Awaited<R>>[] = [];
      for (const { id, data } of encoded) jobs.push(await runImmediately(id, data));
      return jobs;
    }
    if (encoded.length === 0) return [];
    const queue = resolveQueue(options.queue);
    // Unique jobs are each a writeOnce (sent together, so pipelined on one connection where the backend can).
    if (unique) return Promise.all(encoded.map(({ id, data }, i) => writeOne(queue, id, data, defaultWrite, keys[i]!)));
    const messageIds = await queue.writeBatch(
      encoded.map((m) => m.data),
      defaultWrite,
    );
    return encoded.map(({ id }, i) => {
      const messageId = messageIds[i]!;
      if (jobEvents.has('enqueued')) jobEvents.emit('enqueued', { jobId: id, command: name, messageId, runAt: undefined });
      return new Job<Awaited<R>>(id, name, messageId, queue);
    });
  };

  const composable: Composable = {
    queue: () => resolveQueue(options.queue),
    encode: (args, id, flow) => ({ data: encode(args as A, Date.now(), { id, flow }).data, writeOptions: defaultWrite }),
    run: async (id, args) => (await runLocally(registered, id, args)).value,
  };
  const command = Object.assign(enqueue, {
    schedule,
    map,
    local: async (...args: A) => (await runLocally(registered, 'local', args)).value as Awaited<R>,
    with: (...args: unknown[]) => makeStep<Awaited<R>>(command, args),
    commandName: name,
    options: registered.options,
    [COMPOSE]: composable,
  }) as QueuedCommand<A, R>;
  return command;
}

/** Runs a write inside its enqueue span (called at once: a SQLite transaction write must stay synchronous). */
async function traced<T>(span: SpanEnd, write: () => Promise<T>, attributes: Record<string, string | number>): Promise<T> {
  try {
    const result = await write();
    span.end(undefined, attributes);
    return result;
  } catch (error) {
    span.end(error);
    throw error;
  }
}

/**
 * A command run on a schedule: a crontab()/cronSchedule() Schedule, a cron string, or
 * `{ every: ms }` (an interval, at least 1,000 ms). Each slot is enqueued once across every
 * consumer running a scheduler.
 */
export function periodicCommand<R>(schedule: Schedule | string | EverySchedule, fn: () => R): PeriodicCommand<R>;
export function periodicCommand<R>(schedule: Schedule | string | EverySchedule, name: string, fn: () => R): PeriodicCommand<R>;
export function periodicCommand<R>(schedule: Schedule | string | EverySchedule, second: string | (() => R), third?: () => R): PeriodicCommand<R> {
  const fn = typeof second === 'function' ? second : third;
  if (typeof fn !== 'function') throw new ConfigError('periodicCommand takes (schedule, fn) or (schedule, name, fn)');
  const name = commandName(typeof second === 'string' ? second : undefined, fn, 'periodicCommand');
  const resolved = toSchedule(schedule);
  const registered: RegisteredCommand = {
    name,
    fn: fn,
    options: Object.freeze({ name }),
    schedule: resolved,
    ...callerModule(),
  };
  registry.register(registered);
  const run = async () => (await runLocally(registered, 'local', [])).value as Awaited<R>;
  return Object.assign(run, { commandName: name, schedule: resolved }) as PeriodicCommand<R>;
}
