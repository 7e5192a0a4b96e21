import type { Redis, RedisOptions } from 'ioredis';
import { ioredis } from '../drivers.js';
import { redactText } from '../../shared/config.js';
import { QueueConnectionError, TaskmillError } from '../../shared/errors.js';
import type { RedisTarget } from './wire.js';
import { isPermanentRedisError } from '../permanent-errors.js';
import { createCluster, evictionPolicies, isClusterOutage, type RedisClient } from './cluster.js';

/**
 * The command connection of one Redis queue: connected lazily, failing fast
 * while the server is away (a command waits at most a reconnect attempt,
 * ~1 s, then rejects with QueueConnectionError), reporting an outage once
 * when it starts and once when it ends, and checking maxmemory-policy once.
 * No password reaches a message or a warning.
 *
 * Every command has a deadline (commandTimeoutMs), and missing it costs the
 * connection, not only the command: a path that went silent (no reply, no
 * FIN, no RST — a NAT or firewall that forgot us) would otherwise swallow
 * every later command too, since ioredis keeps writing to the same socket.
 * ioredis's own socketTimeout destroys the socket when nothing at all came
 * back for that long; a reply that trickles in too slowly to make the
 * deadline is caught by commandTimeout, and the socket destroyed here. Either
 * way ioredis reconnects at once and work goes on on a new connection.
 */

export interface RedisConnectionOptions {
  target: RedisTarget;
  /** `redis queue "name" at redis://user:***@host:port/db` — safe for logs and errors. */
  label: string;
  /** A Redis Cluster (cluster.ts): the connections made here are Cluster clients. */
  cluster: boolean;
  /** CLIENT SETNAME of connections made here. */
  connectionName: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  warn: (message: string) => void;
  /** Called once on the command client before first use (defineCommand). */
  setup: (client: RedisClient) => void;
}

/** How long a command waits for a dropped connection to come back before it fails. */
const OUTAGE_WAIT_MS = 1000;

/** TCP keepalive's first probe after this much idle time: a backstop for idle connections (the deadlines catch busy ones). */
export const KEEPALIVE_MS = 10_000;

/** ioredis's rejection of a command past its commandTimeout. */
const COMMAND_TIMED_OUT = 'Command timed out';

export class RedisConnection {
  readonly #options: RedisConnectionOptions;
  #client: RedisClient | null = null;
  #readyWait: Promise<void> | null = null;
  #policyCheck: Promise<void> | null = null;
  #closed = false;
  #outage = false;
  #everReady = false;

