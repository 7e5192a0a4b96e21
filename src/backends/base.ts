/**
 * BaseQueue: the contract every backend passes (test/backends/contract.ts).
 *
 * The seed's six methods keep their meaning (write, read, ack, flush, length,
 * close). The rest is what an at-least-once consumer needs:
 *
 * - Leases. `readBatch(n)` claims up to n ready messages (oldest first) for
 *   `this.owner` until now + `leaseMs`, and increments each message's
 *   `attempt`. A message whose lease deadline has passed is ready again: any
 *   read (by any owner) may claim it — so no separate reaper is needed for
 *   correctness; `reclaim()` only makes it visible in `stats()` sooner.
 * - Fencing. `ackBatch`, `fail`, `retry`, `release`, `extend` and `startGated`
 *   act only on messages currently leased by `this.owner` (lease not
 *   expired, not reclaimed by another owner). Given the delivery tokens a
 *   read handed out (`QueueMessage.delivery`), they act only on that very
 *   delivery: a lease this owner let lapse and read again is a new delivery,
 *   and the old one's calls are refused. `setResults` given message ids and
 *   deliveries writes a record only while its delivery holds the lease.
 *   Anything else is refused: returned in the refused list / `false` /
 *   skipped, never thrown, never applied.
 * - A failed store (dead letters) that can be listed, re-queued and purged.
 * - Slot claims for periodic commands: `writeUnique(key, data, ttlMs)` claims
 *   `key` and writes the message atomically, so any number of schedulers
 *   enqueue a (command, minute) slot exactly once.
 *
 * Backends never import xstate; all consumer I/O goes through the
 * queue-adapter actor, which owns one BaseQueue.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ConfigError, LeaseLostError, describeValue } from '../shared/errors.js';
import type { CancelOutcome, ConsumerRecord, EventPage, FoundMessage, QueueControl, ThroughputBucket, ThroughputCount } from './control.js';
import {
  EXPECTED,
  callback,
  invalidOption,
  isEpochMs,
  isNonEmptyString,
  isPositiveMillis,
  matching,
  millis,
  nonEmptyString,
  parseOption,
  parseOptions,
  type DeclaresEvery,
} from '../shared/options.js';

/** A leased message as handed to the consumer. */
export interface QueueMessage {
  /** Backend message id (string even when the backend stores an integer). */
  id: string;
  /** The payload exactly as written. */
  data: string;
  /** How many times this message has been leased, this lease included (1 on first delivery). */
  attempt: number;
  /**
   * This delivery's token: no other read of this message by this owner hands out the same one.
   * Passed back to ack, fail, retry, release, extend, startGated and setResults, it fences them
   * to this delivery (see {@link BaseQueue.nextDelivery}).
   */
  delivery: number;
}

/** A message in the failed store. */
export interface FailedMessage {
  id: string;
  data: string;
  /** Deliveries it had when it failed. */
  attempt: number;
  /** The reason / error text recorded with it (no payload inside). */
  error: string;
  failedAt: Date;
}

/** Options of a write. */
export interface WriteOptions {
  /** Delay: the message is not readable before this time (ms since the epoch). Past or absent: ready at once. */
  runAt?: number;
  /**
   * An integer from {@link MIN_PRIORITY} to {@link MAX_PRIORITY}; higher is read first, FIFO
   * within one priority. Default 0. Kept through release, lease expiry, retry and requeueFailed.
   */
  priority?: number;
}

/** The priority range every backend stores exactly (Redis folds it into a 53-bit score). */
export const MIN_PRIORITY = -1000;
export const MAX_PRIORITY = 1000;

/** A write's priority: 0 when absent; a ConfigError naming the value when it is no integer in range. */
export function checkPriority(priority: unknown): number {
  if (priority === undefined) return 0;
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw new ConfigError(`invalid priority ${describeValue(priority)}: must be an integer from ${MIN_PRIORITY} to ${MAX_PRIORITY}`);
  }
  return priority;
}

/**
 * A rate gate: at most `limit` starts under `key` in any window of `perMs` ms (a sliding window
 * over the recorded start times, not fixed buckets), across every consumer of the queue.
 */
