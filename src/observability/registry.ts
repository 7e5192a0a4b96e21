/**
 * What a consumer writes to its queue's consumer registry (BaseQueue.heartbeat,
 * every CONSUMER_HEARTBEAT_MS, by the queue adapter): who it is, which queues it
 * reads, and each worker's state, so a dashboard needs only the queue URL to
 * show the live fleet.
 */
import { hostname } from 'node:os';
import type { AnyActorRef } from 'xstate';
import type { BaseQueue } from '../backends/base.js';
import { OrderedQueues } from '../consumer/ordered-queues.js';

/** The state record: { pid, hostname, startedAt, queues, supervisor, restarts, failures, workers: [{ id, state, job }] }. */
export interface ConsumerState {
  pid: number;
  hostname: string;
  startedAt: number;
  queues: string[];
  supervisor: unknown;
  restarts: number;
  failures: number;
  workers: Array<{ id: string; state: string; job: string | null }>;
}

/** The state of the consumer whose supervisor `supervisor()` returns, as JSON text, read each time it is called. */
export function consumerState(queue: BaseQueue, supervisor: () => AnyActorRef, startedAt: number): () => string {
  const names = queue instanceof OrderedQueues ? queue.members.map((m) => m.name) : [queue.name];
  const base = { pid: process.pid, hostname: hostname(), startedAt, queues: names };
  return () => {
    const snapshot = supervisor().getSnapshot() as {
      value: unknown;
      context: { restarts: number; failures: number };
      children: Record<string, AnyActorRef | undefined>;
    };
    const workers: Array<{ id: string; state: string; job: string | null }> = [];
    for (const [id, ref] of Object.entries(snapshot.children)) {
      if (!ref || !id.startsWith('worker-')) continue;
      const worker = ref.getSnapshot() as { status: string; value: unknown; context?: { job?: { id: string } | null } };
      if (worker.status === 'active') workers.push({ id, state: String(worker.value), job: worker.context?.job?.id ?? null });
    }
    const state: ConsumerState = { ...base, supervisor: snapshot.value, restarts: snapshot.context.restarts, failures: snapshot.context.failures, workers };
    return JSON.stringify(state);
  };
}
