/**
 * The run-command actor: one per worker, for the worker's whole life. It
 * receives RUN events, decodes the message, looks the command up, runs it
 * (with its timeout and AbortSignal) and reports back to its worker.
 *
 * Hot path: no actor, timer or AbortController per job unless the job needs
 * one — the signal is created lazily when a command reads `this.signal`, and
 * a timer only exists for commands with a `timeout`.
 */
import { fromCallback } from 'xstate';
import type { Logger } from 'pino';
import type { JobContext, RegisteredCommand } from '../commands.js';
import { CommandTimeoutError, MessageDecodeError, UnknownCommandError, toError } from '../errors.js';
import { decodeMessage, type Envelope } from '../message.js';
import type { LeasedMessage, RunnerInEvent, RunnerOutEvent } from '../machines/protocol.js';
import type { RunCommandInput, RunCommandLogic } from '../machines/worker.js';

export interface CommandLookup {
  get(name: string): RegisteredCommand | undefined;
}

export interface RunCommandDeps {
  commands: CommandLookup;
  logger: Logger;
}

/** `this` for a running command; the AbortController exists only once somebody asks for the signal. */
class RunningJob implements JobContext {
  #controller: AbortController | null = null;
  #abortReason: unknown = undefined;
  constructor(
    readonly jobId: string,
    readonly command: string,
    readonly attempt: number,
  ) {}

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

export function createRunCommand({ commands, logger }: RunCommandDeps): RunCommandLogic {
  return fromCallback<RunnerInEvent, RunCommandInput>(({ input, sendBack, receive }) => {
    const log = logger.child({ worker: input.workerId });
    const debug = log.isLevelEnabled('debug');
    const info = log.isLevelEnabled('info');
    let current: RunningJob | null = null;
    let timer: NodeJS.Timeout | undefined;

    const settle = (job: RunningJob, event: RunnerOutEvent, started: number, envelope: Envelope): void => {
      if (current !== job) return; // late settle after a timeout: ignored
      current = null;
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      if (event.type === 'COMMAND_DONE' && info) {
        log.info({ command: envelope.command, job: envelope.id, attempt: envelope.attempt, ms: Math.round(performance.now() - started) }, 'job finished');
      }
      sendBack(event);
    };

    const run = (message: LeasedMessage): void => {
      let envelope: Envelope;
      let command: RegisteredCommand | undefined;
      try {
        envelope = decodeMessage(message.data);
        command = commands.get(envelope.command);
        if (!command) throw new UnknownCommandError(envelope.command);
      } catch (error) {
        const reason = error instanceof MessageDecodeError || error instanceof UnknownCommandError ? error.message : `invalid message: ${toError(error).message}`;
        log.warn({ messageId: message.id, reason }, 'message rejected');
        sendBack({ type: 'MESSAGE_REJECTED', reason });
        return;
      }
      const job = new RunningJob(envelope.id, envelope.command, envelope.attempt);
      current = job;
      const started = performance.now();
      if (debug) log.debug({ command: envelope.command, job: envelope.id, attempt: envelope.attempt }, 'job started');
      const done: RunnerOutEvent = { type: 'COMMAND_DONE', id: message.id };
      const fail = (error: unknown) =>
        settle(job, { type: 'COMMAND_FAILED', error: toError(error), command: envelope.command, jobId: envelope.id }, started, envelope);

      const timeout = command.options.timeout;
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          const error = new CommandTimeoutError(envelope.command, timeout);
          job.abort(error);
          fail(error);
        }, timeout);
      }
      let result: unknown;
      try {
        result = command.fn.apply(job, envelope.args);
      } catch (error) {
        fail(error);
        return;
      }
      if (isThenable(result)) {
        result.then(() => settle(job, done, started, envelope), fail);
      } else {
        settle(job, done, started, envelope);
      }
    };

    receive((event) => {
      if (event.type === 'RUN') run(event.message);
      else if (event.type === 'ABORT') current?.abort(new Error(event.reason));
    });

    return () => {
      if (timer) clearTimeout(timer);
      current?.abort(new Error('worker stopped'));
      current = null;
    };
  });
}
