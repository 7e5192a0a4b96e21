/**
 * The message envelope: the wire form of one job on a queue.
 *
 * Wire format: one JSON object
 *   {"v":1,"id":"…","command":"…","args":[…],"enqueuedAt":<ms epoch>,"attempt":1}
 * with "expiresAt", "rateKey", "concurrencyKey", "flow" and "trace" after them when a job has them.
 * Unknown extra fields are kept on decode (forward compatibility). "flow" is
 * composition (docs/composition.md): what a consumer writes once the job has
 * a final outcome. A consumer that predates it ignores it: it runs the job as
 * a plain one, and the pipeline's next step or the group's callback is never
 * written.
 *
 * The args are tagged JSON (tagged-json.ts describes the format and what is
 * refused; tagged-json-decode.ts decodes it); serializeValue/deserializeValue
 * are re-exported from here for the results store and the public API.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../shared/config.js';
import { MessageDecodeError, PayloadTooLargeError } from '../shared/errors.js';
import { serializeArgs } from './tagged-json.js';
import { argsMayHoldTags, jsonKind, parseJson, reviveTags } from './tagged-json-decode.js';

export { MAX_DEPTH, serializeValue } from './tagged-json.js';
export { deserializeValue } from './tagged-json-decode.js';

export const MESSAGE_VERSION = 1;
export const MAX_COMMAND_NAME_LENGTH = 200;
/** The largest distance from the epoch, in ms, a Date can hold: an expiresAt beyond it is no time at all. */
const MAX_TIME_MS = 8.64e15;
/** A job id keys its result record in every backend: PostgreSQL text holds no NUL or lone surrogate, and an index entry is bounded. */
export const MAX_JOB_ID_LENGTH = 200;
const JOB_ID_RULE = `a non-empty string of at most ${MAX_JOB_ID_LENGTH} characters, without NUL or lone surrogates`;

function isJobId(id: unknown): id is string {
  return (
    typeof id === 'string' &&
    id.length > 0 &&
    id.length <= MAX_JOB_ID_LENGTH &&
    !id.includes('\u0000') &&
    (id as string & { isWellFormed(): boolean }).isWellFormed()
  );
}

export interface Envelope {
  v: number;
  id: string;
  command: string;
  args: unknown[];
  /** ms since the epoch */
  enqueuedAt: number;
  /** 1 for a first run; retries later increment it */
  attempt: number;
  /** ms since the epoch: a job that has not started by then is skipped and recorded as expired */
  expiresAt?: number;
  /** The value of its command's rateLimit.key function (a gated command without one has none). */
  rateKey?: string;
  /** The value of its command's concurrency.key function. */
  concurrencyKey?: string;
  /** Composition: the pipeline steps after this one, or the group it belongs to (docs/composition.md). */
  flow?: EnvelopeFlow;
  /** The W3C traceparent of the enqueue's span, when the producer traced it (docs/observability.md). */
  trace?: string;
}

/** A step of a pipeline or a group's callback, not written yet: its command, its arguments (tagged JSON text) and its job id. */
export interface FlowStep {
  command: string;
  args: string;
  id: string;
}

/** What is written once a composed job has a final outcome. */
export interface EnvelopeFlow {
  /** A pipeline step: the steps after this one, in order (the last one's id is the pipeline's job id). */
  next?: FlowStep[];
  /** A group member: the group's id, every member's job id in order, and the callback written once all are final. */
  group?: { id: string; members: string[]; callback?: FlowStep };
}

export interface EncodeOptions {
  /** default randomUUID() */
  id?: string;
  /** enqueuedAt, ms since the epoch; default Date.now() */
  now?: number;
  /** default 1 */
  attempt?: number;
  /** default DEFAULT_MAX_PAYLOAD_BYTES */
  maxBytes?: number;
  /** ms since the epoch after which the job must not start; default none */
  expiresAt?: number;
  /** Gate keys (computed by the command from the arguments); default none */
  rateKey?: string;
  concurrencyKey?: string;
  /** Composition: see Envelope.flow; default none */
  flow?: EnvelopeFlow;
  /** Envelope.trace; default none */
  trace?: string;
}

