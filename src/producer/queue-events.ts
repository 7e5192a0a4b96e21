/**
 * queueEvents(): a listener, in any process, for the events of the jobs every
 * consumer of a queue runs — started, completed, failed, progress, cancelled.
 *
 * How it works (backends/control.ts has the backend side): the listener
 * registers itself on the queue, and consumers, which poll the queue twice a
 * second, publish their jobs' events to the queue's log while some listener
 * is registered. The listener reads the log from where it registered,
 * every `pollMs`, and keeps its registration fresh.
 *
 * What it promises, and how it says when it could not:
 * - Events of jobs that start after `await events.ready` are delivered, in
 *   the log's order (per consumer, the order they happened).
 * - The log keeps the last MAX_EVENTS events per queue. A listener that
 *   falls further behind (or is offline longer) gets a `missed` event with
 *   the count of events trimmed before it read them, then carries on.
 * - A listener whose registration lapsed (LISTENER_TTL_MS without a refresh:
 *   a long outage, a blocked event loop) gets a `missed` event without a
 *   count once it is back: consumers may have stopped publishing meanwhile.
 * - Errors reading the log go to an `error` listener, if any, and reading
 *   goes on with backoff.
 */
import { randomUUID } from 'node:crypto';
import { BaseQueue } from '../backends/base.js';
import { createQueue } from '../backends/index.js';
import { DEFAULT_CONTROL_POLL_MS, LISTENER_TTL_MS, MAX_EVENTS_PER_READ } from '../backends/control.js';
import { ConfigError, describeValue, toError } from '../shared/errors.js';
import { deserializeValue } from '../codec/message.js';
import type { QueueEventData, QueueEventType } from '../actors/event-feed.js';
import type { RemoteError } from './results.js';
import { Listeners } from '../shared/listeners.js';

/** One job event as a listener sees it. */
export interface QueueEvent {
  jobId: string;
  command: string;
  attempt: number;
  /** When it happened, on the consumer's clock. */
  at: Date;
  /** completed: the command's return value (undefined for none, or a command with `results: false`). */
  result?: unknown;
  /** failed (for good): the command's error. */
  error?: RemoteError;
  /** progress: the reported value. */
  progress?: unknown;
}

/** What a listener missed: `count` events trimmed from the log before it read them, or (null) an unknown number while it was not registered. */
export interface MissedEvents {
  count: number | null;
  reason: string;
}

export interface QueueEventsMap {
  started: QueueEvent;
  completed: QueueEvent;
  failed: QueueEvent;
  progress: QueueEvent;
  cancelled: QueueEvent;
  missed: MissedEvents;
  error: Error;
}

export interface QueueEventsOptions {
  /** The queue's name when `queueOrUrl` is a URL. Default 'default'. */
  queue?: string;
  /** How often the log is read. Default 100 ms. */
  pollMs?: number;
}

const EVENT_TYPES: ReadonlySet<string> = new Set<QueueEventType>(['started', 'completed', 'failed', 'progress', 'cancelled']);
const REFRESH_MS = Math.floor(LISTENER_TTL_MS / 3);
const MAX_BACKOFF_MS = 5_000;

export class QueueEvents {
  /** Resolves once consumers polling at the default interval have seen this listener; rejects if it could not register. */
  readonly ready: Promise<void>;
  readonly #queue: BaseQueue;
  readonly #owned: boolean;
  readonly #pollMs: number;
  readonly #id = randomUUID();
  readonly #listeners = new Listeners<QueueEventsMap>('queueEvents ');
  #cursor = 0;
  #registeredAt = 0;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #refresher: NodeJS.Timeout | undefined;
  #failures = 0;

  constructor(queue: BaseQueue, owned: boolean, pollMs: number) {
    this.#queue = queue;
    this.#owned = owned;
    this.#pollMs = pollMs;
    this.ready = this.#start();
    // A failed start is reported through `ready` (and an `error` listener); it must not be an unhandled rejection.
    this.ready.catch(() => {});
  }

  /** Subscribes; returns the unsubscribe function. A throwing listener is reported as a warning, never stops the others. */
  on<K extends keyof QueueEventsMap>(name: K, listener: (event: QueueEventsMap[K]) => void): () => void {
    return this.#listeners.on(name, listener);
  }

