/**
 * Sanitising the inspection stream (why and what: inspect/index.ts) and
 * building the inspector's wire messages from it.
 */
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { redactText } from '../shared/config.js';

/** The `_version` of @statelyai/inspect whose wire format this module speaks. */
export const INSPECT_PROTOCOL_VERSION = '0.7.2';
const MAX_DEPTH = 10;

// ───────────────────────────────────────────────────────────── sanitising
const OMIT = Symbol('omit');
const PAYLOAD_KEYS = new Set(['data', 'args', 'payload']);
const TEXT_KEYS = new Set(['error', 'message', 'stack', 'reason']);
const ERROR_FIELDS = ['code', 'workerId', 'command', 'jobId'] as const;
/** The head encodeMessage writes: command and job id are metadata, readable without touching the arguments. */
export const ENVELOPE_HEAD = /^\{"v":\d+,"id":("(?:[^"\\]|\\.){1,200}"),"command":("(?:[^"\\]|\\.){1,300}")/;

/** The parts of an actor ref inspection reads (several are xstate internals typed loosely). */
export interface InspectedRef {
  id?: string;
  sessionId: string;
  systemId?: string;
  _parent?: InspectedRef;
  logic?: { config?: { id?: string } };
  system?: AnyActorRef['system'];
  getSnapshot(): unknown;
}

function isActorRef(value: object): value is InspectedRef {
  const v = value as Partial<InspectedRef> & { send?: unknown };
  return typeof v.sessionId === 'string' && typeof v.send === 'function' && typeof v.getSnapshot === 'function';
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return Array.isArray(value) ? 'Array' : (value.constructor?.name ?? 'Object');
}

const payloadText = (text: string, what = 'payload') => `[${what}: ${Buffer.byteLength(text, 'utf8')} bytes]`;

function cleanError(error: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { name: String(error.name ?? 'Error'), message: redactText(String(error.message)) };
  if (typeof error.stack === 'string') out.stack = redactText(error.stack);
  for (const field of ERROR_FIELDS) {
    const value = (error as unknown as Record<string, unknown>)[field];
    if (typeof value === 'string' || typeof value === 'number') out[field] = value;
  }
  const { cause } = error as { cause?: unknown };
  if (cause instanceof Error && depth < MAX_DEPTH) out.cause = cleanError(cause, depth + 1);
  else if (typeof cause === 'string') out.cause = redactText(cause);
  else if (cause !== undefined) out.cause = `[thrown ${kindOf(cause)}]`;
  return out;
}

function clean(value: unknown, key: string, depth: number, path: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
      if (PAYLOAD_KEYS.has(key)) return payloadText(value);
      if (key === 'record') return payloadText(value, 'result');
      return TEXT_KEYS.has(key) ? redactText(value) : value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'boolean':
    case 'undefined':
      return value;
    case 'bigint':
      return `${value}n`;
    case 'symbol':
      return value.toString();
    case 'function':
      return OMIT;
  }
  if (value === null) return null;
  const object = value as object;
  if (PAYLOAD_KEYS.has(key)) return `[payload: ${kindOf(object)}]`;
  if (key === 'record') return '[result]';
  if (isActorRef(object)) return object.id ?? object.sessionId;
  if (object instanceof Error) return cleanError(object, depth);
  if (key === 'error' || key === 'cause') {
    const like = object as { name?: unknown; message?: unknown };
    return typeof like.message === 'string' ? cleanError(like as Error, depth) : `[thrown ${kindOf(object)}]`;
  }
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString();
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) return `[bytes: ${object.byteLength}]`;
  if (path.has(object)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[…]';
  path.add(object);
  try {
    if (Array.isArray(object) || object instanceof Set) {
      const out: unknown[] = [];
      for (const item of object) {
        const cleaned = clean(item, '', depth + 1, path);
        if (cleaned !== OMIT) out.push(cleaned);
      }
      return out;
    }
    if (object instanceof Map) return `[Map: ${object.size} entries]`;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(object)) {
      const cleaned = clean(v, k, depth + 1, path);
      if (cleaned !== OMIT) out[k] = cleaned;
    }
    const data = (object as { data?: unknown }).data;
    const head = typeof data === 'string' ? ENVELOPE_HEAD.exec(data.slice(0, 600)) : null;
    if (head) {
      out.job ??= JSON.parse(head[1]!) as string;
      out.command ??= JSON.parse(head[2]!) as string;
    }
    return out;
  } finally {
    path.delete(object);
  }
}

/** Any value made safe to show: JSON-ready, no payloads, results, functions, actor internals or URL passwords. */
export function sanitizeValue(value: unknown, key = ''): unknown {
  const cleaned = clean(value, key, 0, new Set());
  return cleaned === OMIT ? undefined : cleaned;
}

/** An xstate event made safe to show (its `type` is kept). */
export function sanitizeEvent(event: unknown): Record<string, unknown> {
  if (typeof event === 'string') return { type: event };
  const cleaned = sanitizeValue(event);
  return cleaned && typeof cleaned === 'object' && !Array.isArray(cleaned) ? (cleaned as Record<string, unknown>) : { type: '' };
}

