/**
 * Tagged JSON: the value codec inside a message's args and a job's stored result.
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
 * This module is the encoder; tagged-json-decode.ts is the decoder.
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
 */
import { SerializationError } from '../shared/errors.js';
import { renderPath, type Segment } from './value-path.js';

/** Deeper nesting is refused on encode and decode (it would only end in a stack overflow). */
export const MAX_DEPTH = 1000;

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
    (isArray && proto === Array.prototype) || proto === Object.prototype || proto === null || proto === Map.prototype || proto === Set.prototype;
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

/** The JSON array of a job's args, each a tagged value; errors name `args[i]…`. */
export function serializeArgs(args: readonly unknown[]): string {
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
