/**
 * The message envelope and the tagged serializer.
 *
 * Wire format: one JSON object
 *   {"v":1,"id":"…","command":"…","args":[…],"enqueuedAt":<ms epoch>,"attempt":1}
 * Unknown extra fields are kept on decode (forward compatibility).
 *
 * Values are plain JSON plus a CLOSED set of tagged types, each a JSON object
 * whose first key is "$t":
 *   {"$t":"undefined"}                      undefined (array element, property value, argument)
 *   {"$t":"Number","v":"NaN"}               NaN, "Infinity", "-Infinity", "-0"
 *   {"$t":"BigInt","v":"-12"}               decimal digits
 *   {"$t":"Date","v":"2024-01-02T03:04:05.678Z"}   (v null: an invalid Date)
 *   {"$t":"Map","v":[[key,value],…]}        keys and values: any serializable value
 *   {"$t":"Set","v":[member,…]}
 *   {"$t":"Uint8Array","v":"<base64>"}      a Buffer is accepted and comes back as a plain Uint8Array
 *   {"$t":"Object","v":{…}}                 escape: a plain user object that has its own "$t" key;
 *                                           the keys of v are taken literally, never as a tag
 * Any other object with a "$t" key is refused on decode ("bad tag"), so user
 * data can never be mistaken for a tag.
 *
 * Refused on encode, with a SerializationError naming the path (`args[1].b`,
 * `args[0][2]`, `args[0]["a key"]`, `args[0]<map value "k">`, `args[0]<set member #1>`):
 * functions, symbols, symbol-keyed enumerable properties (refused rather than
 * silently dropped), cycles (named where the cycle closes), class instances
 * (prototype other than Object.prototype / null, except the tagged types and
 * plain arrays), WeakMap/WeakSet/Promise/Error, other typed arrays, nesting
 * deeper than MAX_DEPTH. Shared, non-cyclic references are duplicated. Array
 * holes become undefined. Null-prototype objects come back as plain objects;
 * non-enumerable properties are ignored, as JSON.stringify does.
 *
 * Security: decoding never evaluates anything and never looks a constructor up
 * by name; the tag is a switch over the closed set. "__proto__", "constructor"
 * and "prototype" keys stay own data properties (JSON.parse defines them, and
 * revived values are written back with Object.defineProperty).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { DEFAULT_MAX_PAYLOAD_BYTES } from './config.js';
import { MessageDecodeError, PayloadTooLargeError, SerializationError } from './errors.js';

export const MESSAGE_VERSION = 1;
export const MAX_COMMAND_NAME_LENGTH = 200;
/** Deeper nesting is refused on encode and decode (it would only end in a stack overflow). */
export const MAX_DEPTH = 1000;
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
}

// ---------------------------------------------------------------- paths

/** A path segment: array index, object key, or a Map/Set position. */
type Segment =
  | number
  | string
  | { kind: 'mapKey' | 'mapValue' | 'set'; index: number; key?: unknown }
  | { kind: 'symbol'; description: string };

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function describeMapKey(key: unknown, index: number): string {
  switch (typeof key) {
    case 'string':
      return JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key);
    case 'number':
    case 'boolean':
      return String(key);
    case 'bigint':
      return `${key}n`;
    default:
      return key === null ? 'null' : `#${index}`;
  }
}

/**
 * Encode paths name keys exactly (the caller's own data, needed to find the
 * culprit); decode paths must not quote payload content, so they show only
 * identifier-like keys and never Map keys.
 */
function renderPath(root: string, stack: readonly Segment[], forDecode: boolean): string {
  let out = root;
  for (let i = 0; i < stack.length; i++) {
    // A path hundreds of levels deep helps nobody: keep its two ends.
    if (stack.length > 24 && i === 12) {
      out += '…';
      i = stack.length - 12;
    }
    const seg = stack[i]!;
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string') {
      if (IDENTIFIER.test(seg) && (!forDecode || seg.length <= 64)) out += `.${seg}`;
      else out += forDecode ? '[…]' : `[${JSON.stringify(seg)}]`;
    } else if (seg.kind === 'symbol') out += `[${seg.description}]`;
    else if (seg.kind === 'set') out += `<set member #${seg.index}>`;
    else if (forDecode) out += `<map entry #${seg.index} ${seg.kind === 'mapKey' ? 'key' : 'value'}>`;
    else if (seg.kind === 'mapKey') out += `<map key #${seg.index}>`;
    else out += `<map value ${describeMapKey(seg.key, seg.index)}>`;
  }
  return out;
}

