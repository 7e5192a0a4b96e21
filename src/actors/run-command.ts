/**
 * The run-command actor: one per worker, for the worker's whole life. It
 * receives the worker's JOB (one message, or a share of a backlog) and runs
 * its messages in turn: decodes each, looks the command up, asks the queue
 * adapter whether it may start when its command has a rateLimit or a
 * concurrency (START_GATED → GATE_DECIDED), runs it (with its timeout and
 * AbortSignal), and settles it with the queue adapter itself (./settlements.ts:
 * acked, failed, deferred) before it starts the next. When the share is
 * over it asks the reader for the next one (RUNNER_READY) and runs the JOB
 * the reader answers with; only NO_JOB (the reader has nothing coming) ends
 * the worker's busy spell: the worker hears SHARE_DONE then, or when it must
 * decide: a failure (COMMAND_FAILED, with the unstarted rest). A drain or
 * retirement (RELEASE_UNSTARTED) gives the unstarted rest back to the queue
 * at once, and the runner asks for no more.
 *
 * Hot path: no actor, event, timer or AbortController per job unless the job
 * needs one — the signal is created lazily when a command reads
 * `this.signal`, and a timer (and its closure) only exists for commands with
 * a `timeout`. Hooks cost nothing unless somebody listens.
 *
 * On failure it decides the job's fate (the rule is ./retry-decision.ts):
 * another attempt (the command's `retries`, or a thrown `Retry`) with a
 * delay and backoff, or the failed store; the worker carries that plan to
 * the supervisor, which replaces the worker. `this` for a command is ./running-job.ts.
 *
 * Progress a job reports goes to the queue adapter (PROGRESS), which
 * coalesces and stores it; a report after the attempt ended (a timeout, a
 * stray callback) is dropped, so it cannot outlive the attempt's outcome.
 *
 * A command whose pool is not inline has only its function's call moved to
 * this runner's own thread or process (./thread-runner.ts); all the above
 * stays here. An inline job pays one field check for it.
 */
import { fromCallback } from 'xstate';
import type { Logger } from 'pino';
import type { RegisteredCommand } from '../producer/commands.js';
import { CommandTimeoutError, MessageDecodeError, UnknownCommandError, WorkerLostError, toError } from '../shared/errors.js';
import { decodeMessage, serializeValue, type Envelope } from '../codec/message.js';
import { jobEvents, type JobEvents } from '../producer/hooks.js';
import { DEFAULT_RESULT_TTL_MS, JobCancelledError, remoteError, resultRecord, type ResultRecordData } from '../producer/results.js';
import { progressKey, progressRecordValue } from '../producer/progress.js';
import {
  queueActor,
  readerActor,
  type GateDecision,
  type JobCancel,
  type JobResult,
  type LeasedMessage,
  type RetryPlan,
  type RunnerInEvent,
  type RunnerReadyEvent,
} from '../machines/protocol.js';
import type { JobSettler } from './settlements.js';
import { EventFeed, type QueueEventData, type QueueEventType } from './event-feed.js';
import type { JobMetrics } from '../observability/metrics.js';
import { runSpan, type SpanEnd } from '../observability/tracing.js';
import type { RunCommandInput, RunCommandLogic } from '../machines/worker.js';
import { composedResult } from './continuations.js';
import { decideRetry } from './retry-decision.js';
import { RunningJob, type ProgressSink } from './running-job.js';
import { PoolLanes } from './thread-runner.js';
import type { Pools } from '../pool/pools.js';
import type { Pool } from '../pool/kinds.js';

export interface CommandLookup {
  get(name: string): RegisteredCommand | undefined;
}