function checkCommandName(command: unknown): asserts command is string {
  if (typeof command !== 'string' || command.length === 0 || command.length > MAX_COMMAND_NAME_LENGTH) {
    const got = typeof command === 'string' ? `a string of ${command.length} characters` : typeof command;
    throw new TypeError(`command name must be a non-empty string of at most ${MAX_COMMAND_NAME_LENGTH} characters (got ${got})`);
  }
}

/**
 * Builds the wire form of one job. Pure: no I/O, so a refused or oversized
 * message is refused before anything is written.
 */
export function encodeMessage(command: string, args: readonly unknown[], options: EncodeOptions = {}): { id: string; data: string } {
  checkCommandName(command);
  if (!Array.isArray(args)) throw new TypeError(`args for command "${command}" must be an array`);
  return encodeMessageText(command, serializeArgs(args), options);
}

/** encodeMessage with the args already serialized (tagged JSON text of an array): a consumer writing a composed job's next step. */
export function encodeMessageText(command: string, argsText: string, options: EncodeOptions = {}): { id: string; data: string } {
  checkCommandName(command);
  const id = options.id ?? randomUUID();
  const now = options.now ?? Date.now();
  const attempt = options.attempt ?? 1;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  if (!isJobId(id)) throw new TypeError(`message id must be ${JOB_ID_RULE}`);
  if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError('options.now must be a finite number (ms since the epoch)');
  if (!Number.isInteger(attempt) || attempt < 1) throw new TypeError('options.attempt must be a positive integer');
  if (typeof maxBytes !== 'number' || !(maxBytes > 0)) throw new TypeError('options.maxBytes must be a positive number');
  const { expiresAt } = options;
  if (expiresAt !== undefined && (typeof expiresAt !== 'number' || !(Math.abs(expiresAt) <= MAX_TIME_MS))) {
    throw new TypeError('options.expiresAt must be a time a Date can hold (ms since the epoch, within ±8.64e15)');
  }

  const data =
    `{"v":${MESSAGE_VERSION},"id":${JSON.stringify(id)},"command":${JSON.stringify(command)},` +
    `"args":${argsText},"enqueuedAt":${now},"attempt":${attempt}` +
    (expiresAt === undefined ? '' : `,"expiresAt":${expiresAt}`) +
    (options.rateKey === undefined ? '' : `,"rateKey":${JSON.stringify(options.rateKey)}`) +
    (options.concurrencyKey === undefined ? '' : `,"concurrencyKey":${JSON.stringify(options.concurrencyKey)}`) +
    (options.flow === undefined ? '' : `,"flow":${JSON.stringify(options.flow)}`) +
    (options.trace === undefined ? '}' : `,"trace":${JSON.stringify(options.trace)}}`);
  // JSON.stringify escapes lone surrogates, so `data` is well-formed and its UTF-8 size exact.
  const bytes = Buffer.byteLength(data, 'utf8');
  if (bytes > maxBytes) throw new PayloadTooLargeError(command, bytes, maxBytes);
  return { id, data };
}

// ---------------------------------------------------------------- decode

const FlowStepSchema = z.looseObject({ command: z.string().min(1), args: z.string().startsWith('['), id: z.string().refine(isJobId) });
const FlowSchema = z.looseObject({
  next: z.array(FlowStepSchema).optional(),
  group: z.looseObject({ id: z.string().refine(isJobId), members: z.array(z.string().refine(isJobId)).min(1), callback: FlowStepSchema.optional() }).optional(),
});