// ---------------------------------------------------------------- encode

interface EncodeState {
  root: string;
  stack: Segment[];
  /** Containers on the current path → stack length when entered, to name where a cycle closes. */
  ancestors: Map<object, number>;
}

function refuse(state: EncodeState, reason: string): never {
  throw new SerializationError(renderPath(state.root, state.stack, false), reason);
}

const UNDEFINED_TAG = '{"$t":"undefined"}';

function encodeNumber(n: number): string {
  if (Number.isFinite(n)) return n === 0 && 1 / n < 0 ? '{"$t":"Number","v":"-0"}' : String(n);
  return `{"$t":"Number","v":"${String(n)}"}`;
}

function className(proto: object): string {
  const ctor: unknown = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value;
  const name = typeof ctor === 'function' ? ctor.name : '';
  return name ? `class ${name}` : 'an anonymous class';
}

function encodeValue(value: unknown, state: EncodeState): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return encodeNumber(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return UNDEFINED_TAG;
    case 'bigint':
      return `{"$t":"BigInt","v":"${value.toString()}"}`;
    case 'function':
      return refuse(state, `function${value.name ? ` ${value.name}` : ''} is not serializable`);
    case 'symbol':
      return refuse(state, 'a symbol is not serializable');
    default:
      return value === null ? 'null' : encodeObject(value as object, state);
  }
}

function encodeObject(obj: object, state: EncodeState): string {
  if (state.stack.length >= MAX_DEPTH) refuse(state, `nested deeper than ${MAX_DEPTH} levels`);
  const proto: unknown = Object.getPrototypeOf(obj);
  if (proto === Date.prototype) {
    const time = (obj as Date).getTime();
    return Number.isNaN(time) ? '{"$t":"Date","v":null}' : `{"$t":"Date","v":"${(obj as Date).toISOString()}"}`;
  }
  if (proto === Uint8Array.prototype || Buffer.isBuffer(obj)) {
    const bytes = obj as Uint8Array;
    return `{"$t":"Uint8Array","v":"${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}"}`;
  }
  const isArray = Array.isArray(obj);
  const isContainer =
    (isArray && proto === Array.prototype) ||
    proto === Object.prototype ||
    proto === null ||
    proto === Map.prototype ||
    proto === Set.prototype;
  if (!isContainer) refuseInstance(obj, proto, state);

  const closes = state.ancestors.get(obj);
  if (closes !== undefined) {
    refuse(state, `circular reference back to ${renderPath(state.root, state.stack.slice(0, closes), false)}`);
  }
  state.ancestors.set(obj, state.stack.length);
  let out: string;
  if (isArray) out = encodeArray(obj as unknown[], state);
  else if (proto === Map.prototype) out = encodeMap(obj as Map<unknown, unknown>, state);
  else if (proto === Set.prototype) out = encodeSet(obj as Set<unknown>, state);
  else out = encodePlain(obj as Record<string, unknown>, state);
  state.ancestors.delete(obj);
  return out;
}

function refuseInstance(obj: object, proto: unknown, state: EncodeState): never {
  if (obj instanceof Promise) refuse(state, 'a Promise is not serializable (await it first)');
  if (obj instanceof WeakMap || obj instanceof WeakSet) refuse(state, `a ${obj instanceof WeakMap ? 'WeakMap' : 'WeakSet'} is not serializable`);
  if (obj instanceof Error) refuse(state, `an Error instance (${className(proto as object)}) is not serializable; pass its message instead`);
  return refuse(state, `instance of ${className(proto as object)} is not serializable`);
}

function encodeArray(arr: readonly unknown[], state: EncodeState): string {
  let out = '[';
  for (let i = 0; i < arr.length; i++) {
    state.stack.push(i);
    out += (i === 0 ? '' : ',') + encodeValue(arr[i], state);
    state.stack.pop();
  }
  return out + ']';
}

function encodePlain(obj: Record<string, unknown>, state: EncodeState): string {
  for (const sym of Object.getOwnPropertySymbols(obj)) {
    if (Object.prototype.propertyIsEnumerable.call(obj, sym)) {
      state.stack.push({ kind: 'symbol', description: String(sym) });
      refuse(state, 'symbol-keyed properties are not serializable');
    }
  }
  const keys = Object.keys(obj);
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    state.stack.push(key);
    out += (i === 0 ? '' : ',') + JSON.stringify(key) + ':' + encodeValue(obj[key], state);
    state.stack.pop();
  }
  out += '}';
  return keys.includes('$t') ? `{"$t":"Object","v":${out}}` : out;
}