export interface RateGate {
  key: string;
  limit: number;
  perMs: number;
}

/** A concurrency gate: at most `limit` messages under `key` running (started, lease live) at once. */
export interface ConcurrencyGate {
  key: string;
  limit: number;
}

/** The gates one start must pass: a command has at most one of each. */
export interface StartGates {
  rate?: RateGate | undefined;
  concurrency?: ConcurrencyGate | undefined;
}

/**
 * What `startGated` decided. `started`: run it now. `deferred`: it is back in the queue,
 * unstarted, and will be readable again when its gates may let it through. `lost`: this owner
 * no longer holds its lease; nothing changed.
 */
export type StartDecision = 'started' | 'deferred' | 'lost';

/**
 * startGated's answer. A message deferred by its rate gate carries `runAt`, the time its start
 * is booked for (backend clock, ms since the epoch), so a consumer can promote it then rather
 * than on its next tick; a parked one has none (a freed slot wakes it).
 */
export interface StartOutcome {
  decision: StartDecision;
  runAt?: number;
}

/** Gate keys are stored as given; this bounds them. */
export const MAX_GATE_KEY_LENGTH = 512;

/** A rate or concurrency key: the same rule as a unique key. */
export function checkGateKey(key: unknown, what: string): string {
  return checkStoredKey(key, `${what} key`, MAX_GATE_KEY_LENGTH);
}

/** A gate's limit: an integer ≥ 1 (at most 1e6, so counts stay small everywhere). */
export function checkGateLimit(limit: unknown, what: string): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1_000_000) {
    throw new ConfigError(`invalid ${what}.limit ${describeValue(limit)}: must be an integer from 1 to 1000000`);
  }
  return limit;
}

/** A rate gate's window: an integer number of ms ≥ 1. */
export function checkGatePer(per: unknown, what: string): number {
  if (typeof per !== 'number' || !Number.isInteger(per) || per < 1 || per > 2 ** 31) {
    throw new ConfigError(`invalid ${what}.per ${describeValue(per)}: must be an integer number of ms from 1 to 2^31`);
  }
  return per;
}

/** The gates of one start, checked (keys, limits, windows); a ConfigError names the bad one. */
export function checkStartGates(gates: unknown): StartGates {
  const g = (gates ?? {}) as { rate?: Partial<RateGate>; concurrency?: Partial<ConcurrencyGate> };
  if (typeof gates !== 'object' || gates === null) throw new ConfigError(`invalid start gates ${describeValue(gates)}: must be an object`);
  if (g.rate !== undefined) {
    checkGateKey(g.rate.key, 'rateLimit');
    checkGateLimit(g.rate.limit, 'rateLimit');
    checkGatePer(g.rate.perMs, 'rateLimit');
  }
  if (g.concurrency !== undefined) {
    checkGateKey(g.concurrency.key, 'concurrency');
    checkGateLimit(g.concurrency.limit, 'concurrency');
  }
  return gates;
}

/**
 * Where a deferred rate-limited start goes: the time its start is booked for. `log` is the
 * window's entries (start and booking times, sorted, this message's own booking left out).
 *
 * - A message that had no booking queues behind every other booking (FIFO) and leaves fewer
 *   than `limit` entries in the window that ends at it.
 * - A message whose booking came due but found the window full (the starts before it ran late,
 *   so their recorded times moved into its window) is rebooked at the earliest time the starts
 *   already made allow — a few ms later — instead of behind the whole backlog.
 *
 * Every backend applies the same rule (Lua and SQL spell it out again).
 */
export function reserveAt(log: readonly number[], limit: number, perMs: number, now: number, rebooking = false): number {
  if (rebooking) {
    let due = 0;
    while (due < log.length && log[due]! <= now) due++;
    return due >= limit ? Math.max(now, log[due - limit]! + perMs) : now;
  }
  const n = log.length;
  let at = now;
  if (n > 0 && log[n - 1]! > at) at = log[n - 1]!;
  if (n >= limit && log[n - limit]! + perMs > at) at = log[n - limit]! + perMs;
  return at;
}

