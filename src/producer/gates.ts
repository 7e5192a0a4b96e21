/**
 * A command's `rateLimit` and `concurrency`: their options, the keys a job
 * carries (computed from its arguments when it is enqueued, so a key function
 * that throws or returns no string refuses the enqueue and nothing is
 * written), and the gates a consumer asks the backend to pass before it
 * starts the job (BaseQueue.startGated).
 *
 * Keys are per command: a gate's stored key is the command's name, then
 * `:` and the key function's value when there is one.
 */
import { z } from 'zod';
import { checkGateKey, type StartGates } from '../backends/base.js';
import { ConfigError, describeValue } from '../shared/errors.js';
import { callback, integer, invalidOption } from '../shared/options.js';

type KeyFunction = (...args: never[]) => string;

export interface RateLimitOptions {
  /** At most this many starts … (an integer ≥ 1) */
  limit: number;
  /** … in any window of this many ms (an integer ≥ 1; sliding, not fixed buckets). */
  per: number;
  /** One window per value of this function of the job's arguments (default: one for the command). */
  key?: KeyFunction;
}

export interface ConcurrencyOptions {
  /** At most this many jobs running at once (an integer ≥ 1) … */
  limit: number;
  /** … per value of this function of the job's arguments (default: for the command). */
  key?: KeyFunction;
}

const GATE_LIMIT_MAX = 1_000_000;

/** queueCommand's `rateLimit` field. @internal */
export const rateLimitField = z.strictObject(
  {
    limit: integer(1, GATE_LIMIT_MAX),
    per: integer(1, 2 ** 31),
    key: callback<KeyFunction>().optional(),
  },
  { error: 'must be { limit: integer ≥ 1, per: ms ≥ 1, key?: (...args) => string }' },
);

/** queueCommand's `concurrency` field. @internal */
export const concurrencyField = z.strictObject(
  {
    limit: integer(1, GATE_LIMIT_MAX),
    key: callback<KeyFunction>().optional(),
  },
  { error: 'must be { limit: integer ≥ 1, key?: (...args) => string }' },
);

/** The gate keys a job carries in its envelope: only the key functions' values (absent: the command's gate). */
export interface GateKeys {
  rateKey?: string;
  concurrencyKey?: string;
}

function keyValue(command: string, option: string, key: KeyFunction, args: readonly unknown[]): string {
  let value: unknown;
  try {
    value = (key as unknown as (...a: readonly unknown[]) => unknown)(...args);
  } catch (error) {
    throw new ConfigError(`${command}: ${option}.key threw: ${error instanceof Error ? error.message : describeValue(error)}; nothing was enqueued`);
  }
  if (typeof value !== 'string') throw invalidOption(command, `${option}.key()`, value, 'must return a non-empty string');
  try {
    checkGateKey(value, option);
  } catch (error) {
    throw new ConfigError(`${command}: ${(error as Error).message}; nothing was enqueued`);
  }
  return value;
}

/**
 * What a command's gates need of each enqueue: null when it has no key function (nothing to
 * compute, nothing added to the envelope), else a function of the arguments that throws a
 * ConfigError naming the option when a key function misbehaves.
 */
export function gateKeysOf(
  command: string,
  rateLimit: RateLimitOptions | undefined,
  concurrency: ConcurrencyOptions | undefined,
): ((args: readonly unknown[]) => GateKeys) | null {
  const rateKey = rateLimit?.key;
  const concurrencyKey = concurrency?.key;
  if (!rateKey && !concurrencyKey) return null;
  return (args) => {
    const keys: GateKeys = {};
    if (rateKey) keys.rateKey = keyValue(command, 'rateLimit', rateKey, args);
    if (concurrencyKey) keys.concurrencyKey = keyValue(command, 'concurrency', concurrencyKey, args);
    return keys;
  };
}

/** What the consumer passes to startGated for one job of a gated command; null when the command has no gate. */
export function startGatesOf(
  command: string,
  rateLimit: RateLimitOptions | undefined,
  concurrency: ConcurrencyOptions | undefined,
): ((keys: GateKeys) => StartGates) | null {
  if (!rateLimit && !concurrency) return null;
  // Commands without key functions pass the same gates for every job: built once.
  const fixed: StartGates = {
    ...(rateLimit ? { rate: { key: command, limit: rateLimit.limit, perMs: rateLimit.per } } : {}),
    ...(concurrency ? { concurrency: { key: command, limit: concurrency.limit } } : {}),
  };
  if (!rateLimit?.key && !concurrency?.key) return () => fixed;
  return (keys) => ({
    ...(rateLimit ? { rate: { key: keys.rateKey === undefined ? command : `${command}:${keys.rateKey}`, limit: rateLimit.limit, perMs: rateLimit.per } } : {}),
    ...(concurrency
      ? { concurrency: { key: keys.concurrencyKey === undefined ? command : `${command}:${keys.concurrencyKey}`, limit: concurrency.limit } }
      : {}),
  });
}