  /** Stops reading and unregisters; closes the queue when it was opened from a URL. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#refresher);
    try {
      await this.#queue.unregisterListener(this.#id);
    } catch {
      // Unreachable: the registration lapses by itself.
    }
    if (this.#owned) await this.#queue.close();
  }

  async #start(): Promise<void> {
    await this.#queue.open();
    this.#cursor = await this.#queue.registerListener(this.#id);
    this.#registeredAt = Date.now();
    this.#refresher = setInterval(() => void this.#refresh(), REFRESH_MS);
    this.#refresher.unref();
    this.#schedule(this.#pollMs);
    // Two control polls and a little: by then every consumer at the default interval publishes for us.
    await new Promise((resolve) => setTimeout(resolve, 2 * DEFAULT_CONTROL_POLL_MS + 100));
  }

  async #refresh(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#queue.registerListener(this.#id);
      const now = Date.now();
      if (now - this.#registeredAt > LISTENER_TTL_MS) {
        this.#emit('missed', {
          count: null,
          reason: `this listener was not registered from ${new Date(this.#registeredAt + LISTENER_TTL_MS).toISOString()}: consumers may not have published events since`,
        });
      }
      this.#registeredAt = now;
    } catch (error) {
      this.#emit('error', toError(error));
    }
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#read(), ms);
    this.#timer.unref();
  }

  async #read(): Promise<void> {
    if (this.#closed) return;
    let full = false;
    try {
      const page = await this.#queue.readEvents(this.#cursor, MAX_EVENTS_PER_READ);
      this.#failures = 0;
      for (const { seq, data } of page.events) {
        if (seq > this.#cursor + 1)
          this.#emit('missed', { count: seq - this.#cursor - 1, reason: 'trimmed from the queue events log before this listener read them' });
        this.#cursor = seq;
        this.#deliver(data);
      }
      if (page.events.length === 0 && page.last > this.#cursor) {
        this.#emit('missed', { count: page.last - this.#cursor, reason: 'trimmed from the queue events log before this listener read them' });
        this.#cursor = page.last;
      }
      full = page.events.length === MAX_EVENTS_PER_READ;
    } catch (error) {
      this.#failures++;
      this.#emit('error', toError(error));
    }
    this.#schedule(full ? 0 : this.#failures > 0 ? Math.min(MAX_BACKOFF_MS, this.#pollMs * 2 ** this.#failures) : this.#pollMs);
  }

  #deliver(data: string): void {
    let parsed: QueueEventData;
    let event: QueueEvent;
    try {
      parsed = JSON.parse(data) as QueueEventData;
      if (!EVENT_TYPES.has(parsed.type)) return; // a newer consumer's event type: not ours to name
      event = { jobId: parsed.jobId, command: parsed.command, attempt: parsed.attempt, at: new Date(parsed.at) };
      if (parsed.value !== undefined) event.result = deserializeValue(parsed.value);
      if (parsed.error !== undefined) event.error = parsed.error;
      if (parsed.progress !== undefined) event.progress = deserializeValue(parsed.progress);
    } catch (error) {
      this.#emit('error', new ConfigError(`queueEvents: an event in the log could not be read (${toError(error).message}); skipped`));
      return;
    }
    this.#emit(parsed.type, event);
  }

  #emit<K extends keyof QueueEventsMap>(name: K, event: QueueEventsMap[K]): void {
    this.#listeners.emit(name, event);
  }
}

/**
 * Listens for the job events of a queue (a BaseQueue, or a URL and `options.queue`), run by
 * any consumer in any process. `await events.ready` before relying on seeing a job's events.
 */
export function queueEvents(queueOrUrl: BaseQueue | string, options: QueueEventsOptions = {}): QueueEvents {
  const pollMs = options.pollMs ?? 100;
  if (typeof pollMs !== 'number' || !Number.isInteger(pollMs) || pollMs < 1 || pollMs > 60_000) {
    throw new ConfigError(`queueEvents: invalid pollMs ${describeValue(pollMs)}: must be an integer from 1 to 60000 (ms)`);
  }
  if (queueOrUrl instanceof BaseQueue) {
    if (options.queue !== undefined && options.queue !== queueOrUrl.name) {
      throw new ConfigError(`queueEvents: options.queue "${String(options.queue)}" names another queue than the one given ("${queueOrUrl.name}")`);
    }
    return new QueueEvents(queueOrUrl, false, pollMs);
  }
  if (typeof queueOrUrl !== 'string') throw new ConfigError(`queueEvents: expected a BaseQueue or a queue URL, got ${describeValue(queueOrUrl)}`);
  return new QueueEvents(createQueue(queueOrUrl, { name: options.queue ?? 'default' }), true, pollMs);
}