/** A result record to store under a job id (the envelope id), with its time to live. */
/** What `writeOnce` did: wrote a new message, or found the one that holds the key. */
export type WriteOnceResult = { id: string; duplicate: false } | { id: string; duplicate: true; data: string };

/** Options of `writeOnce`: a write's, and how long the key may be held at most. */
export interface WriteOnceOptions extends WriteOptions {
  /** The key is free after this many ms even if its message is still there. Default: until the message is done. */
  keyTtlMs?: number;
}

/** Options of a write inside the application's own transaction: a write's, and a unique key when it has one. */
export interface TransactionWriteOptions extends WriteOnceOptions {
  /** Write it once under this key (writeOnce's rule); absent: a plain write. */
  uniqueKey?: string;
}

/** Unique keys are stored as given; this bounds them. */
export const MAX_UNIQUE_KEY_LENGTH = 512;

/** A unique key: a non-empty string of at most {@link MAX_UNIQUE_KEY_LENGTH} characters, well-formed, no NUL. */
export function checkUniqueKey(key: unknown): string {
  return checkStoredKey(key, 'unique key', MAX_UNIQUE_KEY_LENGTH);
}

/** A key every backend stores as it is: a non-empty well-formed string without NUL (PostgreSQL text holds neither), bounded. */
function checkStoredKey(key: unknown, what: string, max: number): string {
  if (typeof key !== 'string' || key === '' || key.length > max || key.includes('\u0000') || !(key as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new ConfigError(`invalid ${what} ${describeValue(key)}: must be a non-empty string of at most ${max} characters, without NUL or lone surrogates`);
  }
  return key;
}

/** keyTtlMs: absent, or a number of ms ≥ 1. */
export function checkKeyTtl(ttl: unknown): number | undefined {
  if (ttl === undefined) return undefined;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 1)
    throw new ConfigError(`invalid unique ttl ${describeValue(ttl)}: must be a number of ms ≥ 1`);
  return Math.ceil(ttl);
}

export interface ResultRecord {
  jobId: string;
  /** Opaque text (taskmill stores JSON). */
  record: string;
  ttlMs: number;
}

export interface QueueStats {
  /** Waiting to be read. An expired lease counts as leased until a read or `reclaim()` takes it back. */
  ready: number;
  /** Currently leased by some consumer. */
  leased: number;
  /** In the failed store. */
  failed: number;
  /** Written with a future `runAt` (or retried with a delay) and not yet promoted to ready (it may already be due). */
  delayed: number;
}

export interface QueueOptions {
  /** The queue's name inside its backend. Default `'default'`. Must match {@link QUEUE_NAME_PATTERN}. */
  name?: string;
  /** How long a read leases a message before another consumer may take it. Default 30 000 ms. */
  leaseMs?: number;
  /** Lease owner token of this instance. Default: a random UUID. */
  owner?: string;
  /** Where a backend reports a non-fatal problem (e.g. Redis maxmemory-policy). Default: process.emitWarning. */
  onWarning?: (message: string) => void;
}

export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const QUEUE_NAME_EXPECTED = 'must be 1-64 characters from A-Z a-z 0-9 _ . -';

/** A queue name (and a Redis key prefix): {@link QUEUE_NAME_PATTERN}. @internal */
export const queueNameField = matching(QUEUE_NAME_PATTERN, QUEUE_NAME_EXPECTED);
/** A lease length (createConsumer's leaseMs is the same field). @internal */
export const leaseMsField = millis(100);

/** The defaults of {@link QueueOptions} that are values (owner: a random UUID per instance; onWarning: process.emitWarning). @internal */
export const QUEUE_DEFAULTS = { name: 'default', leaseMs: 30_000 } as const;

const emitWarning = (message: string) => process.emitWarning(message, 'TaskmillWarning');

/** Every backend's shared options; a backend parses its own on top (a schema of just those). */
const queueOptionsSchema = z.object({
  name: queueNameField.default(QUEUE_DEFAULTS.name),
  leaseMs: leaseMsField.default(QUEUE_DEFAULTS.leaseMs),
  owner: nonEmptyString().default(() => randomUUID()),
  onWarning: callback<(message: string) => void>().default(() => emitWarning),
});
const _declared: DeclaresEvery<z.input<typeof queueOptionsSchema>, QueueOptions> = true;

