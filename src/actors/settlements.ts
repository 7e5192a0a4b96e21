/**
 * Why this exists: a runner settles each job of its share with the queue as
 * it goes (ack, fail, deferred, release) — one call per job. As an event to
 * the queue adapter that would be one event object and one mailbox turn per
 * job; through this object it is a function call into the adapter's own
 * handlers (the ack batcher, the lease set, composed continuations), which
 * attach on start and detach on close. Like ./event-feed.ts, one is shared by
 * the consumer's adapter and its runners.
 *
 * Detached (the adapter closed), a call does nothing: the same as an event
 * to a closed adapter, which ignores it; its lease lapses or was released.
 */
import type { JobResult, LeasedMessage } from '../machines/protocol.js';

export interface JobSettler {
  /** Done, expired or cancelled: acked in the next batch (fenced by its delivery), `result` stored before it. */
  ack(message: LeasedMessage, result: JobResult | undefined): void;
  /** It cannot run (undecodable, unknown command): to the failed store with `error`. */
  fail(message: LeasedMessage, error: string): void;
  /** Its gates held it back: the queue has it again, stop keeping its lease. */
  deferred(message: LeasedMessage): void;
  /** Unstarted: ready again, the delivery not counted. */
  release(messages: readonly LeasedMessage[]): void;
}

export class Settlements implements JobSettler {
  #target: JobSettler | null = null;

  attach(target: JobSettler): void {
    this.#target = target;
  }

  detach(): void {
    this.#target = null;
  }

  ack(message: LeasedMessage, result: JobResult | undefined): void {
    this.#target?.ack(message, result);
  }

  fail(message: LeasedMessage, error: string): void {
    this.#target?.fail(message, error);
  }

  deferred(message: LeasedMessage): void {
    this.#target?.deferred(message);
  }

  release(messages: readonly LeasedMessage[]): void {
    this.#target?.release(messages);
  }
}
