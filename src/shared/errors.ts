import { inspect } from 'node:util';
/**
 * Every error taskmill throws on purpose. Each has a stable `code` so callers
 * can branch without matching message text. Messages never contain payloads
 * or secrets (URLs are redacted before they reach a message).
 */

export class TaskmillError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A bad option, URL, queue name or command definition. */
export class ConfigError extends TaskmillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TASKMILL_CONFIG', message, options);
  }
}

/** An argument (or result) that cannot be serialized; `path` names it, e.g. `args[1].b`. */
export class SerializationError extends TaskmillError {
  readonly path: string;
  constructor(path: string, reason: string) {
    super('ERR_TASKMILL_SERIALIZE', `cannot serialize ${path}: ${reason}`);
    this.path = path;
  }
}

/** The encoded message is larger than the configured limit; nothing was written. */
export class PayloadTooLargeError extends TaskmillError {
  readonly bytes: number;
  readonly limit: number;
  constructor(command: string, bytes: number, limit: number) {
    super(
      'ERR_TASKMILL_PAYLOAD_TOO_LARGE',
      `message for command "${command}" is ${bytes} bytes, over the ${limit}-byte limit (raise it with configure({ maxPayloadBytes }))`,
    );
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** A message read from a queue that is not a valid envelope. The reason never quotes the payload. */
export class MessageDecodeError extends TaskmillError {
  constructor(reason: string) {
    super('ERR_TASKMILL_DECODE', `invalid message: ${reason}`);
  }
}

/** No command is registered under the message's command name. */
export class UnknownCommandError extends TaskmillError {
  readonly command: string;
  constructor(command: string) {
    super('ERR_TASKMILL_UNKNOWN_COMMAND', `no command registered as "${command}"`);
    this.command = command;
  }
}

/**
 * A job delivered `deliveries` times without an outcome: each consumer that
 * leased it died or lost the lease before it could ack or fail it.
 */
export class WorkerLostError extends TaskmillError {
  readonly command: string;
  readonly deliveries: number;
  /** `how`: what ended the run when it is known (a pool's thread or process died under it). */
  constructor(command: string, deliveries: number, how?: string) {
    super(
      'ERR_TASKMILL_WORKER_LOST',
      how === undefined
        ? `worker lost: command "${command}" was delivered ${deliveries} times without an outcome (the consumer running it exited, crashed or lost its lease); not run again`
        : `worker lost: command "${command}" ${how} (delivery ${deliveries}); not run again`,
    );
    this.command = command;
    this.deliveries = deliveries;
  }
}

/** Ack/fail/extend after this consumer's lease on the message was lost (expired and reclaimed). */
export class LeaseLostError extends TaskmillError {
  readonly id: string;
  constructor(id: string) {
    super('ERR_TASKMILL_LEASE_LOST', `lease on message ${id} was lost (expired and reclaimed); refused`);
    this.id = id;
  }
}

/**
 * The backend could not be reached or answered with an error; the message
 * carries the server's reason, redacted. `permanent` marks what waiting cannot
 * mend (authentication, an unknown database or role, TLS): opening a queue
 * gives up on it at once instead of retrying until `openTimeoutMs`.
 */
export class QueueConnectionError extends TaskmillError {
  readonly permanent: boolean;
  /** The driver's error code when it had one (a SQLSTATE such as `28P01`, or `ECONNREFUSED`). */
  readonly driverCode: string | undefined;
  constructor(message: string, options: { cause?: unknown; permanent?: boolean; driverCode?: string } = {}) {
    super('ERR_TASKMILL_CONNECTION', message, options.cause === undefined ? undefined : { cause: options.cause });
    this.permanent = options.permanent ?? false;
    this.driverCode = options.driverCode;
  }
}

/** The command did not settle within its `timeout`. */
export class CommandTimeoutError extends TaskmillError {
  constructor(command: string, ms: number) {
    super('ERR_TASKMILL_TIMEOUT', `command "${command}" timed out after ${ms} ms`);
  }
}

/**
 * Turns anything a command may throw or reject with — a string, undefined,
 * null, a BigInt, an object with a cycle — into an Error with a readable
 * message, without throwing itself.
 */
export function toError(thrown: unknown): Error {
  try {
    if (thrown instanceof Error) return thrown;
  } catch {
    // a Proxy whose traps throw: fall through to a description that touches nothing
  }
  let text: string;
  try {
    text = typeof thrown === 'string' ? thrown : inspect(thrown, { depth: 3, breakLength: Infinity, maxStringLength: 500 });
  } catch {
    text = typeof thrown;
  }
  const error = new Error(`non-Error thrown: ${text}`);
  error.name = 'NonError';
  return error;
}

/** The text kept with a failed message: name, message and stack (no payload). Never throws. */
export function describeError(error: unknown): string {
  let stack: string;
  try {
    const e = toError(error);
    stack = typeof e.stack === 'string' && e.stack.length > 0 ? e.stack : `${String(e.name)}: ${String(e.message)}`;
  } catch {
    stack = 'Error: (an error that could not be described)';
  }
  return stack.length > 8000 ? `${stack.slice(0, 8000)}…` : stack;
}

/**
 * A value as an error message shows it: strings quoted, objects as JSON
 * (not "[object Object]"), cut at 80 characters (a bad option may be big).
 */
export function describeValue(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'function') text = `a function${value.name ? ` (${value.name})` : ''}`;
  else if (typeof value === 'bigint') text = `${value}n`;
  else if (typeof value === 'symbol' || value === undefined || typeof value !== 'object' || value === null) text = String(value);
  else {
    try {
      text = JSON.stringify(value) ?? Object.prototype.toString.call(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