/** Throws a ConfigError naming the bad value when `name` is not an allowed queue name. */
export function validateQueueName(name: unknown, what = 'queue name'): string {
  return parseOption(queueNameField, name, '', what);
}

/** The last delivery token this process handed out (BaseQueue.nextDelivery). */
let lastDelivery = 0;

export abstract class BaseQueue {
  readonly name: string;
  /** True when `waitForMessages` blocks on the server; the reader then never polls with backoff. */
  readonly blocking: boolean = false;
  readonly owner: string;
  readonly leaseMs: number;
  protected readonly warn: (message: string) => void;

  constructor(options: QueueOptions = {}) {
    const parsed = parseOptions(queueOptionsSchema, options, new.target.name);
    this.name = parsed.name;
    this.owner = parsed.owner;
    this.leaseMs = parsed.leaseMs;
    this.warn = parsed.onWarning;
  }

  /**
   * A fresh delivery token for one read: every message a read leases may share it (a message is
   * in a read once). A backend stores it with the lease and fences by (owner, token).
   *
   * Tokens come from one sequence per process that never falls behind the clock in µs-sized
   * steps (1000 per ms): no two instances of a process share one, and a process restarted with
   * the same fixed `owner` starts past every token the old one handed out unless that one read
   * over a thousand times per ms. They stay safe integers until the year 2255.
   */
  protected nextDelivery(): number {
    lastDelivery = Math.max(Date.now() * 1000, lastDelivery + 1);
    return lastDelivery;
  }

  // ── the seed's six ────────────────────────────────────────────────────

  /** Appends a message (delayed until `options.runAt` if given); resolves with its id once it is durably written. */
  abstract write(data: string, options?: WriteOptions): Promise<string>;

  /** Writes several messages in order, atomically where the backend can, in as few round trips as it allows. */
  abstract writeBatch(datas: readonly string[], options?: WriteOptions): Promise<string[]>;

  /**
   * Writes `data` under the unique `key` unless a message written under that key is still
   * waiting, delayed or leased (and the key has not outlived `keyTtlMs`): then writes nothing and
   * resolves with that message's id and data. Atomic. The key is free again once its message is
   * acked, failed, or removed; a retry or a release keeps it. A message the failed store requeues
   * does not take its key back.
   */
  writeOnce(_key: string, _data: string, _options?: WriteOnceOptions): Promise<WriteOnceResult> {
    return Promise.reject(new ConfigError(`${this.constructor.name} does not support unique jobs (writeOnce)`));
  }

  /**
   * Writes `data` through `tx`, the application's own transaction on this queue's database (a
   * `pg` Client or PoolClient inside BEGIN … COMMIT; a better-sqlite3 Database on this queue's
   * file inside `db.transaction()`): the message exists if and only if that transaction
   * commits, and consumers are woken on the commit only. With `uniqueKey` it is writeOnce's
   * write (a key taken by a transaction that rolls back is free again). A `tx` of another kind,
   * one outside a transaction, or one on another file is a ConfigError, and nothing is written.
   * Backends without transactions refuse it.
   */
  writeInTransaction(_tx: unknown, _data: string, _options?: TransactionWriteOptions): Promise<WriteOnceResult> {
    return Promise.reject(new ConfigError(`${this.constructor.name} has no transactions to join: schedule({ tx }) needs a PostgreSQL or SQLite queue`));
  }

  /** Leases one message; null when none is ready. Never throws on empty. */
  async read(): Promise<QueueMessage | null> {
    const [message] = await this.readBatch(1);
    return message ?? null;
  }

  /**
   * The message is done: deletes it. Throws LeaseLostError when this owner no longer holds its lease
   * (with `delivery`: when that delivery no longer holds it).
   */
  async ack(id: string, delivery?: number): Promise<void> {
    const refused = await this.ackBatch([id], delivery === undefined ? undefined : [delivery]);
    if (refused.length > 0) throw new LeaseLostError(id);
  }

