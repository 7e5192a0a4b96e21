/**
 * The tagged-JSON decoder: the inverse of tagged-json.ts (where the format is
 * described). Errors are MessageDecodeError and never quote the text, which is
 * a payload from the queue.
 *
 * Security: decoding never evaluates anything and never looks a constructor up
 * by name; the tag is a switch over the closed set. "__proto__", "constructor"
 * and "prototype" keys stay own data properties (JSON.parse defines them, and
 * revived values are written back with Object.defineProperty).
 */
import { MessageDecodeError } from '../shared/errors.js';
import { MAX_DEPTH } from './tagged-json.js';
import { renderPath, type Segment } from './value-path.js';

/** How a JSON value is named in an error, without quoting it. */
export function jsonKind(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/** JSON.parse, failing with a MessageDecodeError that names `what` and never quotes the text. */
export function parseJson(text: unknown, what: string): unknown {
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
export function mayContainTags(text: string): boolean {
  return text.includes('"$t"') || text.includes('\\u');
}

/**
 * mayContainTags for a message's args: a tag is an object, so args of numbers, strings, booleans
 * and nulls (most jobs') hold none, and their text need not be searched.
 */
export function argsMayHoldTags(args: readonly unknown[], text: string): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (typeof arg === 'object' && arg !== null) return mayContainTags(text);
  }
  return false;
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

/** Revives the tags in a value fresh from JSON.parse (in place); errors name the path from `root`. */
export function reviveTags(parsed: unknown, root: string): unknown {
  return revive(parsed, { root, stack: [] });
}

/** Inverse of serializeValue. Throws MessageDecodeError (never quoting the text). */
export function deserializeValue(text: string): unknown {
  const parsed = parseJson(text, 'value');
  return mayContainTags(text) ? revive(parsed, { root: 'value', stack: [] }) : parsed;
}
