/**
 * Composition, consumer side (docs/composition.md): what a composed job
 * (an envelope with a `flow`) leaves behind once it has a final outcome,
 * written BEFORE its message is acked or failed, so a consumer killed in
 * between runs the job again and writes the same thing again — deduplicated
 * by the backend's slot claim (`writeUnique`), so it lands exactly once.
 *
 * - A pipeline step that completed writes the next step (its pre-allocated
 *   job id in the claim key), its result prepended to that step's arguments.
 *   A step that ends any other way (failed for good, expired, cancelled)
 *   stops the pipeline: its record is copied under the last step's job id,
 *   the pipeline handle's, naming the step (`job` in the record).
 * - A group member stores its own record first, then reads its siblings'
 *   (stopping at the first that is not final); the one that sees every
 *   record final writes the callback with the members' results (null for a
 *   member that did not complete) prepended. Each member stores before it
 *   reads, so the last to finish sees them all (the stores are linearizable).
 *
 * Everything goes to the queue the job was read from (a consumer of several
 * named queues: that member); pipeline() and group() require one queue for
 * all their steps. Jobs without a flow never come here.
 */
import type { BaseQueue, ResultRecord } from '../backends/base.js';
import { encodeMessageText, type Envelope, type EnvelopeFlow, type FlowStep } from '../codec/message.js';
import { OrderedQueues } from '../consumer/ordered-queues.js';
import { parseResultRecord, resultRecord, type ResultRecordData } from '../producer/results.js';
import type { JobResult } from '../machines/protocol.js';

/** What a composed job's final record carries to the queue adapter. */
export interface Continuation {
  readonly flow: EnvelopeFlow;
  readonly data: ResultRecordData;
}

/**
 * A claim outlives every redelivery of the job that wrote it: at least the job's result TTL (the
 * group's records must be there to coordinate anyway), and never less than a day.
 */
export const MIN_CLAIM_TTL_MS = 24 * 60 * 60 * 1000;

/** The claim key of a pipeline step, by its pre-allocated job id. */
export const stepKey = (jobId: string): string => `taskmill:step:${jobId}`;
/** The claim key of a group's callback. */
export const groupKey = (groupId: string): string => `taskmill:group:${groupId}`;

const UNDEFINED_ARG = '{"$t":"undefined"}';

/** A step's arguments (tagged JSON text of an array) with `first` (tagged JSON text) in front. */
export function prependArg(first: string, argsText: string): string {
  return argsText === '[]' ? `[${first}]` : `[${first},${argsText.slice(1)}`;
}

/**
 * The record of a composed job's attempt: stored even for a command with `results: false`
 * (composition needs it); a final one carries its continuation.
 */
export function composedResult(envelope: Envelope, data: ResultRecordData, ttlMs: number): JobResult {
  const result = { jobId: envelope.id, record: resultRecord(data), ttlMs };
  return data.status === 'retrying' ? result : { ...result, continuation: { flow: envelope.flow!, data } };
}

function stepData(step: FlowStep, argsText: string, flow: EnvelopeFlow | undefined): string {
  // No payload limit here: the producer's limit was checked at enqueue, and the result in front was stored already.
  return encodeMessageText(step.command, argsText, { id: step.id, maxBytes: Number.POSITIVE_INFINITY, ...(flow ? { flow } : {}) }).data;
}

/**
 * Stores a composed job's final record and writes what follows it (the next step, the pipeline's
 * failure record, the group's callback). Rejects when the backend does: the caller then leaves the
 * message leased, so it runs again and this is done again.
 */
export async function settleComposed(queue: BaseQueue, messageId: string, delivery: number, result: JobResult): Promise<void> {
  const { flow, data } = result.continuation!;
  const target = queue instanceof OrderedQueues ? queue.queueOf(messageId) : queue;
  const claimTtl = Math.max(result.ttlMs, MIN_CLAIM_TTL_MS);
  const records: ResultRecord[] = [{ jobId: result.jobId, record: result.record, ttlMs: result.ttlMs }];
  const next = flow.next;
  const completed = data.status === 'completed';
  if (next && next.length > 0 && !completed) {
    records.push({ jobId: next[next.length - 1]!.id, record: resultRecord({ ...data, job: result.jobId }), ttlMs: result.ttlMs });
  }
  // Through `queue`, fenced by the delivery: a late run's records never overwrite a newer run's.
  await queue.setResults(
    records,
    records.map(() => messageId),
    records.map(() => delivery),
  );
  if (next && next.length > 0 && completed) {
    const rest = next.slice(1);
    const args = prependArg(data.value ?? UNDEFINED_ARG, next[0]!.args);
    await target.writeUnique(stepKey(next[0]!.id), stepData(next[0]!, args, rest.length > 0 ? { next: rest } : undefined), claimTtl);
  }
  const group = flow.group;
  if (group?.callback) {
    const entries: string[] = [];
    for (const id of group.members) {
      let record: ResultRecordData = data;
      if (id !== result.jobId) {
        const text = await target.getResult(id);
        if (text === null) return; // not finished (or its record expired): a later member writes the callback
        record = parseResultRecord(text);
        if (record.status === 'retrying') return;
      }
      entries.push(record.status === 'completed' ? (record.value ?? UNDEFINED_ARG) : 'null');
    }
    const args = prependArg(`[${entries.join(',')}]`, group.callback.args);
    await target.writeUnique(groupKey(group.id), stepData(group.callback, args, undefined), claimTtl);
  }
}