  /** Deletes every message of this queue: ready, leased and failed, and its slot claims. */
  abstract flush(): Promise<void>;

  /** Messages waiting to be read (not leased, not failed). */
  abstract length(): Promise<number>;

  /** Releases connections/handles. Idempotent. Leases held are NOT released (call `release` first). */
  abstract close(): Promise<void>;

  // ── what the consumer needs ───────────────────────────────────────────

  /** Connects / creates schema. Idempotent; other methods may call it lazily. */
  async open(): Promise<void> {}

  /** Leases up to `max` ready (or lease-expired) messages, oldest first; [] when none. */
  abstract readBatch(max: number): Promise<QueueMessage[]>;

  /**
   * Deletes messages leased by this owner; resolves with the ids refused (lease lost / unknown).
   * `deliveries`, when given, holds each id's delivery token (same order): an id is deleted only
   * while that delivery holds its lease. The lease-ending and lease-keeping calls below take
   * them the same way.
   */
  abstract ackBatch(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]>;

  /** Returns messages leased by this owner to the queue unstarted (attempt decremented). Others are ignored. */
  abstract release(ids: readonly string[], deliveries?: readonly number[]): Promise<void>;

  /** Pushes the lease deadline of messages leased by this owner to now + leaseMs; resolves with the ids refused. */
  abstract extend(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]>;

  /** Moves a message leased by this owner (by its `delivery`, when given) to the failed store with `error`; false when the lease was lost. */
  abstract fail(id: string, error: string, delivery?: number): Promise<boolean>;

  /** Makes every expired lease (any owner) ready again; resolves with how many. */
  abstract reclaim(): Promise<number>;

  /** Lists the failed store, oldest failure first, at most `limit` (default 100). */
  abstract failed(limit?: number): Promise<FailedMessage[]>;

  /** Moves failed messages (the given ids, or all) back to ready with attempt 0; resolves with how many. */
  abstract requeueFailed(ids?: readonly string[]): Promise<number>;

  /** Deletes the failed store (the given ids, or all); resolves with how many. */
  abstract purgeFailed(ids?: readonly string[]): Promise<number>;

  abstract stats(): Promise<QueueStats>;

  /**
   * Claims the slot `key` for `ttlMs` and, only if this call won the claim,
   * writes `data` — atomically (no claim without its message, no message
   * without its claim). Resolves with the new message id, or null when the
   * slot was already claimed and its claim has not expired. Expired claims
   * are purged so the claim store stays small.
   */
  abstract writeUnique(key: string, data: string, ttlMs: number): Promise<string | null>;

  // ── flow control: rate limits and concurrency keys ──────────────────

  /**
   * Starts leased message `id` under `gates`, atomically across every consumer of this queue
   * (docs/flow-control.md states the guarantees; src/testing/contract/gates.ts proves them):
   *
   * - Concurrency first: when `limit` other messages of the key hold a slot (started, lease
   *   live), the message is parked: out of the queue, counted as delayed, and made ready again
   *   (in priority order) when a slot of its key frees up — a holder acked, failed, retried or
   *   released, or its lease requeued after it lapsed.
   * - Then the rate: when the window (now − perMs, now] already holds `limit` starts (or due
   *   reservations), the message is delayed until the time {@link reserveAt} reserves for it, and
   *   a start at that time is booked, so a backlog over the limit is spread over the windows it
   *   needs instead of all waking at once. Its own booking does not count against it; a
   *   booking that came due to a full window is rebooked at the earliest time it may start.
   * - Else it is `started`: its start time is recorded and it holds a slot until its lease ends.
   *
   * A deferred message's delivery is not counted (attempt back down, as with `release`); it
   * keeps its priority. The clock is the backend's (Redis TIME, PostgreSQL now()). A rate
   * deferral answers with the booked `runAt`.
   */
  startGated(_id: string, _gates: StartGates, _delivery?: number): Promise<StartOutcome> {
    return Promise.reject(new ConfigError(`${this.constructor.name} does not support rate limits or concurrency keys (startGated)`));
  }

  // ── job lifecycle: retries, delays, revoke, results ──────────────────

