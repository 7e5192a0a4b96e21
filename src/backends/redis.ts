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
 * Connections: producers fail fast (a command waits at most a reconnect
 * attempt, ~1 s, then rejects with QueueConnectionError); the caller (the
 * reader) retries. An outage is reported once through `onWarning`, and so is
 * its end. The password never reaches a message, a warning or util.inspect.
 */
import { inspect } from 'node:util';
import { Redis, type RedisOptions } from 'ioredis';
import { parseQueueUrl, redactText, redactUrl } from '../config.js';
import { ConfigError, QueueConnectionError, TaskmillError } from '../errors.js';
import { BaseQueue, validateQueueName, type FailedMessage, type QueueMessage, type QueueOptions, type QueueStats } from './base.js';
import {
  SCRIPTS,
  SCRIPT_KEY_COUNT,
  decodeText,
  encodeText,
  encodedLength,
  flushedKeys,
  keyOf,
  queueKeys,
  type ScriptName,
} from './redis-scripts.js';

export interface RedisQueueOptions extends QueueOptions {
  /** First part of every key (`PREFIX:{name}:…`). Default 'taskmill'; same rules as a queue name. */
  prefix?: string;
  /** RedisBlockingQueue: longest single blocking wait on the server. Default 5000 ms. */
  blockTimeoutMs?: number;
  /** Longest wait for a TCP connection (and for the first connection on open()). Default 5000 ms. */
  connectTimeoutMs?: number;
  /** A command without a reply after this long rejects (a hung server or network). Default 10 000 ms. */
  commandTimeoutMs?: number;
}

/** How long a command waits for a dropped connection to come back before it fails. */
const OUTAGE_WAIT_MS = 1000;
/** Messages (and bytes) per write script call: keeps each request and script run small. */
const WRITE_CHUNK_COUNT = 1000;
const WRITE_CHUNK_BYTES = 8 * 1024 * 1024;

type Arg = string | Buffer | number;
type ScriptFn = (...args: Arg[]) => Promise<unknown>;

interface RedisTarget {
  options: RedisOptions;
  /** The URL with its password replaced by ***. */
  shown: string;
  /** Strings to scrub from any driver text. */
  secrets: string[];
}

/** Turns `redis://[user][:password@]host[:port][/db]` (or rediss://, or `host:port:db`) into ioredis options. */
export function redisTarget(url: string): RedisTarget {
  const parsed = parseQueueUrl(url);
  if (parsed.kind !== 'redis') {
    throw new ConfigError(`queue URL "${redactUrl(url)}" is not a Redis URL: use redis://host:port/db, rediss://… or host:port:db`);
  }
  const shown = redactUrl(parsed.url);
  const u = new URL(parsed.url);
  const unknown = [...u.searchParams.keys()].filter((key) => key !== 'blocking');
  if (unknown.length > 0) {
    throw new ConfigError(`queue URL "${shown}": unsupported parameter(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')} (only blocking=true|false)`);
  }
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = u.port === '' ? 6379 : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`queue URL "${shown}": invalid port`);
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d{1,5}$/.test(dbText)) {
    throw new ConfigError(`queue URL "${shown}": the path must be a database number (redis://host:port/0)`);
  }
  const options: RedisOptions = { host, port, db: dbText === '' ? 0 : Number(dbText) };
  const username = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  // redis://secret@host (no colon) is the legacy password-only form.
  if (password) {
    options.password = password;
    if (username) options.username = username;
  } else if (username) {
    options.password = username;
  }
  if (u.protocol === 'rediss:') options.tls = {};
  const secrets = [password, u.password, password ? '' : username, password ? '' : u.username].filter((s) => s.length > 0);
  return { options, shown, secrets };
}

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  const ms = value ?? fallback;
  if (!Number.isFinite(ms) || ms < 1) throw new ConfigError(`invalid ${name} ${String(value)}: must be a number of milliseconds >= 1`);
  return Math.ceil(ms);
}

function checkData(data: unknown): string {
  if (typeof data !== 'string') throw new ConfigError(`message data must be a string, got ${typeof data}`);
  return data;
}

function checkCount(what: string, n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`invalid ${what} ${String(n)}: must be an integer >= 0`);
  return n;
}

