/**
 * RedisQueue and RedisBlockingQueue: many consumers on many hosts sharing one
 * Redis, at-least-once.
 *
 * A read claims messages into a lease (owner token + server-clock deadline)
 * in one Lua script; ack/fail/extend/release are fenced by that lease; a
 * lease that expires is taken back by the next read. Nothing is ever popped
 * off the server without a lease, so a reply lost with a dropped connection
 * loses no message (it comes back when the lease expires).
 *
 * Connections (redis-connection.ts): producers fail fast (a command waits
 * at most a reconnect attempt, ~1 s, then rejects with QueueConnectionError);
 * the caller (the reader) retries. An outage is reported once through
 * `onWarning`, and so is its end. The password never reaches a message, a
 * warning or util.inspect.
 */
import { inspect } from 'node:util';
import { ConfigError } from '../../shared/errors.js';
import { parseOptions } from '../../shared/options.js';
import {
  BaseQueue,
  checkKeyTtl,
  checkPriority,
  checkUniqueKey,
  checkRetryRunAt,
  checkSlotTtl,
  checkStartGates,
  checkWriteRunAt,
  type WriteOnceOptions,
  type WriteOnceResult,
  type FailedMessage,
  type QueueMessage,
  type QueueStats,
  type ResultRecord,
  type StartDecision,
  type StartOutcome,
  type StartGates,
  type WriteOptions,
} from '../base.js';
import {
  FLUSH_LOGS_PER_CALL,
  PROMOTE_PER_CALL,
  RESULTS_PURGED_PER_SET,
  SCRIPT_KEY_COUNT,
  defineScripts,
  keyOf,
  queueKeys,
  controlKeys,
  type ScriptName,
} from './scripts.js';
import { RedisConnection } from './connection.js';
import type { RedisClient } from './cluster.js';
import { SlotHolders, startGatedCall } from './gates.js';
import { ReadCoalescer, type PendingRead } from './read-coalescer.js';
import { decodeConsumers, decodeControl, decodeEventPage } from './control.js';
import {
  CONSUMER_TTL_MS,
  LISTENER_TTL_MS,
  MAX_EVENTS,
  checkCancel,
  checkEventRead,
  checkHeartbeat,
  checkFindJob,
  jobNeedle,
  JOB_HEAD_CHARS,
  throughputSince,
  checkListenerId,
  type CancelOutcome,
  type ConsumerRecord,
  type FoundMessage,
  type ThroughputBucket,
  type ThroughputCount,
  type EventPage,
  type QueueControl,
} from '../control.js';
import { redisOptionsSchema, type RedisQueueOptions } from './options.js';
import {
  argChunks,
  checkClusterTarget,
  leaseArgs,
  tokenArg,
  checkCount,
  checkData,
  checkIds,
  decodeFailed,
  decodeMessages,
  decodeText,
  encodeText,
  redisTarget,
  replyText,
  resultArgs,
  type Arg,
  type RedisTarget,
} from './wire.js';

type ScriptFn = (...args: Arg[]) => Promise<unknown>;

/** @internal */
export { REDIS_DEFAULTS } from './options.js';
export type { RedisQueueOptions } from './options.js';

export class RedisQueue extends BaseQueue {
  readonly prefix: string;
  /** On a Redis Cluster (cluster.ts). */
  readonly cluster: boolean;
  protected readonly blockTimeoutMs: number;
  /** Every call's deadline: past it, its connection is replaced. */
  protected readonly commandTimeoutMs: number;
  /** All keys of this queue, in KEY_ROLES order. */
  protected readonly keys: readonly string[];
  /** @internal (its type is ioredis's: kept out of the published declarations, so an app type-checks without ioredis's own dev types) */
  protected readonly connection: RedisConnection;
  readonly #target: RedisTarget;
  /** Ids this instance started under a concurrency gate: only their ack frees a slot (tmAckGated). */
  readonly #slots = new SlotHolders();
  readonly #control: ReturnType<typeof controlKeys>;
  readonly #reads = new ReadCoalescer((read) => this.#readAlone(read));