/** A snapshot reduced to what a viewer needs: status, value, context, children (as ids), tags, output, error. */
export function sanitizeSnapshot(snapshot: unknown): Record<string, unknown> {
  if (!snapshot || typeof snapshot !== 'object') return { status: 'active' };
  const s = snapshot as Record<string, unknown>;
  const out: Record<string, unknown> = { status: s.status ?? 'active' };
  if ('value' in s) out.value = sanitizeValue(s.value);
  if ('context' in s) out.context = sanitizeValue(s.context, 'context');
  if (s.children && typeof s.children === 'object') {
    out.children = Object.fromEntries(
      Object.entries(s.children as Record<string, InspectedRef | undefined>).map(([id, ref]) => [id, { xstate$$type: 1, id: ref?.id ?? id }]),
    );
  }
  if (s.tags instanceof Set || Array.isArray(s.tags)) out.tags = [...(s.tags as Iterable<unknown>)].map(String);
  if ('input' in s) out.input = sanitizeValue(s.input, 'input');
  if (s.output !== undefined) out.output = sanitizeValue(s.output, 'output');
  if (s.error !== undefined) out.error = sanitizeValue(s.error, 'error');
  return out;
}

// ─────────────────────────────────────────────────────────── wire messages
/** One message of the Stately inspector's protocol (the shape @statelyai/inspect 0.7 sends). */
export interface InspectorMessage {
  type: '@xstate.actor' | '@xstate.event' | '@xstate.snapshot';
  sessionId: string;
  rootId: string | undefined;
  _version: string;
  createdAt: string;
  id: null;
  [field: string]: unknown;
}

/** The actor's own id; the root's (whose id is its session id) is its machine's id, e.g. `supervisor`. */
export function actorName(ref: InspectedRef): string {
  if (ref.id && ref.id !== ref.sessionId) return ref.id;
  return ref.logic?.config?.id ?? ref.sessionId;
}

const definitions = new WeakMap<object, string>();
/** A machine definition as the inspector draws it; functions become `{ type: name }` (as @statelyai/inspect does). */
function definitionOf(ref: InspectedRef): string {
  const config = ref.logic?.config;
  if (!config || typeof config !== 'object') return JSON.stringify({ id: actorName(ref) });
  let text = definitions.get(config);
  if (text === undefined) {
    try {
      text = JSON.stringify(config, (_k, v: unknown) => (typeof v === 'function' ? { type: v.name } : v));
    } catch {
      text = JSON.stringify({ id: config.id ?? actorName(ref) });
    }
    definitions.set(config, text);
  }
  return text;
}

export function actorMessage(ref: InspectedRef, rootId: string | undefined): InspectorMessage {
  return {
    type: '@xstate.actor',
    name: actorName(ref),
    sessionId: ref.sessionId,
    parentId: ref._parent?.sessionId,
    rootId,
    definition: definitionOf(ref),
    snapshot: sanitizeSnapshot(ref.getSnapshot()),
    _version: INSPECT_PROTOCOL_VERSION,
    createdAt: Date.now().toString(),
    id: null,
  };
}

/**
 * An xstate inspection event as a sanitised Stately inspector message; null for
 * the kinds the inspector does not take (microsteps, actions). An actor is
 * registered before its first snapshot exists: its message then carries
 * `{ status: 'active' }` (the relay waits a microtask for the real one).
 */
export function sanitizeInspectionEvent(event: InspectionEvent): InspectorMessage | null {
  const ref = event.actorRef as InspectedRef;
  const base = { sessionId: ref.sessionId, rootId: event.rootId, _version: INSPECT_PROTOCOL_VERSION, createdAt: Date.now().toString(), id: null };
  switch (event.type) {
    case '@xstate.actor':
      return actorMessage(ref, event.rootId);
    case '@xstate.event':
      return { type: '@xstate.event', ...base, event: sanitizeEvent(event.event), sourceId: (event.sourceRef as InspectedRef | undefined)?.sessionId };
    case '@xstate.snapshot':
      return { type: '@xstate.snapshot', ...base, event: sanitizeEvent(event.event), snapshot: sanitizeSnapshot(event.snapshot) };
    default:
      return null;
  }
}

/** The live actors under a root, parents first. */
export function liveTree(root: InspectedRef): InspectedRef[] {
  const out: InspectedRef[] = [];
  const visit = (ref: InspectedRef) => {
    const snapshot = ref.getSnapshot() as { status?: string; children?: Record<string, InspectedRef | undefined> } | undefined;
    if (snapshot?.status !== 'active') return;
    out.push(ref);
    for (const child of Object.values(snapshot.children ?? {})) if (child) visit(child);
  };
  visit(root);
  return out;
}

export const rootOf = (ref: InspectedRef): InspectedRef => (ref._parent ? rootOf(ref._parent) : ref);
