/**
 * Why this exists: an ACK per finished job would be one backend round trip per
 * job. The batcher collects the ACKs (and the result records that go with
 * them) of one turn of the event loop and writes them in one flush: results
 * first, then the acks, so a finished job's result exists once it is gone
 * from the queue. Both are fenced by each job's delivery: a result is stored
 * only while the delivery that produced it still holds the lease, so a late
 * run's result never overwrites a newer one. A flush that fails is put back and tried again after
 * ACK_RETRY_MS (if the lease expires first the job runs again: at-least-once);
 * once closed, a failure is only reported.
 *
 * Hot path: `add` pushes onto parallel arrays; the only closures are the ones
 * of a flush, one per turn, not per job.
 */
import type { BaseQueue, ResultRecord } from '../backends/base.js';

export const ACK_RETRY_MS = 500;

export interface AckBatcherDeps {
  /** ackWithResults: results, then acks (one round trip where the backend can, e.g. one Redis script). */
  queue: Pick<BaseQueue, 'ackWithResults'>;
  /** Most ids in one ackBatch call. */
  maxAckBatch: number;
  /** Called with every flush's promise (the adapter waits for them on close). */
  track: <T>(promise: Promise<T>) => Promise<T>;
  /** The backend refused these ids: their leases were lost. */
  onRefused: (ids: string[]) => void;
  /** A flush failed; `closed` true means it will not be retried. */
  onFailed: (error: unknown, ids: readonly string[], closed: boolean) => void;
}

export class AckBatcher {
  private pendingAcks: string[] = [];
  /** The delivery of each pending ack, same order. */
  private pendingDeliveries: number[] = [];
  private pendingResults: ResultRecord[] = [];
  /** The message of each pending result, same order (a queue of several routes results by it). */
  private pendingResultIds: string[] = [];
  /** The delivery of each pending result's message, same order. */
  private pendingResultDeliveries: number[] = [];
  private scheduled = false;
  private closed = false;
  private readonly flushSoon = (): void => this.flush();

  constructor(private readonly deps: AckBatcherDeps) {}

  /** Acks delivery `delivery` of `id` in the next flush, storing `result` (if any) before it. */
  add(id: string, delivery: number, result: ResultRecord | undefined): void {
    this.pendingAcks.push(id);
    this.pendingDeliveries.push(delivery);
    if (result) {
      this.pendingResults.push(result);
      this.pendingResultIds.push(id);
      this.pendingResultDeliveries.push(delivery);
    }
    this.schedule();
  }

  /** No more retries from now on; call `flush()` to drain what is pending. */
  close(): void {
    this.closed = true;
  }

  /** Writes what is pending now: up to maxAckBatch ids (the rest go in the next turn) and all results. */
  flush(): void {
    this.scheduled = false;
    const { queue, maxAckBatch, track } = this.deps;
    if (this.pendingAcks.length === 0 && this.pendingResults.length === 0) return;
    let ids = this.pendingAcks;
    let deliveries = this.pendingDeliveries;
    if (ids.length > maxAckBatch) {
      ids = this.pendingAcks.splice(0, maxAckBatch);
      deliveries = this.pendingDeliveries.splice(0, maxAckBatch);
      this.schedule();
    } else {
      this.pendingAcks = [];
      this.pendingDeliveries = [];
    }
    const results = this.pendingResults;
    const resultIds = this.pendingResultIds;
    const resultDeliveries = this.pendingResultDeliveries;
    if (results.length > 0) {
      this.pendingResults = [];
      this.pendingResultIds = [];
      this.pendingResultDeliveries = [];
    }
    track(queue.ackWithResults(ids, deliveries, results, resultIds, resultDeliveries)).then(
      (refused) => {
        if (refused.length > 0) this.deps.onRefused(refused);
      },
      (error: unknown) => this.failed(error, { ids, deliveries, results, resultIds, resultDeliveries }),
    );
  }

  private failed(
    error: unknown,
    batch: { ids: string[]; deliveries: number[]; results: ResultRecord[]; resultIds: string[]; resultDeliveries: number[] },
  ): void {
    this.deps.onFailed(error, batch.ids, this.closed);
    if (this.closed) return;
    setTimeout(() => {
      this.pendingAcks.push(...batch.ids);
      this.pendingDeliveries.push(...batch.deliveries);
      this.pendingResults.push(...batch.results);
      this.pendingResultIds.push(...batch.resultIds);
      this.pendingResultDeliveries.push(...batch.resultDeliveries);
      this.schedule();
    }, ACK_RETRY_MS).unref();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flushSoon);
  }
}