export interface RunCommandDeps {
  commands: CommandLookup;
  logger: Logger;
  /** Default result time to live, ms (a command's `resultTtl` wins). Default 1 day. */
  resultTtlMs?: number;
  /** Where lifecycle hooks are emitted. Default: the process-wide `jobEvents`. */
  hooks?: JobEvents;
  /** Deliveries without an outcome before a job is failed as "worker lost" (a command's `maxDeliveries` wins). Default 3. */
  maxDeliveries?: number;
  /** Where queue events go while a listener is registered (the queue adapter's feed). Default: one nobody listens to. */
  events?: EventFeed;
  /** The consumer's Prometheus metrics, when it has them (createConsumer({ metrics: true })). */
  metrics?: JobMetrics | undefined;
  /** The queue a leased message came from, for trace spans. Default: 'default'. */
  queueName?: (messageId: string) => string;
  /** The consumer's pool children; without them every command runs inline. */
  pools?: Pools | null;
  /** Where a command without its own `pool` runs. Default 'inline'. */
  pool?: Pool;
  /** Where finished jobs are settled (the queue adapter's, ./settlements.ts). Default: ACK/FAIL/DEFERRED/RELEASE events to the queue actor. */
  settlements?: JobSettler;
  /**
   * Worker id → the message its runner runs now, for the consumer's heartbeat: with shares, the
   * worker machine's `job` is the share's first message, not the one running.
   */
  running?: Map<string, LeasedMessage>;
}

export const DEFAULT_MAX_DELIVERIES = 3;

const NO_MORE: readonly LeasedMessage[] = [];

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

/** The message of the next attempt: the same envelope text with `attempt` replaced (tags and all untouched). */
function nextAttemptData(data: string, attempt: number): string {
  const envelope = JSON.parse(data) as Record<string, unknown>;
  envelope.attempt = attempt;
  return JSON.stringify(envelope);
}

/** A cancel for `jobId` is this job's: its own id, or (a pipeline's first step) the pipeline's id, its last step's. */
function cancelsJob(jobId: string, envelope: Envelope): boolean {
  return jobId === envelope.id || (envelope.flow?.next !== undefined && envelope.flow.next.at(-1)?.id === jobId);
}