function checkIds(ids: readonly string[]): string[] {
  if (!Array.isArray(ids)) throw new ConfigError('ids must be an array of message id strings');
  for (const id of ids) if (typeof id !== 'string') throw new ConfigError(`message ids must be strings, got ${typeof id}`);
  return ids as string[];
}

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

export class RedisQueue extends BaseQueue {
  readonly prefix: string;
  protected readonly blockTimeoutMs: number;
  protected readonly connectTimeoutMs: number;
  protected readonly commandTimeoutMs: number;
  /** All keys of this queue, in KEY_ROLES order. */
  protected readonly keys: readonly string[];
  readonly #target: RedisTarget;
  #client: Redis | null = null;
  #readyWait: Promise<void> | null = null;
  #policyCheck: Promise<void> | null = null;
  #closed = false;
  #outage = false;
  #everReady = false;

  constructor(url: string, options: RedisQueueOptions = {}) {
    super(options);
    this.#target = redisTarget(url);
    this.prefix = validateQueueName(options.prefix ?? 'taskmill', 'redis key prefix');
    this.blockTimeoutMs = positiveMs('blockTimeoutMs', options.blockTimeoutMs, 5000);
    this.connectTimeoutMs = positiveMs('connectTimeoutMs', options.connectTimeoutMs, 5000);
    this.commandTimeoutMs = positiveMs('commandTimeoutMs', options.commandTimeoutMs, 10_000);
    this.keys = queueKeys(this.prefix, this.name);
  }

  // ── connection ────────────────────────────────────────────────────────

  /** `redis queue "name" at redis://user:***@host:port/db` — safe for logs and errors. */
  protected describe(): string {
    return `redis queue "${this.name}" at ${this.#target.shown}`;
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  /** Scrubs the password out of any text a driver produced. */
  protected redact(message: string): string {
    return redactText(message, this.#target.secrets);
  }

  /** A new connection with this queue's target; `overrides` tune it (the blocking connection). */
  protected createConnection(overrides: RedisOptions, onError: (error: Error) => void): Redis {
    const client = new Redis({
      ...this.#target.options,
      lazyConnect: true,
      connectTimeout: this.connectTimeoutMs,
      connectionName: `taskmill:${this.prefix}:${this.name}`,
      ...overrides,
    });
    // Without a listener ioredis prints every connection error to the console.
    client.on('error', onError);
    return client;
  }

  #connection(): Redis {
    if (this.#client) return this.#client;
    const client = this.createConnection(
      {
        // Producers fail fast: a command queued while disconnected is rejected after one reconnect attempt.
        maxRetriesPerRequest: 1,
        retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000) + Math.floor(Math.random() * 100),
        commandTimeout: this.commandTimeoutMs,
      },
      (error) => this.#noteError(error),
    );
    client.on('ready', () => this.#noteReady());
    for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys: SCRIPT_KEY_COUNT, lua });
    this.#client = client;
    return client;
  }

  #noteError(error: Error): void {
    if (this.#closed || this.#outage) return;
    this.#outage = true;
    const what = this.#everReady ? 'connection lost' : 'cannot connect';
    this.warn(`${this.describe()}: ${what} (${this.redact(error.message)}); commands fail with QueueConnectionError until it is back`);
  }

  #noteReady(): void {
    this.#everReady = true;
    if (!this.#outage || this.#closed) return;
    this.#outage = false;
    this.warn(`${this.describe()}: connection restored`);
  }

