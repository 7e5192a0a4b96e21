/**
 * Composition, producer side (docs/composition.md): `cmd.with(...)` makes a
 * step, `pipeline(...)` chains steps, `group([...]).then(step)` runs members
 * and a callback after them all. Everything is checked and encoded before
 * anything is written; every job id is allocated here, so the handles exist
 * at once. Only the first step (or the members) is written now: the rest
 * travels in their envelopes (`flow`) and a consumer writes it, exactly once,
 * when a job has a final outcome (../actors/continuations.ts).
 */
import { randomUUID } from 'node:crypto';
import type { BaseQueue, WriteOptions } from '../backends/base.js';
import { deserializeValue, type EnvelopeFlow, type FlowStep } from '../codec/message.js';
import { serializeArgs } from '../codec/tagged-json.js';
import { ConfigError, describeValue } from '../shared/errors.js';
import { jobEvents } from './hooks.js';
import { Job } from './job.js';
import { JobFailedError, JobResultTimeoutError, parseResultRecord, remoteError } from './results.js';
import { settings } from './settings.js';

/** How composition reaches into a command (set by queueCommand); not part of the public surface. */
export const COMPOSE: unique symbol = Symbol('taskmill.compose');

/** What composition needs of a command: its queue, its encoder (with the job's id and flow), a local run. Not public. */
export interface Composable {
  queue(): BaseQueue;
  encode(args: readonly unknown[], id: string, flow: EnvelopeFlow | undefined): { data: string; writeOptions: WriteOptions | undefined };
  run(id: string, args: unknown[]): Promise<unknown>;
}

/** The command a step was made from (any QueuedCommand). */
export interface StepCommand {
  readonly commandName: string;
  readonly [COMPOSE]: Composable;
}

declare const stepResult: unique symbol;
const STEP_BRAND = Symbol('taskmill.step');

/**
 * A command and its arguments, not enqueued: what `cmd.with(...args)` returns, for `pipeline()` and
 * `group()`. In a pipeline, every step but the first gets the previous step's result in front of
 * these arguments; a group's callback gets the members' results.
 */
export interface Step<R = unknown> {
  readonly command: StepCommand;
  readonly args: readonly unknown[];
  /** The result type of the step's command (types only). */
  readonly [stepResult]?: R;
}

interface BrandedStep extends Step {
  readonly [STEP_BRAND]: string;
}

/** Makes a step; its arguments are serialized now, so one that cannot be sent fails here, naming the value. @internal */
export function makeStep<R>(command: StepCommand, args: unknown[]): Step<R> {
  const argsText = serializeArgs(args);
  const step: BrandedStep = Object.freeze({ command, args: Object.freeze([...args]), [STEP_BRAND]: argsText });
  return step as Step<R>;
}

function isStep(value: unknown): value is BrandedStep {
  return typeof value === 'object' && value !== null && typeof (value as Partial<BrandedStep>)[STEP_BRAND] === 'string';
}

function checkStep(value: unknown, what: string, where: string): BrandedStep {
  if (!isStep(value)) throw new TypeError(`${where}: ${what} is not a step (cmd.with(...)), got ${describeValue(value)}`);
  return value;
}

const nameOf = (step: Step) => step.command.commandName;
const describeQueue = (queue: BaseQueue) => `queue ${JSON.stringify(queue.name)} (${queue.constructor.name})`;

/**
 * Every step's queue, which must be one: a consumer writes the next step (or the callback) to the
 * queue it read the job from, and the results composition reads live there.
 */
function commonQueue(steps: readonly BrandedStep[], labels: readonly string[], where: string): BaseQueue {
  const first = steps[0]!.command[COMPOSE].queue();
  steps.forEach((step, i) => {
    const queue = step.command[COMPOSE].queue();
    if (queue !== first) {
      throw new ConfigError(
        `${where}: ${labels[i]} (${nameOf(step)}) is on ${describeQueue(queue)}, ${labels[0]} (${nameOf(steps[0]!)}) on ${describeQueue(first)}; ` +
          'every step must be on one queue',
      );
    }
  });
  return first;
}

const flowStep = (step: BrandedStep, id: string): FlowStep => ({ command: nameOf(step), args: step[STEP_BRAND], id });
const argsOf = (step: BrandedStep) => deserializeValue(step[STEP_BRAND]) as unknown[];

