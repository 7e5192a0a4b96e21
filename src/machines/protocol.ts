/**
 * The messages the consumer's actors exchange. Each actor's events are a
 * typed union with SCREAMING_SNAKE `type`s; this module holds the ones that
 * cross actor boundaries so every side agrees on them.
 *
 * Machines never import backends: `LeasedMessage` is the structural twin of
 * the backends' QueueMessage.
 */
import type { ActorSystem, AnyActorRef, EventObject } from 'xstate';
import type { Continuation } from '../actors/continuations.js';

/**
 * Narrows an action's or guard's event to the type its transition is for, or
 * throws: xstate's `assertEvent` for the per-job path. The check is the same;
 * xstate's allocates an array and a closure on every call (a microbenchmark:
 * ~15 ns and a young-generation collection every ~13 000 calls), which the
 * per-job actions of the reader and the worker must not add.
 */
export function expectEvent<TEvent extends EventObject, TType extends TEvent['type']>(
  event: TEvent,
  type: TType,
): asserts event is Extract<TEvent, { type: TType }> {
  if (event.type !== type) throw new Error(`expected a ${type} event, got ${event.type}`);
}

/** A message leased from the queue: what a worker is given to run. */
export interface LeasedMessage {
  readonly id: string;
  readonly data: string;
  readonly attempt: number;
  /** The delivery token of this lease: what fences its ack, fail, retry, release, extend, start and results. */
  readonly delivery: number;
}

/** systemIds under which the long-lived actors register, so peers can reach them. */
export const SYSTEM_IDS = {
  queue: 'queue',
  reader: 'reader',
  scheduler: 'scheduler',
} as const;

/**
 * The actor registered under `systemId`, if it is running. xstate types
 * `system.get` as `any`; every lookup goes through here so the rest is typed.
 */
export function systemActor(system: ActorSystem<any>, systemId: string): AnyActorRef | undefined {
  return system.get(systemId) as AnyActorRef | undefined;
}

/**
 * `sendTo` targets for the queue adapter and the reader. The supervisor
 * starts both before any worker or the scheduler and stops them last, so
 * they are there whenever those send.
 */
export const queueActor = ({ system }: { system: ActorSystem<any> }) => system.get(SYSTEM_IDS.queue) as AnyActorRef;
export const readerActor = ({ system }: { system: ActorSystem<any> }) => system.get(SYSTEM_IDS.reader) as AnyActorRef;

// ── to the queue adapter ───────────────────────────────────────────────────
/** A result record to store with an ack/fail/retry (structural twin of the backends' ResultRecord). */
export interface JobResult {
  readonly jobId: string;
  readonly record: string;
  readonly ttlMs: number;
  /** A composed job's final record: what to write before its ack or fail (../actors/continuations.ts). */
  readonly continuation?: Continuation | undefined;
}

/** How a failed job is tried again: its next envelope and when it may start. */
export interface RetryPlan {
  readonly data: string;
  readonly runAt: number;
}

/** The gates a job must pass before it starts (structural twin of the backends' StartGates). */
export interface JobGates {
  readonly rate?: { readonly key: string; readonly limit: number; readonly perMs: number } | undefined;
  readonly concurrency?: { readonly key: string; readonly limit: number } | undefined;
}

/** What the queue decided for a gated start ('error': it could not be asked; the lease will lapse). */
export type GateDecision = 'started' | 'deferred' | 'lost' | 'error';

export type QueueAdapterEvent =
  | { type: 'READ'; max: number }
  | { type: 'WAIT'; timeoutMs: number }
  | { type: 'ACK'; id: string; delivery: number; result?: JobResult | undefined }
  | { type: 'FAIL'; message: LeasedMessage; error: string; result?: JobResult | undefined }
  | { type: 'RETRY'; message: LeasedMessage; plan: RetryPlan; result: JobResult | undefined }
  | { type: 'PROMOTE' }
  /** Unstarted messages go back to the queue (each fenced by its own delivery). */
  | { type: 'RELEASE'; messages: readonly LeasedMessage[] }
  | { type: 'WRITE_UNIQUE'; key: string; data: string; ttlMs: number }
  /** May this leased job start under its gates? The answer (GATE_DECIDED) goes to `replyTo`, the job's runner. */
  | { type: 'START_GATED'; id: string; delivery: number; gates: JobGates; replyTo: AnyActorRef }
  /** The job went back to the queue unstarted (deferred by its gates): stop keeping its lease. */
  | { type: 'DEFERRED'; id: string; delivery: number }
  /**
   * A running job reported progress (`this.progress(value)`): store `progress` (its jobId the job's progress key)
   * for the job of message `id` (its lease `delivery`). Latest wins: the adapter may skip a value a newer one replaced
   * before it was written.
   */
  | { type: 'PROGRESS'; id: string; delivery: number; progress: JobResult }
  | { type: 'CLOSE'; release: boolean };

/** A cancel asked for from another process: the job `jobId` of message `id` (structural twin of the backends' CancelRequest). */
export interface JobCancel {
  readonly id: string;
  readonly jobId: string;
}