  constructor(options: RedisConnectionOptions) {
    this.#options = options;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Scrubs the password out of any text a driver produced. */
  redact(message: string): string {
    return redactText(message, this.#options.target.secrets);
  }

  /** A new connection with this queue's target; `overrides` tune it (the blocking connection). */
  create(overrides: RedisOptions, onError: (error: Error) => void): RedisClient {
    const options: RedisOptions = {
      ...this.#options.target.options,
      lazyConnect: true,
      connectTimeout: this.#options.connectTimeoutMs,
      keepAlive: KEEPALIVE_MS,
      connectionName: this.#options.connectionName,
      ...overrides,
    };
    const client = this.#options.cluster ? createCluster(this.#options.target, options) : new (ioredis().Redis)(options);
    // Without a listener ioredis prints every connection error to the console.
    client.on('error', onError);
    return client;
  }

  #connection(): RedisClient {
    if (this.#client) return this.#client;
    const client = this.create(
      {
        // Producers fail fast: a command queued while disconnected is rejected after one reconnect attempt.
        maxRetriesPerRequest: 1,
        retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000) + Math.floor(Math.random() * 100),
        commandTimeout: this.#options.commandTimeoutMs,
        // Nothing received for this long while a command waits: ioredis destroys the socket and reconnects.
        socketTimeout: this.#options.commandTimeoutMs,
        // A command in flight on a lost connection fails; it is not sent again. Sent again, a read whose caller
        // already had its timeout would lease messages nobody receives (they wait out the lease), and a write
        // whose first copy did arrive would be written twice. Every caller here retries what it needs.
        autoResendUnfulfilledCommands: false,
      },
      (error) => this.#noteError(error),
    );
    client.on('ready', () => this.#noteReady());
    this.#options.setup(client);
    this.#client = client;
    return client;
  }

  #noteError(error: Error): void {
    if (this.#closed || this.#outage) return;
    this.#outage = true;
    const what = this.#everReady ? 'connection lost' : 'cannot connect';
    this.#options.warn(`${this.#options.label}: ${what} (${this.redact(error.message)}); commands fail with QueueConnectionError until it is back`);
  }

  #noteReady(): void {
    this.#everReady = true;
    if (!this.#outage || this.#closed) return;
    this.#outage = false;
    this.#options.warn(`${this.#options.label}: connection restored`);
  }

  /** The connection once ready; waits for a connect or one reconnect attempt, then fails fast. */
  async #ready(): Promise<RedisClient> {
    if (this.#closed) throw new QueueConnectionError(`${this.#options.label} is closed`);
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
  #waitReady(client: RedisClient): Promise<void> {
    const { connectTimeoutMs } = this.#options;
    const limitMs = this.#everReady ? Math.min(OUTAGE_WAIT_MS, connectTimeoutMs) : connectTimeoutMs;
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
  async #checkEvictionPolicy(client: RedisClient): Promise<void> {
    try {
      const policy = (await evictionPolicies(client)).find((p) => p !== 'noeviction');
      if (policy !== undefined) {
        this.#options.warn(
          `${this.#options.label}: maxmemory-policy is "${policy}"; Redis may evict queue keys and lose jobs when memory runs out — set it to "noeviction"`,
        );
      }
    } catch {
      // CONFIG is often disabled on managed Redis; nothing to check then.
    }
  }

  /** Runs `fn` on a ready connection; any failure becomes a QueueConnectionError with a redacted message. */
  async run<T>(what: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    let client: RedisClient | undefined;
    let stream: Redis['stream'] | undefined;
    try {
      client = await this.#ready();
      // A Cluster client has a socket per node; its nodes' socketTimeout is what replaces a silent one.
      stream = this.#options.cluster ? undefined : (client as Redis).stream;
      const result = await fn(client);
      if (this.#outage && this.#options.cluster) this.#noteReady();
      return result;
    } catch (error) {
      // A Cluster client stays 'ready' while one master is away: its commands' errors tell of the outage (cluster.ts).
      if (this.#options.cluster && isClusterOutage(error)) this.#noteError(error as Error);
      if (client && error instanceof Error && error.message === COMMAND_TIMED_OUT) this.#replace(client, stream);
      throw this.error(what, error);
    }
  }

  /**
   * A command missed its deadline: the socket is destroyed (not ended — a FIN on a silent path
   * waits for ever) and ioredis reconnects. Commands still waiting on it fail, as on any dropped
   * connection.
   */
  #replace(client: RedisClient, stream: Redis['stream'] | undefined): void {
    // Only the socket the command went out on: a newer one (already reconnected) has its own deadlines.
    if (this.#closed || client !== this.#client || !stream || (client as Redis).stream !== stream) return;
    stream.destroy(new Error(`no reply within ${this.#options.commandTimeoutMs} ms; replacing the connection`));
  }

  error(what: string, error: unknown): TaskmillError {
    if (error instanceof TaskmillError) return error;
    const message = this.redact(error instanceof Error ? error.message : String(error));
    // No cause: ioredis errors carry the command's arguments (payloads) and options.
    const code = (error as { code?: unknown } | null)?.code;
    return new QueueConnectionError(`${what} on ${this.#options.label} failed: ${message}`, {
      permanent: isPermanentRedisError(error),
      ...(typeof code === 'string' ? { driverCode: code } : {}),
    });
  }

  /** Connects (if not yet) and waits for the maxmemory-policy check. */
  async open(): Promise<void> {
    await this.run('open', async () => {});
    await this.#policyCheck;
  }

  async close(): Promise<void> {
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
    if (client.status !== 'end') client.disconnect(); // a second disconnect() starts a 2 s timer that keeps a stopping process alive
  }
}
