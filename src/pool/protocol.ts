/**
 * What a consumer and a pool's thread or process say to each other. Only
 * strings and plain objects cross: a job goes as its message text (the child
 * decodes it as the consumer would, so its arguments are the same values an
 * inline run gets), a result comes back as its tagged serialization (made in
 * the child, so a result that cannot be stored fails with the inline error),
 * progress as its checked record, errors as name, message, stack and their
 * primitive fields. Nothing here can fail to be cloned.
 */
import { isRetryRequest } from '../actors/retry-decision.js';
import { Retry } from '../producer/results.js';
import { toError } from '../shared/errors.js';

/** An error as it crosses: enough to rebuild what `fail` and the failed store read. */
export interface WireError {
  name: string;
  message: string;
  stack: string | undefined;
  /** Own enumerable fields with primitive values (`code`, `errno`, …). */
  fields?: Record<string, string | number | boolean | null>;
  /** A thrown `Retry`: its delay (null when it gave none). */
  retry?: number | null;
}

export type ParentMessage =
  /** Import these modules, then check that these commands were registered. */
  | { t: 'init'; modules: readonly string[]; commands: readonly string[] }
  /** Run the job in `data` (its message text); serialize its result when `result`. */
  | { t: 'run'; seq: number; data: string; result: boolean }
  /** Abort job `seq`'s signal with this reason (a timeout, a cancel, a forced stop). */
  | { t: 'abort'; seq: number; reason: WireError };

export type ChildMessage =
  | { t: 'ready' }
  | { t: 'init-failed'; message: string }
  | { t: 'progress'; seq: number; record: string }
  | { t: 'done'; seq: number; value: string | undefined }
  | { t: 'failed'; seq: number; error: WireError }
  /** A process child's uncaught error, sent just before it exits. */
  | { t: 'fatal'; error: WireError };

/** Never throws: a hostile thrown value (a Proxy, a getter that throws) still gives a readable error. */
export function toWire(thrown: unknown): WireError {
  if (isRetryRequest(thrown)) {
    return { name: 'Retry', message: String(thrown.message), stack: thrown.stack, retry: thrown.delay ?? null };
  }
  const error = toError(thrown);
  const wire: WireError = { name: 'Error', message: '', stack: undefined };
  try {
    wire.name = String(error.name);
    wire.message = String(error.message);
    wire.stack = typeof error.stack === 'string' ? error.stack : undefined;
    for (const [key, value] of Object.entries(error) as [string, unknown][]) {
      if (key === 'name' || key === 'message' || key === 'stack') continue;
      if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') (wire.fields ??= {})[key] = value;
    }
  } catch {
    wire.message ||= '(an error that could not be read)';
  }
  return wire;
}

/** The error a consumer fails the job with: a Retry again when it was one, else an Error of the same name, message and stack. */
export function fromWire(wire: WireError): Error {
  if (wire.retry !== undefined) {
    const retry = new Retry({ message: wire.message, ...(wire.retry !== null ? { delay: wire.retry } : {}) });
    if (wire.stack !== undefined) retry.stack = wire.stack;
    return retry;
  }
  const error = new Error(wire.message);
  if (wire.fields) Object.assign(error, wire.fields);
  Object.defineProperty(error, 'name', { value: wire.name, configurable: true, writable: true, enumerable: false });
  error.stack = wire.stack ?? `${wire.name}: ${wire.message}`;
  return error;
}