export function createRunCommand({
  commands,
  logger,
  resultTtlMs = DEFAULT_RESULT_TTL_MS,
  hooks = jobEvents,
  maxDeliveries = DEFAULT_MAX_DELIVERIES,
  events = new EventFeed(),
  metrics,
  queueName = () => 'default',
  pools = null,
  pool = 'inline',
  settlements,
  running,
}: RunCommandDeps): RunCommandLogic {
  return fromCallback<RunnerInEvent, RunCommandInput>(({ input, system, self, sendBack, receive }) => {
    const { workerId, worker } = input;
    const log = logger.child({ worker: workerId });
    const debug = log.isLevelEnabled('debug');
    const info = log.isLevelEnabled('info');
    let current: RunningJob | null = null;
    /** The message, envelope and command of `current`, for its progress reports and a cancel. */
    let currentMessage: LeasedMessage | null = null;
    let currentMessageId = '';
    let currentEnvelope: Envelope | null = null;
    let currentCommand: RegisteredCommand | null = null;
    /** When `current` started (performance.now()), for its run time. */
    let currentStarted = 0;
    /** Its trace span, when the application traces (observability/tracing.ts). */
    let currentSpan: SpanEnd | null = null;
    /** Cancels of messages the worker holds but this runner has not started: message id → job id. */
    const cancelled = new Map<string, string>();
    let timer: NodeJS.Timeout | undefined;
    /** The job waiting for its gates' answer (a command with a rateLimit or concurrency). */
    let gated: { message: LeasedMessage; envelope: Envelope; command: RegisteredCommand } | null = null;
    /** The job being handled when it is composed (its envelope has a flow): its records carry what follows it. */
    let composed: Envelope | null = null;
    /** This runner's threads / processes (./thread-runner.ts), started when a job needs one. */
    const lanes = pools === null ? null : new PoolLanes(pools, pool);
    /** The share being run: the rest of the JOB after its first message, and `cursor` the index of the next to start. */
    let more: readonly LeasedMessage[] = NO_MORE;
    let cursor = 0;
    /** Jobs of the share settled so far (acked, failed, deferred). */
    let settledCount = 0;
    /** Jobs settled since the worker last heard: SHARE_DONE counts every share since its dispatch. */
    let unreported = 0;
    /** RUNNER_READY is out: the reader's JOB or NO_JOB answers it, exactly one of them. */
    let asking = false;
    /** The worker drains or retires (or is not there to name): a share's end goes to the worker, not to the reader. */
    let stopAsking = worker === undefined;
    /** The same event for every ask. */
    const ready: RunnerReadyEvent | null = worker === undefined ? null : { type: 'RUNNER_READY', worker, runner: self };
    const settle: JobSettler = settlements ?? {
      ack: (message, result) => queueActor({ system }).send({ type: 'ACK', id: message.id, delivery: message.delivery, result }),
      fail: (message, error) => queueActor({ system }).send({ type: 'FAIL', message, error }),
      deferred: (message) => queueActor({ system }).send({ type: 'DEFERRED', id: message.id, delivery: message.delivery }),
      release: (messages) => queueActor({ system }).send({ type: 'RELEASE', messages }),
    };

    /** A job of the share is settled with the queue: start the next, or ask the reader for the next share. */
    const settled = (): void => {
      settledCount++;
      if (cursor < more.length) {
        run(more[cursor++]!);
        return;
      }
      unreported += settledCount;
      more = NO_MORE;
      cursor = 0;
      settledCount = 0;
      if (cancelled.size > 0) cancelled.clear(); // cancels of this share's messages, settled or released
      // A worker that broke leaves its runner running (xstate does not stop an errored actor's children):
      // it finishes its share and asks for no more.
      const reader = stopAsking || (worker!.getSnapshot() as { status: string }).status !== 'active' ? undefined : readerActor({ system });
      if (reader === undefined) {
        reportShareDone();
        return;
      }
      asking = true;
      reader.send(ready!);
    };

    /** The worker's busy spell is over: it goes idle (or retires) and hears how many jobs were settled in it. */
    const reportShareDone = (): void => {
      const finished = unreported;
      unreported = 0;
      sendBack({ type: 'SHARE_DONE', finished });
    };

    /** A pending ask is withdrawn: the reader answers it now (or its JOB is on its way already). */
    const withdrawAsk = (): void => {
      if (asking) readerActor({ system })?.send({ type: 'RUNNER_WITHDRAW', runner: self });
    };

    /** The share's messages not started yet go back to the queue now (drain, retirement). */
    const releaseUnstarted = (): void => {
      if (cursor >= more.length) return;
      const unstarted = more.slice(cursor);
      cursor = more.length;
      settle.release(unstarted);
    };

    const record = (command: RegisteredCommand, jobId: string, data: ResultRecordData): JobResult | undefined =>
      composed !== null && composed.id === jobId
        ? composedResult(composed, data, command.options.resultTtl ?? resultTtlMs)
        : command.options.results === false
          ? undefined
          : { jobId, record: resultRecord(data), ttlMs: command.options.resultTtl ?? resultTtlMs };

    // One per actor: a job's `this.progress()` reaches the adapter through it, with no closure per job.
    const sink: ProgressSink = {
      progress: (job, text) => {
        if (job !== current || !currentCommand) return; // the attempt is over: its outcome is the last word
        const ttlMs = currentCommand.options.resultTtl ?? resultTtlMs; // kept as long as the result
        queueActor({ system }).send({
          type: 'PROGRESS',
          id: currentMessageId,
          delivery: currentMessage!.delivery,
          progress: { jobId: progressKey(job.jobId), record: text, ttlMs },
        });
        if (events.listening) publish(currentMessageId, 'progress', job.jobId, job.command, job.attempt, { progress: progressRecordValue(text) });
      },
    };

    /** A queue event for listeners; callers check `events.listening` first, so nobody listening costs nothing. */
    const publish = (messageId: string, type: QueueEventType, jobId: string, command: string, attempt: number, extra?: Partial<QueueEventData>): void =>
      events.push(messageId, { type, jobId, command, attempt, at: Date.now(), ...extra });

    const endSpan = (error?: unknown): void => {
      if (!currentSpan) return;
      const span = currentSpan;
      currentSpan = null;
      span.end(error);
    };

    const finish = (job: RunningJob): boolean => {
      if (current !== job) return false; // late settle after a timeout: ignored
      current = null;
      currentCommand = null;
      currentMessage = null;
      currentEnvelope = null;
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      return true;
    };

    const succeed = (job: RunningJob, command: RegisteredCommand, message: LeasedMessage, envelope: Envelope, started: number, value: unknown): void => {
      let serialized: string | undefined;
      if ((command.options.results !== false || composed === envelope) && value !== undefined) {
        try {
          serialized = serializeValue(value, 'result');
        } catch (error) {
          fail(job, command, message, envelope, error); // an unserializable result fails the attempt
          return;
        }
      }
      completed(job, command, message, envelope, started, serialized);
    };

    /** A run that ended well, its result already serialized (here, or in a pool's child). */
    const completed = (
      job: RunningJob,
      command: RegisteredCommand,
      message: LeasedMessage,
      envelope: Envelope,
      started: number,
      serialized: string | undefined,
    ): void => {
      if (!finish(job)) return;
      const ms = performance.now() - started;
      if (metrics) metrics.jobEnded(message.id, envelope.command, 'completed', ms / 1000);
      endSpan();
      if (info) log.info({ command: envelope.command, job: envelope.id, attempt: envelope.attempt, ms: Math.round(ms) }, 'job finished');
      if (hooks.has('completed'))
        hooks.emit('completed', { jobId: envelope.id, command: envelope.command, attempt: envelope.attempt, workerId, durationMs: ms });
      if (events.listening)
        publish(message.id, 'completed', envelope.id, envelope.command, envelope.attempt, serialized === undefined ? undefined : { value: serialized });
      // Without a record to keep (results off, not composed) there is nothing to build: the common no-op ack.
      if (command.options.results === false && composed === null) settle.ack(message, undefined);
      else {
        const data: ResultRecordData = { status: 'completed', attempt: envelope.attempt, at: Date.now() };
        if (serialized !== undefined) data.value = serialized;
        settle.ack(message, record(command, envelope.id, data));
      }
      settled();
    };

    const fail = (job: RunningJob | null, command: RegisteredCommand, message: LeasedMessage, envelope: Envelope, thrown: unknown, lost = false): void => {
      if (job && !finish(job)) return;
      const ranFor = job && metrics ? (performance.now() - currentStarted) / 1000 : undefined;
      endSpan(thrown);
      const error = toError(thrown);
      const now = Date.now();
      const next = decideRetry(command.options, envelope.attempt, thrown, lost, now);
      let retry: RetryPlan | undefined;
      let data: ResultRecordData;
      if (next) {
        retry = { data: nextAttemptData(message.data, next.attempt), runAt: next.runAt };
        data = { status: 'retrying', attempt: envelope.attempt, at: now, error: remoteError(error), runAt: next.runAt };
        if (hooks.has('retrying'))
          hooks.emit('retrying', { jobId: envelope.id, command: envelope.command, attempt: envelope.attempt, workerId, error, delayMs: next.delayMs });
      } else {
        data = { status: 'failed', attempt: envelope.attempt, at: now, error: remoteError(error) };
        if (hooks.has('failed')) hooks.emit('failed', { jobId: envelope.id, command: envelope.command, attempt: envelope.attempt, workerId, error });
        if (events.listening) publish(message.id, 'failed', envelope.id, envelope.command, envelope.attempt, { error: data.error! });
      }
      if (metrics) metrics.jobEnded(message.id, envelope.command, next ? 'retrying' : 'failed', ranFor);
      // The worker fails with it; the supervisor retries or fails the job and releases the rest of the share.
      const unstarted = more.slice(cursor);
      more = NO_MORE;
      cursor = 0;
      settledCount = 0;
      sendBack({
        type: 'COMMAND_FAILED',
        error,
        command: envelope.command,
        jobId: envelope.id,
        message,
        retry,
        result: record(command, envelope.id, data),
        unstarted,
      });
    };

    const run = (message: LeasedMessage): void => {
      let envelope: Envelope;
      let command: RegisteredCommand | undefined;
      try {
        envelope = decodeMessage(message.data);
        command = commands.get(envelope.command);
        if (!command) throw new UnknownCommandError(envelope.command);
        composed = envelope.flow === undefined ? null : envelope;
      } catch (error) {
        const reason =
          error instanceof MessageDecodeError || error instanceof UnknownCommandError ? error.message : `invalid message: ${toError(error).message}`;
        log.warn({ messageId: message.id, reason }, 'message rejected');
        if (metrics) metrics.jobEnded(message.id, 'unknown', 'rejected');
        settle.fail(message, reason);
        settled();
        return;
      }
      // A gated job asks the queue first, on every delivery: the backend then knows which lease
      // holds a slot, whatever happens to the job next (expired, lost, run).
      const gates = command.startGates?.(envelope);
      if (gates) {
        gated = { message, envelope, command };
        queueActor({ system }).send({ type: 'START_GATED', id: message.id, delivery: message.delivery, gates, replyTo: self });
        return;
      }
      begin(message, envelope, command);
    };

    const gateDecided = (id: string, decision: GateDecision, error: unknown): void => {
      if (!gated || gated.message.id !== id) return;
      const { message, envelope, command } = gated;
      gated = null;
      if (decision === 'started') {
        begin(message, envelope, command);
        return;
      }
      if (decision === 'error') {
        log.warn(
          { command: envelope.command, job: envelope.id, err: toError(error) },
          'could not ask the queue whether the job may start; it runs when its lease lapses',
        );
      } else if (debug) {
        log.debug(
          { command: envelope.command, job: envelope.id },
          decision === 'deferred' ? 'job deferred by its rate limit or concurrency' : 'lease lost before the job started',
        );
      }
      if (metrics) metrics.jobEnded(message.id, envelope.command, 'deferred');
      settle.deferred(message);
      settled();
    };

    const begin = (message: LeasedMessage, envelope: Envelope, command: RegisteredCommand): void => {
      if (envelope.expiresAt !== undefined && Date.now() > envelope.expiresAt) {
        log.info(
          { command: envelope.command, job: envelope.id, expiresAt: new Date(envelope.expiresAt).toISOString() },
          'job expired before it started; skipped',
        );
        if (hooks.has('expired'))
          hooks.emit('expired', { jobId: envelope.id, command: envelope.command, attempt: envelope.attempt, workerId, expiresAt: envelope.expiresAt });
        if (metrics) metrics.jobEnded(message.id, envelope.command, 'expired');
        settle.ack(message, record(command, envelope.id, { status: 'expired', attempt: envelope.attempt, at: Date.now() }));
        settled();
        return;
      }
      // message.attempt counts deliveries of this attempt; each one before this had no outcome.
      if (message.attempt > (command.options.maxDeliveries ?? maxDeliveries)) {
        fail(null, command, message, envelope, new WorkerLostError(envelope.command, message.attempt - 1), true);
        return;
      }
      if (cancelled.size > 0 && cancelled.has(message.id)) {
        const jobId = cancelled.get(message.id);
        cancelled.delete(message.id);
        if (jobId !== undefined && cancelsJob(jobId, envelope)) {
          settleCancelled(message, envelope, command, false);
          return;
        }
      }
      const cmd = command;
      const env = envelope;
      const job = new RunningJob(env.id, env.command, env.attempt, sink);
      current = job;
      currentMessage = message;
      currentMessageId = message.id;
      running?.set(workerId, message);
      currentEnvelope = env;
      currentCommand = cmd;
      const started = performance.now();
      currentStarted = started;
      currentSpan = runSpan(env.command, queueName(message.id), env.id, env.attempt, env.trace);
      if (debug) log.debug({ command: env.command, job: env.id, attempt: env.attempt }, 'job started');
      if (hooks.has('started')) hooks.emit('started', { jobId: env.id, command: env.command, attempt: env.attempt, workerId });
      if (events.listening) publish(message.id, 'started', env.id, env.command, env.attempt);

      const timeout = cmd.options.timeout;
      const where = lanes === null ? 'inline' : (cmd.options.pool ?? lanes.pool);
      if (where !== 'inline') {
        // A timeout counts the command's own run: a pooled job's starts once its thread or process is up.
        const onStart = timeout === undefined ? undefined : () => armTimeout(job, cmd, message, env, timeout);
        lanes!.run(where, job, message.data, cmd.options.results !== false || composed === env, message.attempt, onStart).then(
          (serialized) => completed(job, cmd, message, env, started, serialized),
          (error) => fail(job, cmd, message, env, error, error instanceof WorkerLostError),
        );
        return;
      }
      if (timeout !== undefined) armTimeout(job, cmd, message, env, timeout);
      let result: unknown;
      try {
        result = cmd.fn.apply(job, env.args);
      } catch (error) {
        fail(job, cmd, message, env, error);
        return;
      }
      if (isThenable(result)) {
        result.then(
          (value) => succeed(job, cmd, message, env, started, value),
          (error) => fail(job, cmd, message, env, error),
        );
      } else {
        succeed(job, cmd, message, env, started, result);
      }
    };

    const armTimeout = (job: RunningJob, cmd: RegisteredCommand, message: LeasedMessage, env: Envelope, timeout: number): void => {
      if (current !== job) return;
      timer = setTimeout(() => {
        const error = new CommandTimeoutError(env.command, timeout);
        job.abort(error);
        fail(job, cmd, message, env, error);
      }, timeout);
    };

    /** Ends a cancelled job: acked, not retried, recorded as cancelled (`ran`: it had started, its signal aborted). */
    const settleCancelled = (message: LeasedMessage, envelope: Envelope, command: RegisteredCommand, ran: boolean): void => {
      log.info(
        { command: envelope.command, job: envelope.id, attempt: envelope.attempt },
        ran ? 'job cancelled while running' : 'job cancelled before it started',
      );
      if (events.listening) publish(message.id, 'cancelled', envelope.id, envelope.command, envelope.attempt);
      if (metrics) metrics.jobEnded(message.id, envelope.command, 'cancelled', ran ? (performance.now() - currentStarted) / 1000 : undefined);
      if (ran) endSpan(new JobCancelledError(envelope.id));
      settle.ack(message, record(command, envelope.id, { status: 'cancelled', attempt: envelope.attempt, at: Date.now() }));
      settled();
    };

    const cancel = (cancels: readonly JobCancel[]): void => {
      let running: string | null = null;
      for (const { id, jobId } of cancels) {
        if (current && id === currentMessageId) {
          if (cancelsJob(jobId, currentEnvelope!)) running = jobId;
        } else if (id !== currentMessageId) {
          // A queued message (or the one waiting for its gates): it is cancelled when it comes up.
          cancelled.set(id, jobId);
        }
      }
      // Last: ending the running job starts the next of the share, whose cancel must be known by then.
      if (running !== null && current) {
        const job = current;
        const message = currentMessage!;
        const envelope = currentEnvelope!;
        const command = currentCommand!;
        job.abort(new JobCancelledError(running));
        finish(job);
        settleCancelled(message, envelope, command, true);
      }
    };

    receive((event) => {
      if (event.type === 'JOB') {
        if (asking) {
          asking = false;
          if (stopAsking) {
            // The reader's answer crossed the worker's drain or retirement: nothing of it starts.
            settle.release(event.more === undefined ? [event.message] : [event.message, ...event.more]);
            reportShareDone();
            return;
          }
        }
        more = event.more ?? NO_MORE;
        cursor = 0;
        settledCount = 0;
        run(event.message);
      } else if (event.type === 'NO_JOB') {
        if (!asking) return;
        asking = false;
        reportShareDone();
      } else if (event.type === 'RELEASE_UNSTARTED') {
        // Drain or retire: the unstarted rest goes back, and no more shares are asked for.
        releaseUnstarted();
        stopAsking = true;
        withdrawAsk();
      } else if (event.type === 'GATE_DECIDED') gateDecided(event.id, event.decision, event.error);
      else if (event.type === 'CANCEL') cancel(event.cancels);
      else if (event.type === 'ABORT') current?.abort(new Error(event.reason));
    });

    return () => {
      withdrawAsk(); // stopped while the reader holds its ask: the reader must not hand it a share
      if (timer) clearTimeout(timer);
      running?.delete(workerId);
      current?.abort(new Error('worker stopped'));
      endSpan(new Error('worker stopped'));
      current = null;
      currentCommand = null;
      gated = null;
      lanes?.close();
    };
  });
}