// ── from the queue adapter ─────────────────────────────────────────────────
export type QueueReplyEvent =
  | { type: 'QUEUE_READY' }
  /** Jobs of messages this consumer holds were cancelled (`job.cancel()`): the supervisor tells its workers. */
  | { type: 'CANCEL_REQUESTED'; cancels: readonly JobCancel[] }
  | { type: 'QUEUE_FAILED'; error: unknown }
  | { type: 'QUEUE_CLOSED' }
  | { type: 'MESSAGES'; messages: readonly LeasedMessage[] }
  | { type: 'READ_FAILED'; error: unknown }
  | { type: 'WAKE' }
  | { type: 'SLOT_WRITTEN'; key: string; id: string | null }
  | { type: 'SLOT_FAILED'; key: string; error: unknown };

// ── worker ⇄ reader ────────────────────────────────────────────────────────
/** A worker is idle. `done` is true when it just finished a job the reader dispatched. */
export type WorkerReadyEvent = { type: 'WORKER_READY'; worker: AnyActorRef; done: boolean };
/**
 * A job for an idle worker, or for the runner of a busy one that asked for
 * its next share (RUNNER_READY). With a backlog buffered (prefetch), `more`
 * hands it further messages to run in turn: one dispatch, not one round of
 * events per job. A worker releases the ones it has not started when it
 * drains, retires or fails.
 */
export type JobEvent = { type: 'JOB'; message: LeasedMessage; more?: readonly LeasedMessage[] | undefined };

// ── a busy worker's runner ⇄ the reader ────────────────────────────────────
/**
 * The runner of a busy worker finished its share and asks for the next one
 * directly: the reader answers it with a JOB (its worker stays busy, and hears
 * nothing) or, when no read is on its way, with NO_JOB (the runner then
 * reports SHARE_DONE and its worker goes idle as usual). Exactly one answer
 * per ask. With a backlog, a share costs the actor system this one machine
 * event instead of three (WORKER_READY, JOB and SHARE_DONE).
 */
export type RunnerReadyEvent = { type: 'RUNNER_READY'; worker: AnyActorRef; runner: AnyActorRef };
/** The runner's worker drains or retires: if the runner still waits for an answer, answer NO_JOB now. */
export type RunnerWithdrawEvent = { type: 'RUNNER_WITHDRAW'; runner: AnyActorRef };

// ── worker ⇄ its run-command actor ─────────────────────────────────────────
/**
 * The worker hands its runner the JOB itself (no copy): the runner runs the
 * share in turn and settles each job with the queue adapter as it goes
 * (../actors/settlements.ts), so the worker machine sees one event per share,
 * not one per job.
 */
export type RunnerInEvent =
  | JobEvent
  | { type: 'ABORT'; reason: string }
  | { type: 'GATE_DECIDED'; id: string; decision: GateDecision; error?: unknown }
  /** Cancels of the worker's current or queued messages: a running one is aborted, a queued one never starts. */
  | { type: 'CANCEL'; cancels: readonly JobCancel[] }
  /** Drain or retire: give the share's unstarted messages back now, report once the running one ends (and ask for no more). */
  | { type: 'RELEASE_UNSTARTED' }
  /** The reader's answer to RUNNER_READY when it has nothing for the runner: report SHARE_DONE. */
  | { type: 'NO_JOB' };

/** A job failed (the runner already decided whether it is tried again): the worker fails with it. */
export interface CommandFailure {
  readonly error: unknown;
  readonly command: string;
  readonly jobId: string;
  /** The message of the job that failed. */
  readonly message: LeasedMessage;
  /** Set when the job is to be tried again. */
  readonly retry?: RetryPlan | undefined;
  /** The record to store ('retrying' or 'failed'). */
  readonly result?: JobResult | undefined;
  /** The rest of its share, not started: to be released. */
  readonly unstarted: readonly LeasedMessage[];
}

export type RunnerOutEvent =
  /**
   * The share is over: each of its jobs settled with the queue by the runner
   * (acked, failed, deferred) or released unstarted. `finished` counts the settled ones.
   */
  { type: 'SHARE_DONE'; finished: number } | ({ type: 'COMMAND_FAILED' } & CommandFailure);

/**
 * What a failed worker throws, so its supervisor learns which job killed it.
 * `cause` is the command's thrown value, normalised to an Error.
 */
export class WorkerCommandError extends Error {
  readonly workerId: string;
  readonly command: string;
  readonly jobId: string;
  readonly job: LeasedMessage;
  readonly retry: RetryPlan | undefined;
  readonly result: JobResult | undefined;
  /** Messages dispatched to the worker with this one that it had not started: to be released. */
  readonly unstarted: readonly LeasedMessage[];
  constructor(
    workerId: string,
    job: LeasedMessage,
    failure: { command: string; jobId: string; error: unknown; retry?: RetryPlan | undefined; result?: JobResult | undefined },
    unstarted: readonly LeasedMessage[] = [],
  ) {
    const { command, jobId, error: cause } = failure;
    const error = cause instanceof Error ? cause : new Error(String(cause));
    super(`command "${command}" failed in ${workerId}: ${error.message}`, { cause: error });
    this.name = 'WorkerCommandError';
    this.workerId = workerId;
    this.command = command;
    this.jobId = jobId;
    this.job = job;
    this.retry = failure.retry;
    this.result = failure.result;
    this.unstarted = unstarted;
  }
}