function encodeMap(map: Map<unknown, unknown>, state: EncodeState): string {
  let out = '{"$t":"Map","v":[';
  let index = 0;
  for (const [key, value] of map) {
    state.stack.push({ kind: 'mapKey', index });
    const keyText = encodeValue(key, state);
    state.stack[state.stack.length - 1] = { kind: 'mapValue', index, key };
    out += `${index === 0 ? '' : ','}[${keyText},${encodeValue(value, state)}]`;
    state.stack.pop();
    index++;
  }
  return out + ']}';
}

function encodeSet(set: Set<unknown>, state: EncodeState): string {
  let out = '{"$t":"Set","v":[';
  let index = 0;
  for (const member of set) {
    state.stack.push({ kind: 'set', index });
    out += (index === 0 ? '' : ',') + encodeValue(member, state);
    state.stack.pop();
    index++;
  }
  return out + ']}';
}

/** Tagged JSON of any serializable value; `path` names the root in errors (default "value"). */
export function serializeValue(value: unknown, path = 'value'): string {
  return encodeValue(value, { root: path, stack: [], ancestors: new Map() });
}

function encodeArgs(args: readonly unknown[]): string {
  let out = '[';
  let state: EncodeState | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    let text: string;
    // Fast path: the common job is a few strings and numbers.
    if (typeof arg === 'string') text = JSON.stringify(arg);
    else if (typeof arg === 'number') text = encodeNumber(arg);
    else {
      state ??= { root: 'args', stack: [], ancestors: new Map() };
      state.stack.push(i);
      text = encodeValue(arg, state);
      state.stack.pop();
    }
    out += (i === 0 ? '' : ',') + text;
  }
  return out + ']';
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
    `"args":${encodeArgs(args)},"enqueuedAt":${now},"attempt":${attempt}` +
    (expiresAt === undefined ? '}' : `,"expiresAt":${expiresAt}}`);
  // JSON.stringify escapes lone surrogates, so `data` is well-formed and its UTF-8 size exact.
  const bytes = Buffer.byteLength(data, 'utf8');
  if (bytes > maxBytes) throw new PayloadTooLargeError(command, bytes, maxBytes);
  return { id, data };
}

// ---------------------------------------------------------------- decode

const EnvelopeSchema = z.looseObject({
  v: z.number().int(),
  id: z.string().refine(isJobId),
  command: z.string().min(1),
  args: z.array(z.unknown()),
  enqueuedAt: z.number(),
  attempt: z.number().int().positive(),
  expiresAt: z.number().min(-MAX_TIME_MS).max(MAX_TIME_MS).optional(),
});

const FIELD_EXPECTATIONS: Record<string, string> = {
  v: 'an integer',
  id: JOB_ID_RULE,
  command: 'a non-empty string',
  args: 'an array',
  enqueuedAt: 'a finite number',
  attempt: 'a positive integer',
  expiresAt: 'a time a Date can hold (ms since the epoch, within ±8.64e15)',
};

function jsonKind(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

function parseJson(text: unknown, what: string): unknown {
  if (typeof text !== 'string') throw new MessageDecodeError(`${what} is not a string (got ${jsonKind(text)})`);
  try {
    return JSON.parse(text);
  } catch {
    throw new MessageDecodeError(`${what} is not JSON`);
  }
}

/**
 * Only text that can hold a tag needs the revive walk: a literal "$t", or a
 * \u escape (which could spell "$t" without the literal text). A false
 * positive (a user string containing "$t") only costs the walk.
 */
function mayContainTags(text: string): boolean {
  return text.includes('"$t"') || text.includes('\\u');
}

interface DecodeState {
  root: string;
  stack: Segment[];
}

function badTag(state: DecodeState, why: string): never {
  throw new MessageDecodeError(`bad tag in ${renderPath(state.root, state.stack, true)}: ${why}`);
}

function defineOwn(obj: object, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

/** Revives tags in place (containers from JSON.parse are fresh and ours) and returns the value. */
function revive(value: unknown, state: DecodeState): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (state.stack.length >= MAX_DEPTH) {
    throw new MessageDecodeError(`${renderPath(state.root, state.stack, true)} is nested deeper than ${MAX_DEPTH} levels`);
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      state.stack.push(i);
      const item: unknown = value[i];
      const revived = revive(item, state);
      if (revived !== item) value[i] = revived;
      state.stack.pop();
    }
    return value;
  }
  if (Object.prototype.hasOwnProperty.call(value, '$t')) return reviveTag(value as Record<string, unknown>, state);
  reviveProperties(value as Record<string, unknown>, state);
  return value;
}