  /**
   * Re-queues a message leased by this owner with new `data` (the envelope
   * of the next attempt), delayed until `runAt` (≤ now: ready at once), its
   * delivery count reset to 0. Fenced like ack (by `delivery`, when given): false when the
   * lease was lost.
   */
  abstract retry(id: string, data: string, runAt: number, delivery?: number): Promise<boolean>;

  /**
   * Makes delayed messages whose `runAt` has come ready (and wakes blocked
   * readers); resolves with how many. Safe to call from every consumer at once.
   */
  abstract promoteDue(): Promise<number>;

  /** Deletes a message that is ready or delayed — not leased, not failed (revoke). True when it was deleted. */
  abstract remove(id: string): Promise<boolean>;

  /**
   * Stores result records (overwriting any for the same job id); each expires after its ttlMs.
   * `messageIds`, when given, names the message each record belongs to (same order): a queue
   * made of several (a consumer's `queues`) stores each record where its message came from.
   * A single queue ignores it.
   *
   * `deliveries`, when given with `messageIds`, fences each record like an ack: it is written
   * only while that delivery of its message holds the lease (this owner, not expired), and
   * skipped otherwise, so a late result of an old delivery never overwrites a newer one.
   */
  abstract setResults(records: readonly ResultRecord[], messageIds?: readonly string[], deliveries?: readonly number[]): Promise<void>;

  /**
   * Stores `results` (fenced as setResults) and then acks `ids` (as ackBatch): a job's result
   * exists once its message is gone. The consumer's ack batcher sends each flush through here.
   * This default is two calls, in that order; a backend that can do both in one round trip
   * (RedisQueue: one script) overrides it, keeping the order and the fences. @internal
   */
  ackWithResults(
    ids: readonly string[],
    deliveries: readonly number[],
    results: readonly ResultRecord[],
    resultIds: readonly string[],
    resultDeliveries: readonly number[],
  ): Promise<string[]> {
    if (results.length === 0) return this.ackBatch(ids, deliveries);
    return this.setResults(results, resultIds, resultDeliveries).then(() => this.ackBatch(ids, deliveries));
  }

  /** The result record stored for a job id; null when there is none or it expired. */
  abstract getResult(jobId: string): Promise<string | null>;

  // ── job control and queue events (./control.ts says how they fit) ────

  /**
   * Cancels message `id` of job `jobId`: deletes it when it has not started ('revoked'), marks it
   * when a consumer holds it ('signalled'), false when it is gone. A backend without marks only
   * revokes: this default.
   */
  async cancel(id: string, _jobId: string): Promise<CancelOutcome> {
    return (await this.remove(id)) ? 'revoked' : false;
  }

  /** Cancel marks on this owner's leases, and whether any events listener is registered. */
  async control(): Promise<QueueControl> {
    return NO_CONTROL;
  }

  /** Registers (or refreshes) events listener `listenerId` for LISTENER_TTL_MS; resolves with the log's last sequence number. */
  registerListener(_listenerId: string): Promise<number> {
    return Promise.reject(new ConfigError(`${this.constructor.name} does not support queue events (registerListener)`));
  }

  /** Removes events listener `listenerId`. */
  async unregisterListener(_listenerId: string): Promise<void> {}

  /**
   * Appends events to the queue's log (each gets the next sequence number), keeping the last
   * MAX_EVENTS. `messageIds` routes each event as setResults' does.
   */
  async publishEvents(_events: readonly string[], _messageIds?: readonly string[]): Promise<void> {}

  /** Up to `max` (≤ MAX_EVENTS_PER_READ) events with a sequence number above `after`. */
  readEvents(_after: number, _max: number): Promise<EventPage> {
    return Promise.reject(new ConfigError(`${this.constructor.name} does not support queue events (readEvents)`));
  }

  // ── the consumer registry (what a dashboard shows) ──────────────────

  /**
   * Records consumer `consumerId`'s state (JSON text) as of now; it counts as live for CONSUMER_TTL_MS.
   * `counts` (each for this queue) are added to the queue's throughput history, in the same write.
   */
  async heartbeat(_consumerId: string, _state: string, _counts: readonly ThroughputCount[] = []): Promise<void> {}