  constructor(url: string, options: RedisQueueOptions = {}) {
    super(options);
    this.#target = redisTarget(url);
    const own = parseOptions(redisOptionsSchema, { ...options, prefix: options.prefix ?? this.#target.prefix }, new.target.name);
    this.prefix = own.prefix;
    this.blockTimeoutMs = Math.ceil(own.blockTimeoutMs);
    this.commandTimeoutMs = Math.ceil(own.commandTimeoutMs);
    this.keys = queueKeys(this.prefix, this.name);
    this.#control = controlKeys(this.prefix, this.name);
    this.cluster = checkClusterTarget(this.#target, own.cluster);
    this.connection = new RedisConnection({
      target: this.#target,
      cluster: this.cluster,
      label: this.describe(),
      connectionName: `taskmill:${this.prefix}:${this.name}`,
      connectTimeoutMs: Math.ceil(own.connectTimeoutMs),
      commandTimeoutMs: this.commandTimeoutMs,
      warn: (message) => this.warn(message),
      setup: defineScripts,
    });
  }

  // ── connection ────────────────────────────────────────────────────────

  /** `redis queue "name" at redis://user:***@host:port/db` — safe for logs and errors. */
  protected describe(): string {
    return `redis queue "${this.name}" at ${this.#target.shown}`;
  }

  protected get closed(): boolean {
    return this.connection.closed;
  }

  /** Runs `fn` on a ready connection; any failure becomes a QueueConnectionError with a redacted message. @internal */
  protected run<T>(what: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    return this.connection.run(what, fn);
  }

  /** @internal */
  protected script(what: string, name: ScriptName, args: Arg[], buffers = false): Promise<unknown> {
    return this.run(what, (client) => {
      const fn = (client as unknown as Record<string, ScriptFn>)[buffers ? `${name}Buffer` : name]!;
      return fn.call(client, ...this.keys, ...args);
    });
  }

  /** A script of EXTRA_KEY_SCRIPTS (scripts.ts): the key count, the queue's keys, then `extraKeys` (rate logs), then `args`. @internal */
  protected scriptWithKeys(what: string, name: ScriptName, extraKeys: readonly string[], args: Arg[]): Promise<unknown> {
    return this.run(what, (client) => {
      const fn = (client as unknown as Record<string, ScriptFn>)[name]!;
      return fn.call(client, SCRIPT_KEY_COUNT + extraKeys.length, ...this.keys, ...extraKeys, ...args);
    });
  }

  override open(): Promise<void> {
    return this.connection.open();
  }

  override close(): Promise<void> {
    this.#slots.clear();
    return this.connection.close();
  }

  // ── the queue ─────────────────────────────────────────────────────────

  /** Appends a message; with a `runAt` ahead of the server clock it is delayed until promoteDue() finds it due. */
  override async write(data: string, options?: WriteOptions): Promise<string> {
    const runAt = checkWriteRunAt(options?.runAt, this, 'write') ?? 0;
    const priority = checkPriority(options?.priority);
    const ids = (await this.script('write', 'tmWrite', [runAt, priority, encodeText(checkData(data))])) as string[];
    return ids[0]!;
  }

  /**
   * Appends several messages (all delayed until `options.runAt` when that is
   * ahead); resolves with their ids in order. Atomic per chunk of ≤ 1000 messages / 8 MiB.
   */
  override async writeBatch(datas: readonly string[], options?: WriteOptions): Promise<string[]> {
    const runAt = checkWriteRunAt(options?.runAt, this, 'writeBatch') ?? 0;
    const priority = checkPriority(options?.priority);
    const chunks = argChunks(datas.map((data) => [encodeText(checkData(data))]));
    // Sent back to back on one connection: one round trip's worth of latency, in order.
    const replies = await Promise.all(chunks.map((args) => this.script('writeBatch', 'tmWrite', [runAt, priority, ...args])));
    return (replies as string[][]).flat();
  }

  /** Sent at the end of the turn, with an ack flush of the same turn if there is one (read-coalescer.ts). */
  async readBatch(max: number): Promise<QueueMessage[]> {
    if (checkCount('batch size', max) === 0) return [];
    return this.#reads.read(max);
  }

  #readAlone(read: PendingRead): void {
    const delivery = this.nextDelivery();
    this.script('readBatch', 'tmRead', [this.owner, read.max, this.leaseMs, delivery], true).then(
      (flat) => read.resolve(decodeMessages(flat as unknown[], delivery)),
      (error: unknown) => read.reject(error),
    );
  }

  async ackBatch(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
    if (checkIds(ids).length === 0) return [];
    const mask = this.#slots.ackMask(ids);
    if (mask === null) return this.#ack(leaseArgs(ids, deliveries), ids.length, []);
    const refused = (await this.script('ackBatch', 'tmAckGated', [this.owner, mask, ...leaseArgs(ids, deliveries)])) as string[];
    this.#slots.forget(ids);
    return refused;
  }

  /**
   * tmAck of `count` {id, token} pairs and result records' arguments; with a read waiting in this
   * turn, tmAckRead: both in one script, and a failure fails both (the read is retried by the
   * reader, the flush by the ack batcher).
   */
  async #ack(pairs: Arg[], count: number, results: Arg[]): Promise<string[]> {
    const read = this.#reads.take();
    if (read === null) return (await this.script('ackBatch', 'tmAck', [this.owner, count, ...pairs, ...results])) as string[];
    const delivery = this.nextDelivery();
    try {
      const [refused, flat] = (await this.script(
        'ackBatch and readBatch',
        'tmAckRead',
        [this.owner, read.max, this.leaseMs, delivery, count, ...pairs, ...results],
        true,
      )) as [unknown[], unknown[]];
      read.resolve(decodeMessages(flat, delivery));
      return refused.map(replyText);
    } catch (error) {
      read.reject(error);
      throw error;
    }
  }

  /**
   * The results and the acks of a flush in one tmAck call (tmAckRead with a read of this turn),
   * one round trip instead of two: the script checks every fence first, then stores the results,
   * then deletes the acked messages, so a result exists once its message is gone. Results over
   * one script call's size, or acks that free a concurrency slot, go the two-call way.
   */
  override async ackWithResults(
    ids: readonly string[],
    deliveries: readonly number[],
    results: readonly ResultRecord[],
    resultIds: readonly string[],
    resultDeliveries: readonly number[],
  ): Promise<string[]> {
    if (results.length === 0) return this.ackBatch(ids, deliveries);
    checkIds(ids);
    const chunks = argChunks(resultArgs(results, this, resultIds, resultDeliveries));
    if (chunks.length !== 1 || this.#slots.ackMask(ids) !== null) return super.ackWithResults(ids, deliveries, results, resultIds, resultDeliveries);
    return this.#ack(leaseArgs(ids, deliveries), ids.length, chunks[0]!);
  }

  async release(ids: readonly string[], deliveries?: readonly number[]): Promise<void> {
    if (checkIds(ids).length === 0) return;
    await this.script('release', 'tmRelease', [this.owner, ...leaseArgs(ids, deliveries)]);
    this.#slots.forget(ids);
  }

  async extend(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
    if (checkIds(ids).length === 0) return [];
    return (await this.script('extend', 'tmExtend', [this.owner, this.leaseMs, ...leaseArgs(ids, deliveries)])) as string[];
  }

  async fail(id: string, error: string, delivery?: number): Promise<boolean> {
    checkIds([id]);
    const failed = (await this.script('fail', 'tmFail', [this.owner, id, encodeText(String(error)), tokenArg(delivery)])) === 1;
    this.#slots.forget([id]);
    return failed;
  }

  async reclaim(): Promise<number> {
    return Number(await this.script('reclaim', 'tmReclaim', []));
  }

  async failed(limit = 100): Promise<FailedMessage[]> {
    if (checkCount('limit', limit) === 0) return [];
    return decodeFailed((await this.script('failed', 'tmFailed', [limit], true)) as unknown[]);
  }

  async requeueFailed(ids?: readonly string[]): Promise<number> {
    if (ids !== undefined && checkIds(ids).length === 0) return 0;
    return Number(await this.script('requeueFailed', 'tmRequeueFailed', ids === undefined ? ['all'] : ['ids', ...ids]));
  }

  async purgeFailed(ids?: readonly string[]): Promise<number> {
    if (ids !== undefined && checkIds(ids).length === 0) return 0;
    return Number(await this.script('purgeFailed', 'tmPurgeFailed', ids === undefined ? ['all'] : ['ids', ...ids]));
  }

  async stats(): Promise<QueueStats> {
    const [ready, leased, failed, delayed] = (await this.script('stats', 'tmStats', [])) as number[];
    return { ready: Number(ready), leased: Number(leased), failed: Number(failed), delayed: Number(delayed) };
  }

  async length(): Promise<number> {
    return this.run('length', (client) => client.zcard(keyOf(this.keys, 'ready')));
  }

  /** Deletes the rate logs (a bounded number per script call), then, in the last call, everything else but `seq`. */
  async flush(): Promise<void> {
    const listed = keyOf(this.keys, 'ratelogs');
    for (;;) {
      const logs = await this.run('flush', (client) => client.zrange(listed, 0, String(FLUSH_LOGS_PER_CALL - 1)));
      // The cancel marks go with the messages; the events log and listeners stay.
      if (Number(await this.scriptWithKeys('flush', 'tmFlush', [this.#control.cancels, ...logs], [])) === 1) break;
    }
    this.#slots.clear();
  }

  async writeUnique(key: string, data: string, ttlMs: number): Promise<string | null> {
    if (typeof key !== 'string' || key === '') throw new ConfigError('slot key must be a non-empty string');
    const id = await this.script('writeUnique', 'tmWriteUnique', [encodeText(key), Math.ceil(checkSlotTtl(ttlMs, this)), encodeText(checkData(data))]);
    return id === null ? null : replyText(id);
  }

  // ── job lifecycle ─────────────────────────────────────────────────────

  override async retry(id: string, data: string, runAt: number, delivery?: number): Promise<boolean> {
    checkIds([id]);
    const args = [this.owner, id, checkRetryRunAt(runAt, this), encodeText(checkData(data)), tokenArg(delivery)];
    const retried = (await this.script('retry', 'tmRetry', args)) === 1;
    this.#slots.forget([id]);
    return retried;
  }

  /** One tmStartGated call: the decision and everything it changes are one script (see gates.ts for what stays here). */
  override async startGated(id: string, gates: StartGates, delivery?: number): Promise<StartOutcome> {
    const checked = checkStartGates(gates);
    checkIds([id]);
    const { logs, args } = startGatedCall(this.prefix, this.name, id, checked);
    const reply = replyText(await this.scriptWithKeys('startGated', 'tmStartGated', logs, [this.owner, ...args, tokenArg(delivery)]));
    // 'deferred:<ms>': deferred by the rate gate, booked for that time.
    const booked = reply.startsWith('deferred:') ? Number(reply.slice('deferred:'.length)) : undefined;
    const decision = (booked === undefined ? reply : 'deferred') as StartDecision;
    if (decision !== 'started') this.#slots.forget([id]);
    else if (checked.concurrency) this.#slots.add(id);
    return booked === undefined ? { decision } : { decision, runAt: booked };
  }

  /** Moves due delayed messages to ready in script calls of ≤ PROMOTE_PER_CALL each, so Redis is never held long. */
  override async promoteDue(): Promise<number> {
    let total = 0;
    for (;;) {
      const moved = Number(await this.script('promoteDue', 'tmPromote', [PROMOTE_PER_CALL]));
      total += moved;
      if (moved < PROMOTE_PER_CALL) return total;
    }
  }

  override async remove(id: string): Promise<boolean> {
    checkIds([id]);
    return (await this.script('remove', 'tmRemove', [id])) === 1;
  }

  // ── job control and queue events (control.ts) ─────────────────────────

  override async cancel(id: string, jobId: string): Promise<CancelOutcome> {
    checkCancel(id, jobId, this.name);
    checkIds([id]);
    // Revoke or mark; a lease lapsing (or a read) between the two scripts is seen and tried again.
    for (let turn = 0; turn < 5; turn++) {
      if (await this.remove(id)) return 'revoked';
      const marked = replyText(await this.scriptWithKeys('cancel', 'tmMark', [this.#control.cancels], [id, jobId]));
      if (marked !== 'present') return marked === 'marked' ? 'signalled' : false;
    }
    return false;
  }

  override async control(): Promise<QueueControl> {
    const { cancels, listeners } = this.#control;
    return decodeControl(await this.scriptWithKeys('control', 'tmControl', [cancels, listeners], [this.owner]));
  }

  override async registerListener(listenerId: string): Promise<number> {
    checkListenerId(listenerId, this.name);
    const { listeners, evseq } = this.#control;
    return Number(await this.scriptWithKeys('registerListener', 'tmListen', [listeners, evseq], [listenerId, LISTENER_TTL_MS]));
  }

  override async unregisterListener(listenerId: string): Promise<void> {
    await this.run('unregisterListener', (client) => client.zrem(this.#control.listeners, String(listenerId)));
  }

  override async publishEvents(events: readonly string[]): Promise<void> {
    if (events.length === 0) return;
    const { evseq, events: log } = this.#control;
    for (const chunk of argChunks(events.map((e) => [e]))) await this.scriptWithKeys('publishEvents', 'tmPublish', [evseq, log], [MAX_EVENTS, ...chunk]);
  }

  override async readEvents(after: number, max: number): Promise<EventPage> {
    checkEventRead(after, max, this.name);
    const { evseq, events } = this.#control;
    return decodeEventPage(await this.scriptWithKeys('readEvents', 'tmReadEvents', [evseq, events], [after, max]));
  }

  override async heartbeat(consumerId: string, state: string, counts: readonly ThroughputCount[] = []): Promise<void> {
    checkHeartbeat(consumerId, state, counts, this.name);
    const { consumers, consumerSeen, throughput, throughputMinutes } = this.#control;
    const args: Arg[] = [consumerId, state, throughputSince(Date.now())];
    for (const c of counts) args.push(c.minute, c.completed, c.failed);
    await this.scriptWithKeys('heartbeat', 'tmHeartbeat', [consumers, consumerSeen, throughput, throughputMinutes], args);
  }

  override async findJob(jobId: string, limit: number): Promise<FoundMessage | null> {
    checkFindJob(jobId, limit, this.name);
    const reply = (await this.script('findJob', 'tmFindJob', [jobNeedle(jobId), limit, JOB_HEAD_CHARS])) as unknown[];
    if (reply.length < 3) return null;
    return { id: String(reply[0]), data: String(reply[1]), state: reply[2] === 'delayed' ? 'delayed' : 'waiting' };
  }

  override async throughput(): Promise<ThroughputBucket[]> {
    const { throughput, throughputMinutes } = this.#control;
    const reply = (await this.scriptWithKeys('throughput', 'tmThroughput', [throughput, throughputMinutes], [throughputSince(Date.now())])) as unknown[];
    const buckets: ThroughputBucket[] = [];
    for (let i = 0; i + 2 < reply.length; i += 3) buckets.push({ minute: Number(reply[i]), completed: Number(reply[i + 1]), failed: Number(reply[i + 2]) });
    return buckets;
  }

  override async forgetConsumer(consumerId: string): Promise<void> {
    const { consumers, consumerSeen } = this.#control;
    const id = String(consumerId);
    await this.run('forgetConsumer', (client) => client.multi().zrem(consumerSeen, id).hdel(consumers, id).exec());
  }

  override async consumers(): Promise<ConsumerRecord[]> {
    const { consumers, consumerSeen } = this.#control;
    return decodeConsumers(await this.scriptWithKeys('consumers', 'tmConsumers', [consumers, consumerSeen], [CONSUMER_TTL_MS]));
  }

  override async writeOnce(key: string, data: string, options?: WriteOnceOptions): Promise<WriteOnceResult> {
    const args = [
      encodeText(checkUniqueKey(key)),
      checkWriteRunAt(options?.runAt, this, 'writeOnce') ?? 0,
      checkPriority(options?.priority),
      checkKeyTtl(options?.keyTtlMs) ?? 0,
      encodeText(checkData(data)),
    ];
    // Buffers: the holder's data comes back byte for byte (it may not be well-formed UTF-16).
    const [id, duplicate, held] = (await this.script('writeOnce', 'tmWriteOnce', args, true)) as [Buffer, number, Buffer | undefined];
    return duplicate === 1 ? { id: id.toString(), duplicate: true, data: decodeText(held!) } : { id: id.toString(), duplicate: false };
  }

  override async setResults(records: readonly ResultRecord[], messageIds?: readonly string[], deliveries?: readonly number[]): Promise<void> {
    const chunks = argChunks(resultArgs(records, this, messageIds, deliveries));
    await Promise.all(chunks.map((args) => this.script('setResults', 'tmSetResults', [RESULTS_PURGED_PER_SET, this.owner, ...args])));
  }

  override async getResult(jobId: string): Promise<string | null> {
    if (typeof jobId !== 'string' || jobId === '') throw new ConfigError('jobId must be a non-empty string');
    const record = await this.script('getResult', 'tmGetResult', [encodeText(jobId)], true);
    return record === null ? null : decodeText(record as Buffer);
  }

  // ── no secret in inspect / JSON ───────────────────────────────────────

  toJSON(): Record<string, unknown> {
    return {
      type: this.constructor.name,
      name: this.name,
      url: this.#target.shown,
      prefix: this.prefix,
      cluster: this.cluster,
      blocking: this.blocking,
      owner: this.owner,
    };
  }

  [inspect.custom](): string {
    return `${this.constructor.name} ${inspect(this.toJSON(), { breakLength: Infinity })}`;
  }
}

/**
 * Blocks on the server instead of polling. A dedicated connection waits on
 * the queue's wake-up key (BLPOP, finite timeout), never on the payload: the
 * wake-up is only a hint, and the reader then claims messages with a lease as
 * usual. A watchdog replaces the blocking connection when its call outlives
 * the wait by commandTimeoutMs (a silent path, a SIGSTOPped server): its reply
 * is as late as any command's would be then, and a slow link under that
 * deadline costs nothing. An abort drops it so a shutdown never waits for the
 * server.
 */
export class RedisBlockingQueue extends RedisQueue {
  override readonly blocking: boolean = true;
  #blocker: RedisClient | null = null;
  #failures = 0;
  #hangReported = false;

  override waitForMessages(timeoutMs: number, signal: AbortSignal): Promise<void> {
    const waitMs = Math.min(Math.floor(timeoutMs), this.blockTimeoutMs);
    if (signal.aborted || this.closed || !(waitMs > 0)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let settled = false;
      let pause: NodeJS.Timeout | undefined;
      const finish = () => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        clearTimeout(pause);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.#dropBlocker();
        finish();
      };
      const watchdog = setTimeout(() => {
        this.#dropBlocker();
        if (!this.#hangReported && !this.closed) {
          this.#hangReported = true;
          this.warn(`${this.describe()}: a blocking wait of ${waitMs} ms got no reply in time; reconnecting its connection`);
        }
        finish();
      }, waitMs + this.commandTimeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      const startedAt = Date.now();
      this.#blockOnce(waitMs).then(
        () => {
          this.#failures = 0;
          this.#hangReported = false;
          finish();
        },
        () => {
          // Connection trouble: back off (so a broken blocker cannot spin the reader), then let the reader re-read;
          // its read reports the outage as a QueueConnectionError.
          if (settled) return;
          if (this.closed) return finish();
          const backoffMs = Math.min(100 * 2 ** Math.min(this.#failures++, 10), this.blockTimeoutMs);
          pause = setTimeout(finish, Math.max(0, Math.min(backoffMs, waitMs - (Date.now() - startedAt))));
        },
      );
    });
  }

  async #blockOnce(waitMs: number): Promise<void> {
    const blocker = (this.#blocker ??= this.connection.create(
      {
        // Never reconnect or queue: on any trouble this connection is dropped and a new one made for the next wait.
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        autoResendUnfulfilledCommands: false,
        // Dropped means destroyed: a graceful close waits (up to 2 s by default) for a server that is busy
        // blocking us, and its timer would keep a stopping process alive.
        disconnectTimeout: 0,
        connectionName: `taskmill:${this.prefix}:${this.name}:blocking`,
      },
      () => {},
    ));
    try {
      if (blocker.status === 'wait') await blocker.connect();
      await blocker.blpop(keyOf(this.keys, 'wake'), waitMs / 1000);
    } catch (error) {
      this.#dropBlocker(blocker);
      throw error;
    }
  }

  #dropBlocker(which: RedisClient | null = this.#blocker): void {
    if (!which) return;
    if (this.#blocker === which) this.#blocker = null;
    which.disconnect();
  }

  override async close(): Promise<void> {
    this.#dropBlocker();
    await super.close();
  }
}