function emitEnqueued(id: string, command: string, messageId: string): void {
  if (jobEvents.has('enqueued')) jobEvents.emit('enqueued', { jobId: id, command, messageId, runAt: undefined });
}

type LastResult<S extends readonly Step[]> = S extends readonly [...Step[], Step<infer R>] ? R : unknown;

/**
 * Chains steps: enqueues the first one; when a step completes, a consumer enqueues the next with
 * the previous result in front of its arguments. The handle is the last step's job (its id and
 * command): `result()` is the last step's result, and rejects with the step's JobFailedError
 * (JobExpiredError, …) when a step ends without completing — the later steps never run.
 * `revoke()` removes the first step if it has not started. All steps must be on one queue.
 */
export async function pipeline<S extends readonly Step[]>(...steps: S): Promise<Job<LastResult<S>>> {
  if (steps.length === 0) throw new ConfigError('pipeline() needs at least one step (cmd.with(...))');
  const checked = steps.map((step, i) => checkStep(step, `step ${i + 1}`, 'pipeline()'));
  const ids = checked.map(() => randomUUID());
  const last = checked.length - 1;
  if (settings.immediate) {
    let value: unknown;
    for (const [i, step] of checked.entries()) {
      try {
        value = await step.command[COMPOSE].run(ids[i]!, i === 0 ? argsOf(step) : [value, ...argsOf(step)]);
      } catch (error) {
        const failed = new JobFailedError(ids[i]!, remoteError(error), 1);
        return new Job<LastResult<S>>(ids[last]!, nameOf(checked[last]!), null, null, { ok: false, error: failed });
      }
    }
    return new Job<LastResult<S>>(ids[last]!, nameOf(checked[last]!), null, null, { ok: true, value });
  }
  const queue = commonQueue(
    checked,
    checked.map((_, i) => `step ${i + 1}`),
    'pipeline()',
  );
  const next = checked.slice(1).map((step, i) => flowStep(step, ids[i + 1]!));
  const first = checked[0]!;
  const { data, writeOptions } = first.command[COMPOSE].encode(first.args, ids[0]!, next.length > 0 ? { next } : undefined);
  const messageId = await queue.write(data, writeOptions);
  emitEnqueued(ids[0]!, nameOf(first), messageId);
  // The handle's messageId is the first step's: revoke() removes it and records 'revoked' under the pipeline's id.
  return new Job<LastResult<S>>(ids[last]!, nameOf(checked[last]!), messageId, queue);
}

/** A group's results: each member's, in order; null for one that did not complete. */
export type GroupResults<R> = (R | null)[];

/**
 * The handle `group([...]).then(step)` resolves with: the group's id, its members' jobs, the
 * callback's job (null without one; written by a consumer once every member is final) and
 * `result()`, the members' results once every member has a final outcome.
 */
export class GroupJob<R = unknown, C = unknown> {
  readonly #queue: BaseQueue | null;
  readonly #local: GroupResults<R> | null;

  constructor(
    readonly id: string,
    readonly members: readonly Job<R>[],
    readonly callback: Job<C> | null,
    queue: BaseQueue | null,
    local: GroupResults<R> | null = null,
  ) {
    this.#queue = queue;
    this.#local = local;
  }

