/**
 * Options of taskmill's public entry points, checked one way. Each entry
 * point (createConsumer, configure, queueCommand, the queue classes, the
 * CLI's numeric flags) declares its options once, in a zod schema built from
 * the fields below, with their defaults beside it; `parseOptions` turns the
 * first zod issue into a ConfigError that names the entry point, the option,
 * the bad value and what was expected:
 *
 *   createConsumer: invalid workers 0: must be an integer ≥ 1
 *
 * Every field carries its own "must be …" text (zod's `error` param), so the
 * message is the same wherever the field is used.
 *
 * Arguments checked on every call of the enqueue path (a write's `runAt`,
 * `schedule({ delay })`, result records) use the hand predicates at the end
 * instead of a zod parse, so a write costs what it did; they share the texts
 * and the message format, and test/shared/options.test.ts holds each
 * predicate and its field to the same answers.
 */
import { z } from 'zod';
import { redactText } from './config.js';
import { ConfigError, describeValue } from './errors.js';

/** How a bound reads in a message: `≥ 1`, `from 1 to 1024`. */
function range(min: number, max?: number): string {
  return max === undefined ? `≥ ${min}` : `from ${min} to ${max}`;
}

/** The "must be …" texts, for the hand checks and the messages built around them. */
export const EXPECTED = {
  integer: (min: number, max?: number) => `must be an integer ${range(min, max)}`,
  number: (min: number) => `must be a number ≥ ${min}`,
  millis: (min: number) => `must be a number of milliseconds ≥ ${min}`,
  positiveMillis: 'must be a number of milliseconds > 0',
  seconds: (min: number) => `must be a number of seconds ≥ ${min}`,
  epochMs: 'must be a time in milliseconds since the epoch',
  boolean: 'must be true or false',
  nonEmptyString: 'must be a non-empty string',
  string: 'must be a string',
  function: 'must be a function',
} as const;

// ── fields ────────────────────────────────────────────────────────────────

/** An integer (a safe one) from `min`, up to `max` when given. */
export function integer(min: number, max?: number): z.ZodNumber {
  const error = EXPECTED.integer(min, max);
  const field = z.number({ error }).int({ error }).min(min, { error });
  return max === undefined ? field : field.max(max, { error });
}

/** A finite number ≥ `min` (a factor, a count that may be fractional). */
export function number(min: number): z.ZodNumber {
  const error = EXPECTED.number(min);
  return z.number({ error }).min(min, { error });
}

/** A growth factor: a number ≥ 1. */
export function factor(): z.ZodNumber {
  return number(1);
}

/** A duration in milliseconds ≥ `min` (fractions allowed; finite). */
export function millis(min = 0): z.ZodNumber {
  const error = EXPECTED.millis(min);
  return z.number({ error }).min(min, { error });
}

/** A duration in milliseconds > 0. */
export function positiveMillis(): z.ZodNumber {
  const error = EXPECTED.positiveMillis;
  return z.number({ error }).positive({ error });
}

/** A duration in seconds ≥ `min` (the CLI's unit). */
export function seconds(min: number): z.ZodNumber {
  const error = EXPECTED.seconds(min);
  return z.number({ error }).min(min, { error });
}

/** A point in time: milliseconds since the epoch (any finite number; past means now). */
export function epochMs(): z.ZodNumber {
  return z.number({ error: EXPECTED.epochMs });
}

export function boolean(): z.ZodBoolean {
  return z.boolean({ error: EXPECTED.boolean });
}

/** A string of 1 to `max` characters. */
export function nonEmptyString(max?: number): z.ZodString {
  const error = max === undefined ? EXPECTED.nonEmptyString : `must be a string of 1 to ${max} characters`;
  const field = z.string({ error }).min(1, { error });
  return max === undefined ? field : field.max(max, { error });
}

/** A string matching `pattern`; `expected` says what in words ("must be 1-64 characters from …"). */
export function matching(pattern: RegExp, expected: string): z.ZodString {
  return z.string({ error: expected }).regex(pattern, { error: expected });
}