  /** The connection once ready; waits for a connect or one reconnect attempt, then fails fast. */
  async #ready(): Promise<Redis> {
    if (this.#closed) throw new QueueConnectionError(`${this.describe()} is closed`);
    const client = this.#connection();
    if (client.status !== 'ready') {
      if (client.status === 'wait') client.connect().catch(() => {});
      this.#readyWait ??= this.#waitReady(client).finally(() => {
        this.#readyWait = null;
      });
      await this.#readyWait;
    }
    this.#policyCheck ??= this.#checkEvictionPolicy(client);
    return client;
  }

  /** Resolves on 'ready'; rejects on the next connection error, on close, or after a short wait. */
  #waitReady(client: Redis): Promise<void> {
    const limitMs = this.#everReady ? Math.min(OUTAGE_WAIT_MS, this.connectTimeoutMs) : this.connectTimeoutMs;
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('error', onError);
        client.off('end', onEnd);
      };
      const onReady = () => {
        cleanup();
        resolve();
      };
      const onError = (error: Error) => {
        cleanup();
        reject(error);
      };
      const onEnd = () => onError(new Error('connection closed'));
      const timer = setTimeout(() => onError(new Error(`not connected after ${limitMs} ms`)), limitMs);
      client.once('ready', onReady);
      client.once('error', onError);
      client.once('end', onEnd);
    });
  }

  /** Warns once when the server may evict keys: an evicted lease or message is a lost job. */
  async #checkEvictionPolicy(client: Redis): Promise<void> {
    try {
      const reply = (await client.call('CONFIG', 'GET', 'maxmemory-policy')) as unknown[];
      const policy = reply?.[1] === undefined ? undefined : text(reply[1]);
      if (policy !== undefined && policy !== 'noeviction') {
        this.warn(
          `${this.describe()}: maxmemory-policy is "${policy}"; Redis may evict queue keys and lose jobs when memory runs out — set it to "noeviction"`,
        );
      }
    } catch {
      // CONFIG is often disabled on managed Redis; nothing to check then.
    }
  }

  /** Runs `fn` on a ready connection; any failure becomes a QueueConnectionError with a redacted message. */
  protected async run<T>(what: string, fn: (client: Redis) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.#ready());
    } catch (error) {
      throw this.connectionError(what, error);
    }
  }

  protected connectionError(what: string, error: unknown): TaskmillError {
    if (error instanceof TaskmillError) return error;
    const message = this.redact(error instanceof Error ? error.message : String(error));
    // A fresh cause: ioredis errors carry the command's arguments (payloads) and options.
    const cause = new Error(message);
    cause.name = error instanceof Error ? error.name : 'Error';
    return new QueueConnectionError(`${what} on ${this.describe()} failed: ${message}`, { cause });
  }

  protected script(what: string, name: ScriptName, args: Arg[], buffers = false): Promise<unknown> {
    return this.run(what, (client) => {
      const fn = (client as unknown as Record<string, ScriptFn>)[buffers ? `${name}Buffer` : name]!;
      return fn.call(client, ...this.keys, ...args);
    });
  }

  override async open(): Promise<void> {
    await this.run('open', async () => {});
    await this.#policyCheck;
  }

  override async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const client = this.#client;
    this.#client = null;
    if (!client) return;
    if (client.status === 'ready') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([client.quit().catch(() => {}), new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]);
      clearTimeout(timer);
    }
    client.disconnect();
  }

  // ── the queue ─────────────────────────────────────────────────────────

  async write(data: string): Promise<string> {
    const ids = (await this.script('write', 'tmWrite', [encodeText(checkData(data))])) as string[];
    return ids[0]!;
  }

  /** Appends several messages; resolves with their ids in order. Atomic per chunk of ≤ 1000 messages / 8 MiB. */
  async writeBatch(datas: readonly string[]): Promise<string[]> {
    const encoded = datas.map((data) => encodeText(checkData(data)));
    const chunks: Arg[][] = [];
    let chunk: Arg[] = [];
    let bytes = 0;
    for (const value of encoded) {
      const size = encodedLength(value);
      if (chunk.length > 0 && (chunk.length >= WRITE_CHUNK_COUNT || bytes + size > WRITE_CHUNK_BYTES)) {
        chunks.push(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(value);
      bytes += size;
    }
    if (chunk.length > 0) chunks.push(chunk);
    // Sent back to back on one connection: one round trip's worth of latency, in order.
    const replies = await Promise.all(chunks.map((args) => this.script('writeBatch', 'tmWrite', args)));
    return (replies as string[][]).flat();
  }

  async readBatch(max: number): Promise<QueueMessage[]> {
    if (checkCount('batch size', max) === 0) return [];
    const flat = (await this.script('readBatch', 'tmRead', [this.owner, max, this.leaseMs], true)) as [Buffer, Buffer, number][number][];
    const out: QueueMessage[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      out.push({ id: text(flat[i]), data: decodeText(flat[i + 1] as Buffer), attempt: Number(flat[i + 2]) });
    }
    return out;
  }

  async ackBatch(ids: readonly string[]): Promise<string[]> {
    if (checkIds(ids).length === 0) return [];
    return (await this.script('ackBatch', 'tmAck', [this.owner, ...ids])) as string[];
  }

  async release(ids: readonly string[]): Promise<void> {
    if (checkIds(ids).length === 0) return;
    await this.script('release', 'tmRelease', [this.owner, ...ids]);
  }

  async extend(ids: readonly string[]): Promise<string[]> {
    if (checkIds(ids).length === 0) return [];
    return (await this.script('extend', 'tmExtend', [this.owner, this.leaseMs, ...ids])) as string[];
  }

  async fail(id: string, error: string): Promise<boolean> {
    checkIds([id]);
    return (await this.script('fail', 'tmFail', [this.owner, id, encodeText(String(error))])) === 1;
  }

  async reclaim(): Promise<number> {
    return Number(await this.script('reclaim', 'tmReclaim', []));
  }

  async failed(limit = 100): Promise<FailedMessage[]> {
    if (checkCount('limit', limit) === 0) return [];
    const flat = (await this.script('failed', 'tmFailed', [limit], true)) as (Buffer | number)[];
    const out: FailedMessage[] = [];
    for (let i = 0; i + 3 < flat.length; i += 4) {
      const info = flat[i + 3] as Buffer;
      const colon = info.indexOf(0x3a);
      out.push({
        id: text(flat[i]),
        data: decodeText(flat[i + 1] as Buffer),
        attempt: Number(flat[i + 2]),
        error: decodeText(info.subarray(colon + 1)),
        failedAt: new Date(Number(info.subarray(0, colon).toString('latin1'))),
      });
    }
    return out;
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
    const [ready, leased, failed] = (await this.script('stats', 'tmStats', [])) as number[];
    return { ready: Number(ready), leased: Number(leased), failed: Number(failed) };
  }

  async length(): Promise<number> {
    return this.run('length', (client) => client.zcard(keyOf(this.keys, 'ready')));
  }

  async flush(): Promise<void> {
    await this.run('flush', (client) => client.del(...flushedKeys(this.keys)));
  }

  async writeUnique(key: string, data: string, ttlMs: number): Promise<string | null> {
    if (typeof key !== 'string' || key === '') throw new ConfigError('slot key must be a non-empty string');
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new ConfigError(`invalid slot ttlMs ${String(ttlMs)}: must be a number of milliseconds > 0`);
    const id = await this.script('writeUnique', 'tmWriteUnique', [encodeText(key), Math.ceil(ttlMs), encodeText(checkData(data))]);
    return id === null ? null : text(id);
  }

  // ── no secret in inspect / JSON ───────────────────────────────────────

  toJSON(): Record<string, unknown> {
    return { type: this.constructor.name, name: this.name, url: this.#target.shown, prefix: this.prefix, blocking: this.blocking, owner: this.owner };
  }

  [inspect.custom](): string {
    return `${this.constructor.name} ${inspect(this.toJSON(), { breakLength: Infinity })}`;
  }
}

/** How long past the server-side block timeout a blocking call may take before its socket counts as hung. */
function watchdogMargin(waitMs: number): number {
  return Math.min(1000, Math.max(250, waitMs / 2));
}

/**
 * Blocks on the server instead of polling. A dedicated connection waits on
 * the queue's wake-up key (BLPOP, finite timeout), never on the payload: the
 * wake-up is only a hint, and the reader then claims messages with a lease as
 * usual. A watchdog replaces the blocking connection when its call outlives
 * the timeout (a hung socket, a SIGSTOPped server); an abort drops it so a
 * shutdown never waits for the server.
 */
export class RedisBlockingQueue extends RedisQueue {
  override readonly blocking: boolean = true;
  #blocker: Redis | null = null;
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
      }, waitMs + watchdogMargin(waitMs));
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
          const backoffMs = Math.min(100 * 2 ** Math.min(this.#failures++, 10), this.blockTimeoutMs);
          pause = setTimeout(finish, Math.max(0, Math.min(backoffMs, waitMs - (Date.now() - startedAt))));
        },
      );
    });
  }

  async #blockOnce(waitMs: number): Promise<void> {
    const blocker = (this.#blocker ??= this.createConnection(
      {
        // Never reconnect or queue: on any trouble this connection is dropped and a new one made for the next wait.
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        autoResendUnfulfilledCommands: false,
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

  #dropBlocker(which: Redis | null = this.#blocker): void {
    if (!which) return;
    if (this.#blocker === which) this.#blocker = null;
    which.disconnect();
  }

  override async close(): Promise<void> {
    this.#dropBlocker();
    await super.close();
  }
}