  /** Removes consumer `consumerId` (it stopped). */
  async forgetConsumer(_consumerId: string): Promise<void> {}

  /** The live consumers of this queue (heartbeat within CONSUMER_TTL_MS), oldest id first. */
  async consumers(): Promise<ConsumerRecord[]> {
    return [];
  }

  /**
   * Job `jobId`'s message, if it is among the first `limit` waiting messages (in claim order) or the
   * first `limit` delayed ones (soonest first; memory: in write order); null otherwise. It looks at
   * each message's head for the job id (no index by job id: that would be a write per job), so it is
   * for a dashboard, not for the job path. Leased and failed messages are not looked at.
   */
  async findJob(_jobId: string, _limit: number): Promise<FoundMessage | null> {
    return null;
  }

  /** The throughput the consumers reported, per minute, of the last THROUGHPUT_WINDOW_MS, oldest first; minutes with nothing reported are absent. */
  async throughput(): Promise<ThroughputBucket[]> {
    return [];
  }

  /**
   * Blocking backends: resolves when a message may be ready, after at most
   * `timeoutMs`, or at once when `signal` aborts. Polling backends do not
   * override it (the reader backs off instead).
   */
  waitForMessages(_timeoutMs: number, _signal: AbortSignal): Promise<void> {
    return Promise.resolve();
  }
}

const NO_CONTROL: QueueControl = Object.freeze({ cancels: Object.freeze([]) as never, listening: false });

// ── arguments checked on every call ──────────────────────────────────────
// By hand with the shared predicates, not a zod parse: a write runs them each
// time (validation of options happens once, in the constructor). Only a
// failure builds a message.

function where(queue: BaseQueue, method: string): string {
  return `${queue.constructor.name}.${method}`;
}

/** A write's `runAt`: absent (undefined), or a time in ms since the epoch. @internal */
export function checkWriteRunAt(runAt: unknown, queue: BaseQueue, method: string): number | undefined {
  if (runAt === undefined) return undefined;
  if (!isEpochMs(runAt)) throw invalidOption(where(queue, method), 'runAt', runAt, EXPECTED.epochMs);
  return runAt;
}

/** retry()'s `runAt`: required, a time in ms since the epoch. @internal */
export function checkRetryRunAt(runAt: unknown, queue: BaseQueue): number {
  if (!isEpochMs(runAt)) throw invalidOption(where(queue, 'retry'), 'runAt', runAt, EXPECTED.epochMs);
  return runAt;
}

/** writeUnique()'s slot `ttlMs`. @internal */
export function checkSlotTtl(ttlMs: unknown, queue: BaseQueue): number {
  if (!isPositiveMillis(ttlMs)) throw invalidOption(where(queue, 'writeUnique'), 'ttlMs', ttlMs, EXPECTED.positiveMillis);
  return ttlMs;
}

/** setResults()'s argument is an array. @internal */
export function checkResultList(records: unknown, queue: BaseQueue): asserts records is readonly ResultRecord[] {
  // The value is not shown: a record is a command's result.
  if (!Array.isArray(records)) throw new ConfigError(`${where(queue, 'setResults')}: records must be an array of { jobId, record, ttlMs }`);
}

/** Result record #i of setResults(). The record's text is never shown, only its type (it is a command's result). @internal */
export function checkResultRecord(entry: unknown, i: number, queue: BaseQueue): ResultRecord {
  const r = (entry ?? {}) as { jobId?: unknown; record?: unknown; ttlMs?: unknown };
  if (!isNonEmptyString(r.jobId)) throw invalidOption(where(queue, 'setResults'), `records[${i}].jobId`, r.jobId, EXPECTED.nonEmptyString);
  if (typeof r.record !== 'string') {
    throw new ConfigError(`${where(queue, 'setResults')}: invalid records[${i}].record (job ${r.jobId}): must be a string, got ${typeof r.record}`);
  }
  if (!isPositiveMillis(r.ttlMs)) throw invalidOption(where(queue, 'setResults'), `records[${i}].ttlMs`, r.ttlMs, EXPECTED.positiveMillis);
  return entry as ResultRecord;
}