const EnvelopeSchema = z.looseObject({
  v: z.number().int(),
  id: z.string().refine(isJobId),
  command: z.string().min(1),
  args: z.array(z.unknown()),
  enqueuedAt: z.number(),
  attempt: z.number().int().positive(),
  expiresAt: z.number().min(-MAX_TIME_MS).max(MAX_TIME_MS).optional(),
  rateKey: z.string().min(1).optional(),
  concurrencyKey: z.string().min(1).optional(),
  flow: FlowSchema.optional(),
  trace: z.string().max(200).optional(),
});

const FIELD_EXPECTATIONS: Record<string, string> = {
  v: 'an integer',
  id: JOB_ID_RULE,
  command: 'a non-empty string',
  args: 'an array',
  enqueuedAt: 'a finite number',
  attempt: 'a positive integer',
  expiresAt: 'a time a Date can hold (ms since the epoch, within ±8.64e15)',
  rateKey: 'a non-empty string',
  concurrencyKey: 'a non-empty string',
  flow: 'an object { next?: [{ command, args, id }, …], group?: { id, members, callback? } }',
  trace: 'a W3C traceparent string',
};

const isOptionalKey = (value: unknown): boolean => value === undefined || (typeof value === 'string' && value.length > 0);

/**
 * EnvelopeSchema's rules for an envelope without `flow`, without zod: this runs once per job, and
 * zod's parse (which also copies the object) cost about as much as the JSON.parse before it.
 * False sends the envelope through EnvelopeSchema, so what is refused and why stays zod's.
 */
function isPlainEnvelope(raw: Record<string, unknown>): boolean {
  const { expiresAt, trace } = raw;
  return (
    raw.v === MESSAGE_VERSION &&
    isJobId(raw.id) &&
    typeof raw.command === 'string' &&
    raw.command.length > 0 &&
    Array.isArray(raw.args) &&
    typeof raw.enqueuedAt === 'number' &&
    Number.isFinite(raw.enqueuedAt) &&
    typeof raw.attempt === 'number' &&
    Number.isInteger(raw.attempt) &&
    raw.attempt > 0 &&
    (expiresAt === undefined || (typeof expiresAt === 'number' && Math.abs(expiresAt) <= MAX_TIME_MS)) &&
    isOptionalKey(raw.rateKey) &&
    isOptionalKey(raw.concurrencyKey) &&
    raw.flow === undefined &&
    (trace === undefined || (typeof trace === 'string' && trace.length <= 200))
  );
}

/** Parses and validates one message read from a queue. Throws MessageDecodeError (never quoting the payload). */
export function decodeMessage(data: string): Envelope {
  const raw = parseJson(data, 'message');
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new MessageDecodeError(`message is not a JSON object (got ${jsonKind(raw)})`);
  }
  const { v } = raw as { v?: unknown };
  // The version decides what the rest means, so it is checked before the shape.
  if (typeof v === 'number' && Number.isInteger(v) && v !== MESSAGE_VERSION) {
    throw new MessageDecodeError(`unsupported message version ${v}`);
  }
  // The common envelope (no flow) is checked by hand; anything it does not pass, zod decides and explains.
  if (isPlainEnvelope(raw as Record<string, unknown>)) {
    const envelope = raw as Envelope;
    if (argsMayHoldTags(envelope.args, data)) envelope.args = reviveTags(envelope.args, 'args') as unknown[];
    return envelope;
  }
  const result = EnvelopeSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = String(issue?.path[0] ?? '');
    if (Object.hasOwn(FIELD_EXPECTATIONS, field)) {
      const missing = (raw as Record<string, unknown>)[field] === undefined;
      throw new MessageDecodeError(missing ? `missing field ${field}` : `field ${field} must be ${FIELD_EXPECTATIONS[field]}`);
    }
    throw new MessageDecodeError('envelope does not match the schema');
  }
  const envelope = result.data as Envelope;
  if (argsMayHoldTags(envelope.args, data)) envelope.args = reviveTags(envelope.args, 'args') as unknown[];
  return envelope;
}
