/**
 * The consumer's side of queue events: what its runners report (started,
 * completed, failed, progress, cancelled) while a listener is registered on
 * the queue, batched into one publishEvents call per turn of the event loop.
 *
 * Why a flag and not always-on: with nobody listening, publishing would cost
 * every job a log write. The queue adapter's control poll (twice a second)
 * sets `listening`; runners check it before building an event, so a queue
 * without listeners pays one property read per job.
 *
 * Best effort, and says so: a publish that fails is tried once more after
 * RETRY_MS, then its events are dropped with a warning (a listener cannot
 * see a gap the log never had). A backlog past MAX_PENDING (a backend far
 * slower than the jobs) drops its oldest events, also with a warning.
 */
import type { RemoteError } from '../producer/results.js';
import { MAX_EVENTS } from '../backends/control.js';

export type QueueEventType = 'started' | 'completed' | 'failed' | 'progress' | 'cancelled';

/** An event as it travels in the queue's log (JSON). Values are tagged JSON text. */
export interface QueueEventData {
  type: QueueEventType;
  jobId: string;
  command: string;
  attempt: number;
  /** ms since the epoch, on the consumer's clock. */
  at: number;
  /** completed: the tagged serialization of the return value (absent for undefined, or results: false). */
  value?: string;
  /** failed: the command's error. */
  error?: RemoteError;
  /** progress: the reported value, tagged. */
  progress?: string;
}

const RETRY_MS = 500;
const MAX_PENDING = MAX_EVENTS;

export interface EventFeedSink {
  publish(events: readonly string[], messageIds: readonly string[]): Promise<void>;
  track: <T>(promise: Promise<T>) => Promise<T>;
  warn(message: string, count: number, error?: unknown): void;
}

export class EventFeed {
  /** Whether a listener is registered on the queue: runners build events only while true. */
  listening = false;
  private events: string[] = [];
  private ids: string[] = [];
  private scheduled = false;
  private sink: EventFeedSink | null = null;
  private readonly flushSoon = (): void => this.flush();

  /** The queue adapter binds the feed to its queue when it opens it. */
  attach(sink: EventFeedSink): void {
    this.sink = sink;
  }

  /** Publishes nothing more; what is pending is flushed by a last flush(). */
  detach(): void {
    this.listening = false;
  }

  push(messageId: string, event: QueueEventData): void {
    this.events.push(JSON.stringify(event));
    this.ids.push(messageId);
    if (this.events.length > MAX_PENDING) {
      const over = this.events.length - MAX_PENDING;
      this.events.splice(0, over);
      this.ids.splice(0, over);
      this.sink?.warn('queue events dropped: the backend cannot keep up with publishing them', over);
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  flush(): void {
    this.scheduled = false;
    const sink = this.sink;
    if (!sink || this.events.length === 0) return;
    const events = this.events;
    const ids = this.ids;
    this.events = [];
    this.ids = [];
    const once = () => sink.track(sink.publish(events, ids));
    once().catch(() =>
      setTimeout(() => {
        once().catch((error: unknown) => sink.warn('queue events could not be published; listeners will not see them', events.length, error));
      }, RETRY_MS).unref(),
    );
  }
}
