/**
 * The LISTEN/NOTIFY side of the PostgreSQL backend: wake-ups for readers.
 *
 * One dedicated client LISTENs; it reconnects in the background with backoff,
 * LISTENs again and wakes waiters once (a notification may have been missed
 * while it was down). `wait` never waits longer than `pollIntervalMs`, so a
 * lost NOTIFY costs latency, never a job. The client has error listeners, so a
 * server restart never kills the process.
 *
 * An idle LISTEN connection hears nothing when its path goes silent (a NAT or
 * firewall that forgot it: no FIN, no RST), so it is pinged: a `SELECT 1`
 * every `pingEveryMs`, with the queue's query deadline. A ping that misses it
 * costs the connection, and the listener reconnects as after any loss.
 */
import type pg from 'pg';
import { pg as loadPg } from '../drivers.js';
import { destroySocket } from './deadline.js';

const LISTEN_RETRY_MIN_MS = 100;
const LISTEN_RETRY_MAX_MS = 5000;

export interface NotifyListenerOptions {
  /** For the LISTEN client (the pool's settings). */
  clientConfig: pg.ClientConfig;
  channel: string;
  /** The queue name: notifications on the channel with another payload are for other queues. */
  payload: string;
  pollIntervalMs: number;
  /** How often the LISTEN connection is pinged (each ping has the clientConfig's query_timeout). */
  pingEveryMs: number;
  warn: (message: string) => void;
  /** A driver error's message, redacted. */
  redact: (error: unknown) => string;
}

export class NotifyListener {
  readonly #options: NotifyListenerOptions;
  #closed = false;
  #listener: pg.Client | null = null;
  #listenerStarting: Promise<void> | undefined;
  #listenRetryMs = LISTEN_RETRY_MIN_MS;
  #listenRetryTimer: NodeJS.Timeout | undefined;
  #listenWarned = false;
  /** A notification (or reconnect) arrived since the last read: the next wait returns at once. */
  #notified = true;
  readonly #waiters = new Set<() => void>();

  constructor(options: NotifyListenerOptions) {
    this.#options = options;
  }

  /** True while the LISTEN connection is up. */
  get listening(): boolean {
    return this.#listener !== null;
  }

  /** Ends the LISTEN client and any retry, and releases every waiter. */
  close(): Promise<unknown> {
    this.#closed = true;
    clearTimeout(this.#listenRetryTimer);
    this.#wake();
    const listener = this.#listener;
    this.#listener = null;
    return Promise.allSettled([listener?.end(), this.#listenerStarting]);
  }

  /** A read is under way: what was notified before it is seen by it. */
  markRead(): void {
    this.#notified = false;
  }

  start(): Promise<void> {
    if (this.#closed || this.#listener) return Promise.resolve();
    this.#listenerStarting ??= this.#connectListener().finally(() => {
      this.#listenerStarting = undefined;
    });
    return this.#listenerStarting;
  }

  async #connectListener(): Promise<void> {
    const { clientConfig, channel, payload, pollIntervalMs } = this.#options;
    const client = new (loadPg().Client)(clientConfig);
    let lost = false;
    let ping: NodeJS.Timeout | undefined = undefined; // set once LISTEN holds; onLost (defined first) clears it
    const onLost = (error?: Error) => {
      if (lost) return;
      lost = true;
      clearInterval(ping);
      if (this.#listener === client) this.#listener = null;
      client.end().catch(() => {});
      if (this.#closed) return;
      if (error && !this.#listenWarned) {
        this.#listenWarned = true;
        this.#options.warn(`taskmill: PostgreSQL LISTEN connection lost (${this.#options.redact(error)}); polling every ${pollIntervalMs} ms until it is back`);
      }
      this.#scheduleListenRetry();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) => {
      if (message.channel === channel && message.payload === payload) this.#wake();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${loadPg().escapeIdentifier(channel)}`);
    } catch (error) {
      onLost(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (lost) return;
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#listener = client;
    ping = this.#pingEvery(client, onLost);
    this.#listenRetryMs = LISTEN_RETRY_MIN_MS;
    this.#listenWarned = false;
    // Anything written while nobody listened sent its NOTIFY into the void: read once.
    this.#wake();
  }

  /** One ping at a time; one that fails or misses its deadline destroys the socket (end() would wait on a silent path) and reports the loss. */
  #pingEvery(client: pg.Client, onLost: (error: Error) => void): NodeJS.Timeout {
    let pinging = false;
    const timer = setInterval(() => {
      if (pinging) return;
      pinging = true;
      client.query('SELECT 1').then(
        () => {
          pinging = false;
        },
        (error: unknown) => {
          const reason = new Error(`LISTEN connection ping failed: ${error instanceof Error ? error.message : String(error)}`);
          destroySocket(client, reason);
          onLost(reason);
        },
      );
    }, this.#options.pingEveryMs);
    timer.unref();
    return timer;
  }

  #scheduleListenRetry(): void {
    if (this.#closed || this.#listenRetryTimer) return;
    const delay = this.#listenRetryMs * (0.5 + Math.random() / 2);
    this.#listenRetryMs = Math.min(this.#listenRetryMs * 2, LISTEN_RETRY_MAX_MS);
    this.#listenRetryTimer = setTimeout(() => {
      this.#listenRetryTimer = undefined;
      void this.start();
    }, delay);
    this.#listenRetryTimer.unref();
  }

  #wake(): void {
    this.#notified = true;
    for (const waiter of [...this.#waiters]) waiter();
  }

  /**
   * Resolves on a NOTIFY for this queue, after min(timeoutMs, pollIntervalMs),
   * or at once on abort / close / when a notification came since the last read.
   * `reconnect` is called when it is about to wait with no LISTEN client.
   */
  wait(timeoutMs: number, signal: AbortSignal, reconnect: () => void): Promise<void> {
    if (this.#notified) {
      this.#notified = false;
      return Promise.resolve();
    }
    if (!this.#listener) reconnect();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#waiters.delete(done);
        this.#notified = false;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(timeoutMs, this.#options.pollIntervalMs)));
      signal.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }
}
