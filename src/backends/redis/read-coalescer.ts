/**
 * A read that waits for the end of its turn of the event loop, so that an ack
 * flush issued in the same turn can take it along: one tmAckRead script, one
 * round trip, instead of a tmRead and a tmAck. A consumer's reader asks for
 * the next batch about when the ack batcher flushes the last one's acks (its
 * flush is a setImmediate too), so most reads go out with a flush. A read
 * that no flush takes goes out alone at the end of the turn: it waits a turn,
 * not a timer.
 */
import type { QueueMessage } from '../base.js';

export interface PendingRead {
  readonly max: number;
  resolve(messages: QueueMessage[]): void;
  reject(error: unknown): void;
}

export class ReadCoalescer {
  #pending: PendingRead | null = null;

  /** `send` sends a read alone: what happens to a read that no flush took by the end of the turn. */
  constructor(private readonly send: (read: PendingRead) => void) {}

  /** A read of up to `max`, sent alone at the end of this turn unless an ack flush takes it first. */
  read(max: number): Promise<QueueMessage[]> {
    // Reads are one at a time in a consumer; a second one while one waits simply goes out alone.
    if (this.#pending) return new Promise((resolve, reject) => this.send({ max, resolve, reject }));
    return new Promise((resolve, reject) => {
      const read: PendingRead = { max, resolve, reject };
      this.#pending = read;
      setImmediate(() => {
        if (this.#pending !== read) return;
        this.#pending = null;
        this.send(read);
      });
    });
  }

  /** The read waiting in this turn, now the caller's to send and to settle (null when there is none). */
  take(): PendingRead | null {
    const read = this.#pending;
    this.#pending = null;
    return read;
  }
}