function reviveProperties(obj: Record<string, unknown>, state: DecodeState): void {
  for (const key of Object.keys(obj)) {
    state.stack.push(key);
    const item = obj[key];
    const revived = revive(item, state);
    // defineProperty, never `obj[key] = …`, so a "__proto__" key can never reach the prototype setter.
    if (revived !== item) defineOwn(obj, key, revived);
    state.stack.pop();
  }
}

const ISO_DATE = /^[+-]?\d{4,6}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const DECIMAL = /^-?(?:0|[1-9]\d*)$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const TAG_TYPES = new Set(['undefined', 'Number', 'BigInt', 'Date', 'Uint8Array', 'Map', 'Set', 'Object']);
const SPECIAL_NUMBERS: Record<string, number> = { NaN: Number.NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 };

function reviveTag(tag: Record<string, unknown>, state: DecodeState): unknown {
  const type = tag.$t;
  if (typeof type !== 'string' || !TAG_TYPES.has(type)) badTag(state, 'unknown type');
  const keyCount = Object.keys(tag).length;
  if (type === 'undefined') {
    if (keyCount !== 1) badTag(state, 'unexpected fields');
    return undefined;
  }
  if (keyCount !== 2 || !Object.prototype.hasOwnProperty.call(tag, 'v')) badTag(state, 'expected exactly "$t" and "v"');
  const v = tag.v;
  switch (type) {
    case 'Number':
      if (typeof v !== 'string' || !Object.prototype.hasOwnProperty.call(SPECIAL_NUMBERS, v)) badTag(state, 'not a special number');
      return SPECIAL_NUMBERS[v];
    case 'BigInt':
      if (typeof v !== 'string' || !DECIMAL.test(v)) badTag(state, 'BigInt value is not a decimal integer');
      return BigInt(v);
    case 'Date': {
      if (v === null) return new Date(Number.NaN);
      const time = typeof v === 'string' && ISO_DATE.test(v) ? Date.parse(v) : Number.NaN;
      if (Number.isNaN(time)) badTag(state, 'Date value is not an ISO timestamp');
      return new Date(time);
    }
    case 'Uint8Array': {
      if (typeof v !== 'string' || !BASE64.test(v)) badTag(state, 'Uint8Array value is not base64');
      return new Uint8Array(Buffer.from(v, 'base64'));
    }
    case 'Map': {
      if (!Array.isArray(v)) badTag(state, 'Map value is not an array of entries');
      const map = new Map<unknown, unknown>();
      for (let index = 0; index < v.length; index++) {
        const entry: unknown = v[index];
        if (!Array.isArray(entry) || entry.length !== 2) badTag(state, `Map entry #${index} is not a [key, value] pair`);
        state.stack.push({ kind: 'mapKey', index });
        const key = revive(entry[0], state);
        state.stack[state.stack.length - 1] = { kind: 'mapValue', index };
        map.set(key, revive(entry[1], state));
        state.stack.pop();
      }
      return map;
    }
    case 'Set': {
      if (!Array.isArray(v)) badTag(state, 'Set value is not an array');
      const set = new Set<unknown>();
      for (let index = 0; index < v.length; index++) {
        state.stack.push({ kind: 'set', index });
        set.add(revive(v[index], state));
        state.stack.pop();
      }
      return set;
    }
    case 'Object':
      if (typeof v !== 'object' || v === null || Array.isArray(v)) badTag(state, 'escaped object is not an object');
      // The escape's own keys (including "$t") are data: revive the values only.
      reviveProperties(v as Record<string, unknown>, state);
      return v;
    default:
      return badTag(state, 'unknown type');
  }
}

/** Inverse of serializeValue. Throws MessageDecodeError (never quoting the text). */
export function deserializeValue(text: string): unknown {
  const parsed = parseJson(text, 'value');
  return mayContainTags(text) ? revive(parsed, { root: 'value', stack: [] }) : parsed;
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
  if (mayContainTags(data)) envelope.args = revive(envelope.args, { root: 'args', stack: [] }) as unknown[];
  return envelope;
}
