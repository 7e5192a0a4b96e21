/**
 * The numeric flags of the `taskmill` command, declared once: the field that
 * checks each (from shared/options.ts, so `-t 0` is refused the way
 * `createConsumer({ workers: 0 })` is) and its default — the library's own
 * where the flag maps onto an option (seconds here, milliseconds there).
 * cli.ts hands them to commander; test/shared/options.test.ts holds
 * docs/cli.md to these defaults.
 */
import { InvalidArgumentError } from 'commander';
import type { z } from 'zod';
import { CONSUMER_DEFAULTS } from '../consumer/consumer.js';
import { QUEUE_DEFAULTS } from '../backends/base.js';
import { DEFAULT_INSPECT_PORT } from '../inspect/relay.js';
import { ConfigError } from '../shared/errors.js';
import { factor, integer, parseOption, seconds } from '../shared/options.js';
import { poolField, type Pool } from '../pool/kinds.js';

export interface NumericFlag {
  /** The long flag, as messages name it. */
  readonly flag: string;
  readonly field: z.ZodType<number>;
  /** undefined: the flag is off unless given. */
  readonly default: number | undefined;
}

const flag = (name: string, field: z.ZodType<number>, fallback?: number): NumericFlag => ({ flag: name, field, default: fallback });

export const FLAGS = {
  // consume
  threads: flag('--threads', integer(1, 1024), CONSUMER_DEFAULTS.workers),
  verbosity: flag('--verbosity', integer(0, 2), 1),
  delay: flag('--delay', seconds(0.001), CONSUMER_DEFAULTS.pollDelayMs / 1000),
  backoff: flag('--backoff', factor(), CONSUMER_DEFAULTS.pollBackoff),
  maxDelay: flag('--max-delay', seconds(0.001), CONSUMER_DEFAULTS.maxPollDelayMs / 1000),
  grace: flag('--grace', seconds(0), CONSUMER_DEFAULTS.drainTimeoutMs / 1000),
  prefetch: flag('--prefetch', integer(0, 100_000), CONSUMER_DEFAULTS.prefetch),
  lease: flag('--lease', seconds(0.1), QUEUE_DEFAULTS.leaseMs / 1000),
  maxDeliveries: flag('--max-deliveries', integer(1, 1000), CONSUMER_DEFAULTS.maxDeliveries),
  /** Off by default; `--inspect` alone means this port. */
  inspect: flag('--inspect', integer(0, 65_535), DEFAULT_INSPECT_PORT),
  /** Off unless given. */
  metrics: flag('--metrics', integer(0, 65_535)),
  connectTimeout: flag('--connect-timeout', seconds(0), CONSUMER_DEFAULTS.openTimeoutMs / 1000),
  // dashboard
  dashboardPort: flag('--port', integer(0, 65_535), 7770),
  /** Off (Node's own heap limit) unless given. */
  poolMemory: flag('--pool-memory', integer(16, 1_000_000)),
  // schedule, failed
  count: flag('--count', integer(1, 1000), 3),
  limit: flag('--limit', integer(1, 100_000), 50),
} as const satisfies Record<string, NumericFlag>;

/**
 * The value a flag's text stands for: the number it spells, else the text
 * itself (so the message shows `"x"`, not NaN).
 */
function valueOf(raw: string): number | string {
  const value = raw.trim() === '' ? Number.NaN : Number(raw);
  return Number.isNaN(value) ? raw : value;
}

/**
 * Parses a flag's text with its field. A bad value throws commander's
 * InvalidArgumentError (a one-line usage error, exit 1) with the shared
 * message: `invalid --threads 0: must be an integer from 1 to 1024`. No entry
 * point in front: commander's line already names the option.
 */
export function parseFlag(spec: NumericFlag, raw: string): number {
  try {
    return parseOption(spec.field, valueOf(raw), '', spec.flag);
  } catch (error) {
    if (error instanceof ConfigError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

/** `--pool KIND`, checked by createConsumer's own field: `invalid --pool "fibers": must be one of inline, threads, processes`. */
export function parsePool(raw: string): Pool {
  try {
    return parseOption(poolField, raw, '', '--pool');
  } catch (error) {
    if (error instanceof ConfigError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

/** The argParser of a numeric flag. */
export function argParser(spec: NumericFlag): (raw: string) => number {
  return (raw) => parseFlag(spec, raw);
}