/** A function (a callback option such as onWarning); its signature is the type's business. */
export function callback<T extends (...args: never[]) => unknown>(): z.ZodType<T> {
  return z.custom<T>((value) => typeof value === 'function', { error: EXPECTED.function });
}

/** An object handed in as is (a logger, a registry, a clock): only its being an object is checked. */
export function object<T>(expected: string, test: (value: object) => boolean = () => true): z.ZodType<T> {
  return z.custom<T>((value) => typeof value === 'object' && value !== null && test(value), { error: expected });
}

/** One of a few strings (`pool: 'threads'`, `--pool threads`): the message lists them. */
export function choice<const T extends readonly [string, ...string[]]>(values: T) {
  const error = `must be one of ${values.join(', ')}`;
  return z.enum(values, { error });
}

/** One of several fields; `expected` says which in words, since zod's union issue only says "Invalid input". */
export function oneOf<const T extends readonly z.core.SomeType[]>(options: T, expected: string): z.ZodUnion<T> {
  return z.union(options, { error: expected });
}

// ── parsing ───────────────────────────────────────────────────────────────

/**
 * The ConfigError of one bad option: `entryPoint: invalid option value: expected`.
 * The value is redacted like a URL (a queue URL passed where the options go
 * must not show its password).
 */
export function invalidOption(entryPoint: string, option: string, value: unknown, expected: string): ConfigError {
  return new ConfigError(`${entryPoint ? `${entryPoint}: ` : ''}invalid ${option} ${redactText(describeValue(value))}: ${expected}`);
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  return value;
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i > 0 ? '.' : ''}${String(key)}`)).join('');
}

function issueError(issue: z.core.$ZodIssue, input: unknown, entryPoint: string, schema: z.ZodType): ConfigError {
  if (issue.code === 'unrecognized_keys') {
    const known = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
    const keys = issue.keys.map((key) => JSON.stringify(key)).join(', ');
    return new ConfigError(
      `${entryPoint}: unknown option${issue.keys.length > 1 ? 's' : ''} ${keys}${known.length > 0 ? ` (known: ${known.join(', ')})` : ''}`,
    );
  }
  if (issue.path.length === 0) {
    return invalidOption(entryPoint, 'options', input, issue.code === 'invalid_type' ? 'must be an object' : issue.message);
  }
  return invalidOption(entryPoint, pathText(issue.path), valueAt(input, issue.path), issue.message);
}

/**
 * Parses an entry point's options (defaults filled in) or throws a ConfigError
 * naming `entryPoint`, the first bad option, its value and what was expected.
 * For construction and definition time; not for a per-job path.
 */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, entryPoint: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw issueError(result.error.issues[0]!, value, entryPoint, schema);
}

/** Parses one value with a field, naming it `option` in the error (the CLI's flags, a positional argument). */
export function parseOption<S extends z.ZodType>(field: S, value: unknown, entryPoint: string, option: string): z.output<S> {
  const result = field.safeParse(value);
  if (result.success) return result.data;
  throw invalidOption(entryPoint, option, value, result.error.issues[0]!.message);
}

/**
 * `true` only when a schema's input keys are exactly an options interface's:
 * `const _declared: DeclaresEvery<z.input<typeof schema>, Options> = true` fails
 * to compile when an option is added to one and not the other.
 */
export type DeclaresEvery<SchemaInput, Options> = [Exclude<keyof SchemaInput, keyof Options>, Exclude<keyof Options, keyof SchemaInput>] extends [never, never]
  ? true
  : { missing: Exclude<keyof Options, keyof SchemaInput>; extra: Exclude<keyof SchemaInput, keyof Options> };

// ── hand checks for the per-call paths ────────────────────────────────────
// Same answers as the fields above (test/shared/options.test.ts), without a
// zod parse: they run on every write.

/** What epochMs() accepts. */
export function isEpochMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** What millis(min) accepts. */
export function isMillis(value: unknown, min = 0): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= min;
}

/** What positiveMillis() accepts. */
export function isPositiveMillis(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

/** What nonEmptyString() accepts. */
export function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}
