/**
 * What a consumer writes to its queue's consumer registry (BaseQueue.heartbeat,
 * every CONSUMER_HEARTBEAT_MS, by the queue adapter): who it is, which queues it
 * reads, its supervisor's, reader's and scheduler's states, and each worker's
 * state with the job it runs (its command and arguments, sanitised and with
 * secret-named keys redacted), so a dashboard needs only the queue URL to show
 * the live fleet and a running job's arguments.
 *
 * All of it is read at heartbeat time, never per job: a running job's
 * arguments are decoded when a beat first sees it (cached per message).
 */
import { hostname } from 'node:os';
import type { AnyActorRef } from 'xstate';
import type { BaseQueue } from '../backends/base.js';
import { decodeMessage } from '../codec/message.js';
import { OrderedQueues } from '../consumer/ordered-queues.js';
import { ENVELOPE_HEAD, sanitizeValue } from '../inspect/sanitize.js';
import { redactText } from '../shared/config.js';
import type { LeasedMessage } from '../machines/protocol.js';

/** A running job as the registry shows it. */
export interface RunningJob {
  /** The message id (the backend's). */
  message: string;
  /** The job id (the producer's), null when the message is not a taskmill envelope. */
  id: string | null;
  command: string | null;
  /** Sanitised, secrets redacted; a note in place of arguments too large to carry. */
  args: unknown;
}

/** The state record: { pid, hostname, startedAt, queues, supervisor, reader, scheduler, restarts, failures, workers }. */
export interface ConsumerState {
  pid: number;
  hostname: string;
  startedAt: number;
  queues: string[];
  supervisor: unknown;
  /** The reader's and the scheduler's states as the dashboard draws them (stateAt); null when the actor is not running. */
  reader: string | null;
  scheduler: string | null;
  restarts: number;
  failures: number;
  /** `job`: the message id of the job it runs (kept for older readers); `running`: that job. */
  workers: Array<{ id: string; state: string; job: string | null; running: RunningJob | null }>;
}

/** A message bigger than this is not decoded for the registry. */
const MAX_DECODED = 64 * 1024;
/** Arguments whose sanitised JSON is longer than this are replaced by a note. */
const MAX_ARGS_TEXT = 2_048;
/** The state must stay under the heartbeat's 64 KiB: past this, arguments are left out. */
const MAX_STATE_TEXT = 60_000;

const SECRET_KEY = /pass(word|wd)?|secret|token|api[-_]?key|authorization|credential/i;

/** Values under keys that name a secret are shown as '[redacted]', and a URL's password in any text as `***`. */
export function redactSecrets(value: unknown): unknown {
  if (typeof value === 'string') return value.includes('://') ? redactText(value) : value;
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redactSecrets(v);
  return out;
}

/** Job arguments made safe to show: sanitised as the inspector does (each argument on its own, so none is taken for a payload), secret-named keys redacted. */
export function showArgs(args: readonly unknown[]): unknown[] {
  return args.map((arg) => redactSecrets(sanitizeValue(arg)));
}

/** A message's job id, command and shown arguments; nulls for what is not a taskmill envelope. */
export function describeMessage(message: string, data: string): RunningJob {
  if (data.length > MAX_DECODED) {
    // Too big to decode at every new job a beat sees: its id and command from the head only.
    const head = ENVELOPE_HEAD.exec(data.slice(0, 600));
    const [id, command] = head ? [JSON.parse(head[1]!) as string, JSON.parse(head[2]!) as string] : [null, null];
    return { message, id, command, args: `[arguments: ${data.length} characters, not shown]` };
  }
  try {
    const envelope = decodeMessage(data);
    const args = showArgs(envelope.args);
    const text = JSON.stringify(args);
    return {
      message,
      id: envelope.id,
      command: envelope.command,
      args: text.length > MAX_ARGS_TEXT ? `[arguments: ${text.length} characters, not shown]` : args,
    };
  } catch {
    return { message, id: null, command: null, args: null };
  }
}

const topState = (value: unknown): string => (typeof value === 'object' && value !== null ? (Object.keys(value)[0] ?? '') : String(value));

/** The compound state whose children the dashboard draws in its place, per machine (dashboard/machines.ts). */
export const EXPANDED = { reader: 'active', scheduler: 'running.periodic' } as const;

/** A machine's state as the dashboard draws it: the child of the expanded state when in it, else the top-level state. */
export function stateAt(value: unknown, expand: string): string {
  let v = value;
  for (const key of expand.split('.')) {
    if (typeof v !== 'object' || v === null || !(key in v)) return topState(value);
    v = (v as Record<string, unknown>)[key];
  }
  return topState(v);
}

/**
 * The state of the consumer whose supervisor `supervisor()` returns, as JSON text, read each time it is called.
 * `runnerMessages` is what each worker's runner runs now (run-command's dep): a worker's own `job` is its share's first message.
 */
export function consumerState(
  queue: BaseQueue,
  supervisor: () => AnyActorRef,
  startedAt: number,
  runnerMessages: ReadonlyMap<string, LeasedMessage> = new Map(),
): () => string {
  const names = queue instanceof OrderedQueues ? queue.members.map((m) => m.name) : [queue.name];
  const base = { pid: process.pid, hostname: hostname(), startedAt, queues: names };
  // Decoded once per running job, when a beat first sees it; gone with the message.
  const described = new WeakMap<LeasedMessage, RunningJob>();
  return () => {
    const snapshot = supervisor().getSnapshot() as {
      value: unknown;
      context: { restarts: number; failures: number };
      children: Record<string, AnyActorRef | undefined>;
    };
    const workers: ConsumerState['workers'] = [];
    let reader: string | null = null;
    let scheduler: string | null = null;
    for (const [id, ref] of Object.entries(snapshot.children)) {
      if (!ref) continue;
      const child = ref.getSnapshot() as { status: string; value: unknown; context?: { job?: LeasedMessage | null; more?: readonly LeasedMessage[] } };
      if (child.status !== 'active') continue;
      if (id === 'reader') reader = stateAt(child.value, EXPANDED.reader);
      else if (id.startsWith('scheduler')) scheduler = stateAt(child.value, EXPANDED.scheduler);
      else if (id.startsWith('worker-')) {
        const share = child.context?.job ?? null;
        // The runner's current message while it belongs to this share (the map keeps the last one between shares).
        const now = share && runnerMessages.get(id);
        const message = now && (now === share || child.context?.more?.includes(now)) ? now : share;
        let running: RunningJob | null = null;
        if (message) {
          running = described.get(message) ?? describeMessage(message.id, message.data);
          described.set(message, running);
        }
        workers.push({ id, state: topState(child.value), job: message?.id ?? null, running });
      }
    }
    const state: ConsumerState = {
      ...base,
      supervisor: snapshot.value,
      reader,
      scheduler,
      restarts: snapshot.context.restarts,
      failures: snapshot.context.failures,
      workers,
    };
    const text = JSON.stringify(state);
    if (text.length <= MAX_STATE_TEXT) return text;
    // Many workers with large arguments: the states matter more than the arguments.
    return JSON.stringify({
      ...state,
      workers: workers.map((w) => ({ ...w, running: w.running && { ...w.running, args: '[left out: the heartbeat is full]' } })),
    });
  };
}