  /**
   * Waits until every member has a final outcome (default up to 30 s) and resolves with their
   * results in order, null for a member that failed, expired or was revoked or cancelled;
   * JobResultTimeoutError when `timeout` passes first.
   */
  async result({ timeout = 30_000, interval = 25 }: { timeout?: number; interval?: number } = {}): Promise<GroupResults<R>> {
    if (this.#local) return this.#local;
    const deadline = Date.now() + timeout;
    const results: GroupResults<R> = [];
    let wait = interval;
    for (const member of this.members) {
      for (;;) {
        const text = await this.#queue!.getResult(member.id);
        const record = text === null ? null : parseResultRecord(text);
        if (record && record.status !== 'retrying') {
          results.push(record.status !== 'completed' ? null : record.value === undefined ? (undefined as R) : (deserializeValue(record.value) as R));
          break;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new JobResultTimeoutError(this.id, timeout);
        await new Promise((resolve) => setTimeout(resolve, Math.min(wait, left)));
        wait = Math.min(1_000, wait * 1.5);
      }
    }
    return results;
  }
}

/**
 * What `group([...])` returns: `.then(step)` enqueues the members and resolves with the group's
 * handle; the callback step is enqueued once, after every member is final. `.then()` enqueues the
 * members alone (no callback). (Awaited directly, as a thenable, it does the same at run time;
 * TypeScript refuses that `await`, so typed code says which it means.)
 */
export interface GroupBuilder<R> {
  then<C>(callback: Step<C>): Promise<GroupJob<R, C>>;
  then(): Promise<GroupJob<R, never>>;
}

type MemberResult<M extends readonly Step[]> = M[number] extends Step<infer R> ? R : unknown;

/** A group of steps run independently, and a callback after them all (see GroupBuilder). All steps must be on one queue. */
export function group<M extends readonly Step[]>(members: M): GroupBuilder<MemberResult<M>> {
  if (!Array.isArray(members)) throw new TypeError(`group() takes an array of steps (cmd.with(...)), got ${describeValue(members)}`);
  if (members.length === 0) throw new ConfigError('group() needs at least one member (cmd.with(...))');
  const checked = members.map((step, i) => checkStep(step, `member ${i + 1}`, 'group()'));
  type R = MemberResult<M>;
  const enqueue = async (callback: BrandedStep | undefined): Promise<GroupJob<R, unknown>> => {
    const groupId = randomUUID();
    const ids = checked.map(() => randomUUID());
    const callbackId = randomUUID();
    const cbName = callback ? nameOf(callback) : '';
    if (settings.immediate) {
      const results: GroupResults<R> = [];
      const jobs: Job<R>[] = [];
      for (const [i, step] of checked.entries()) {
        try {
          const value = (await step.command[COMPOSE].run(ids[i]!, argsOf(step))) as R;
          results.push(value);
          jobs.push(new Job<R>(ids[i]!, nameOf(step), null, null, { ok: true, value }));
        } catch (error) {
          results.push(null);
          jobs.push(new Job<R>(ids[i]!, nameOf(step), null, null, { ok: false, error: new JobFailedError(ids[i]!, remoteError(error), 1) }));
        }
      }
      let callbackJob: Job | null = null;
      if (callback) {
        try {
          const value = await callback.command[COMPOSE].run(callbackId, [results, ...argsOf(callback)]);
          callbackJob = new Job(callbackId, cbName, null, null, { ok: true, value });
        } catch (error) {
          callbackJob = new Job(callbackId, cbName, null, null, { ok: false, error: new JobFailedError(callbackId, remoteError(error), 1) });
        }
      }
      return new GroupJob<R, unknown>(groupId, jobs, callbackJob, null, results);
    }
    const all = callback ? [...checked, callback] : checked;
    const queue = commonQueue(
      all,
      all.map((_, i) => (i < checked.length ? `member ${i + 1}` : 'the callback')),
      'group()',
    );
    const flow: EnvelopeFlow = { group: { id: groupId, members: ids, ...(callback ? { callback: flowStep(callback, callbackId) } : {}) } };
    const encoded = checked.map((step, i) => step.command[COMPOSE].encode(step.args, ids[i]!, flow));
    // One round trip (one transaction where the backend has them) when the members share their write options.
    const same = encoded.every((e) => e.writeOptions === encoded[0]!.writeOptions);
    const messageIds = same
      ? await queue.writeBatch(
          encoded.map((e) => e.data),
          encoded[0]!.writeOptions,
        )
      : await Promise.all(encoded.map((e) => queue.write(e.data, e.writeOptions)));
    const jobs = checked.map((step, i) => {
      emitEnqueued(ids[i]!, nameOf(step), messageIds[i]!);
      return new Job<R>(ids[i]!, nameOf(step), messageIds[i]!, queue);
    });
    return new GroupJob<R, unknown>(groupId, jobs, callback ? new Job(callbackId, cbName, null, queue) : null, queue);
  };
  const builder = {
    then(first?: unknown, onrejected?: ((reason: unknown) => unknown) | null): Promise<unknown> {
      // Awaited directly (the thenable protocol calls then(resolve, reject)): the members alone.
      if (typeof first === 'function' || first === undefined || first === null) {
        return enqueue(undefined).then(first as ((group: GroupJob<R, unknown>) => unknown) | undefined, onrejected ?? undefined);
      }
      // A callback that is not a step rejects (thrown in the executor), before anything is written.
      return new Promise<BrandedStep>((resolve) => resolve(checkStep(first, 'the callback', 'group().then()'))).then(enqueue);
    },
  };
  return builder as GroupBuilder<R>;
}
