/**
 * Why this exists: a lease runs out after the queue's leaseMs, and a command
 * (or a prefetched message waiting for a worker) may take longer. The
 * heartbeat keeps the messages this consumer leased and has not yet settled,
 * each with the delivery it holds, and every leaseMs/3 extends all of those
 * deliveries' leases in one call, so
 * a lease survives two missed beats. Ids the backend refuses (the lease was
 * already lost) are reported: those jobs may run twice.
 *
 * One interval for the whole consumer, unref'd: it never keeps a process alive.
 */
import type { BaseQueue } from '../backends/base.js';

/** The beat: a third of the lease, never under 50 ms. */
export const heartbeatIntervalMs = (leaseMs: number): number => Math.max(50, Math.floor(leaseMs / 3));

export interface LeaseHeartbeatDeps {
  queue: Pick<BaseQueue, 'extend' | 'leaseMs'>;
  /** Called with every extend's promise (the adapter waits for them on close). */
  track: <T>(promise: Promise<T>) => Promise<T>;
  /** The backend refused to extend these ids: their leases were lost. */
  onRefused: (ids: string[]) => void;
  onError: (error: unknown) => void;
}

export class LeaseHeartbeat {
  /** Message id → the delivery whose lease is kept (a message read again replaces its older delivery). */
  private readonly outstanding = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly deps: LeaseHeartbeatDeps) {
    this.timer = setInterval(() => this.beat(), heartbeatIntervalMs(deps.queue.leaseMs));
    this.timer.unref();
  }

  get size(): number {
    return this.outstanding.size;
  }

  /** Delivery `delivery` of a message was leased: keep its lease alive until `settle`. */
  lease(id: string, delivery: number): void {
    this.outstanding.set(id, delivery);
  }

  /** That delivery was acked, failed, retried or released: stop extending it (a newer delivery of the message stays). */
  settle(id: string, delivery: number): void {
    if (this.outstanding.get(id) === delivery) this.outstanding.delete(id);
  }

  /** Stops extending everything and hands back the ids that were still leased, with their deliveries. */
  takeAll(): { ids: string[]; deliveries: number[] } {
    const ids = [...this.outstanding.keys()];
    const deliveries = [...this.outstanding.values()];
    this.outstanding.clear();
    return { ids, deliveries };
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private beat(): void {
    if (this.outstanding.size === 0) return;
    this.deps.track(this.deps.queue.extend([...this.outstanding.keys()], [...this.outstanding.values()])).then(
      (refused) => {
        if (refused.length > 0) this.deps.onRefused(refused);
      },
      (error: unknown) => this.deps.onError(error),
    );
  }
}
