/**
 * Live inspection: the running actor system, sanitised, for the Stately
 * inspector (a WebSocket relay on a loopback address) and for post-mortems
 * (JSON lines in a file).
 *
 * Why not @statelyai/inspect's own pieces: its server listens on every
 * interface with no authentication and relays whatever any client sends; its
 * `sanitizeContext` hook never sees `snapshot.error` (a failed worker's error
 * carries the job) and its per-event timer serialises snapshots late (the
 * reader mutates its lists in place). So the relay here emits the same wire
 * messages (checked against the library by test/inspect/protocol.test.ts),
 * built from a whole-message sanitiser, serialised when the event happens.
 *
 * Sanitising: a job's arguments and results never leave the process. Every
 * `data`/`args`/`payload` becomes `[payload: N bytes]` (plus the envelope's
 * command and job id, read from its head), every result `record` becomes
 * `[result: N bytes]`, errors become { name, message, stack, code, workerId,
 * command, jobId, cause } with URL passwords redacted, a thrown non-Error
 * object becomes `[thrown Object]`, functions are dropped and actor refs
 * become their ids.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createWriteStream, openSync } from 'node:fs';
import http from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { finished } from 'node:stream/promises';
import { WebSocket, WebSocketServer } from 'ws';
import type { AnyActorRef, InspectionEvent, Subscription } from 'xstate';
import { redactText } from './config.js';
import { ConfigError } from './errors.js';

/** `taskmill consume --inspect` without a port. */
export const DEFAULT_INSPECT_PORT = 9898;
/** The `_version` of @statelyai/inspect whose wire format this module speaks. */
export const INSPECT_PROTOCOL_VERSION = '0.7.2';
const DEFAULT_INSPECTOR_PAGE = 'https://stately.ai/inspect';
const MAX_DEPTH = 10;
/** A viewer further behind than this loses messages instead of growing our memory. */
const MAX_VIEWER_BACKLOG = 4 * 1024 * 1024;
const MAX_LOG_BACKLOG = 16 * 1024 * 1024;

// ───────────────────────────────────────────────────────────── sanitising
const OMIT = Symbol('omit');
const PAYLOAD_KEYS = new Set(['data', 'args', 'payload']);
const TEXT_KEYS = new Set(['error', 'message', 'stack', 'reason']);
const ERROR_FIELDS = ['code', 'workerId', 'command', 'jobId'] as const;
/** The head encodeMessage writes: command and job id are metadata, readable without touching the arguments. */
const ENVELOPE_HEAD = /^\{"v":\d+,"id":("(?:[^"\\]|\\.){1,200}"),"command":("(?:[^"\\]|\\.){1,300}")/;

/** The parts of an actor ref inspection reads (several are xstate internals typed loosely). */
interface InspectedRef {
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
  return Array.isArray(value) ? 'Array' : ((value as object).constructor?.name ?? 'Object');
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

function actorMessage(ref: InspectedRef, rootId: string | undefined): InspectorMessage {
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
function liveTree(root: InspectedRef): InspectedRef[] {
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

const rootOf = (ref: InspectedRef): InspectedRef => (ref._parent ? rootOf(ref._parent) : ref);

// ──────────────────────────────────────────────────────────────── the relay
export interface InspectorOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** A loopback address to bind: 127.0.0.1 (default), another 127.x address, ::1 or localhost. Anything else is refused. */
  host?: string;
  /** The secret the page and WebSocket URLs carry. Default: 128 random bits. */
  token?: string;
  /** The Stately inspector page the bridge page embeds. Default https://stately.ai/inspect. */
  inspectorUrl?: string;
}

export interface InspectorStats {
  viewers: number;
  /** Messages sent (one per viewer). */
  sent: number;
  /** Messages a viewer missed while more than 4 MiB behind (it gets a replay of the live actors once it catches up). */
  dropped: number;
}

export interface InspectorRelay {
  /** An inspection observer for `createConsumer({ inspect })`: xstate pays for inspection on every event, viewer or not. */
  readonly inspect: (event: InspectionEvent) => void;
  /** Watches an actor's system only while a viewer is connected: costs nothing otherwise. Returns a detach function. */
  attach(actor: AnyActorRef): () => void;
  /** The page to open in a browser (carries the token). */
  readonly url: string;
  /** The WebSocket endpoint (carries the token), for other clients. */
  readonly wsUrl: string;
  readonly host: string;
  readonly port: number;
  stats(): InspectorStats;
  close(): Promise<void>;
}

function loopbackHost(host: string): string {
  if (host === 'localhost') return '127.0.0.1';
  const version = isIP(host);
  if ((version === 4 && host.startsWith('127.')) || (version === 6 && /^(0{0,4}:){2,7}0{0,3}1$/.test(host))) return host;
  throw new ConfigError(
    `inspector host must be a loopback address (127.0.0.1, ::1 or localhost), got "${host}": the inspection stream has no authentication beyond its URL token and must not leave this machine`,
  );
}

const html = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const script = (value: string) => JSON.stringify(value).replace(/</g, '\\u003c');

/** The page that feeds the Stately inspector (an iframe) from the relay; after @statelyai/inspect's server page. */
function bridgePage(token: string, inspectorUrl: URL): string {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>taskmill · Stately inspector</title>
<style>*{margin:0;padding:0}html,body{height:100%}iframe{width:100%;height:100%;border:none}</style></head>
<body><iframe id="inspector" referrerpolicy="no-referrer" src="${html(inspectorUrl.href)}"></iframe>
<script>
const frame = document.getElementById('inspector');
const buffer = [];
let origin = null; // the inspector page's, once it says it is ready; events go to that origin only
window.addEventListener('message', (e) => {
  if (e.source !== frame.contentWindow || !e.data || e.data.type !== '@statelyai.connected') return;
  if (origin) return location.reload(); // the inspector reloaded and lost its state: start over with a replay
  origin = e.origin;
  for (const event of buffer.splice(0)) frame.contentWindow.postMessage(event, origin);
});
const ws = new WebSocket('ws://' + location.host + '/?token=' + encodeURIComponent(${script(token)}));
ws.onmessage = (e) => {
  const event = JSON.parse(e.data);
  if (origin) frame.contentWindow.postMessage(event, origin);
  else buffer.push(event);
};
ws.onclose = () => { document.title = 'taskmill · disconnected'; };
</script></body></html>`;
}

function sameToken(given: string | null, token: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Starts the relay on a loopback address. Viewers: the page at `url`, or any WebSocket client at `wsUrl`. */
export async function startInspector(options: InspectorOptions = {}): Promise<InspectorRelay> {
  const host = loopbackHost(options.host ?? '127.0.0.1');
  const requestedPort = options.port ?? 0;
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65_535) {
    throw new ConfigError(`inspector port must be an integer from 0 to 65535, got ${String(requestedPort)}`);
  }
  const token = options.token ?? randomBytes(16).toString('base64url');
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(token)) throw new ConfigError('inspector token must be 16–128 characters of [A-Za-z0-9_-]');
  let inspectorUrl: URL;
  try {
    inspectorUrl = new URL(options.inspectorUrl ?? DEFAULT_INSPECTOR_PAGE);
  } catch {
    throw new ConfigError(`inspectorUrl is not a URL: ${String(options.inspectorUrl)}`);
  }
  if (inspectorUrl.protocol !== 'https:' && inspectorUrl.protocol !== 'http:') throw new ConfigError('inspectorUrl must be an http(s) URL');

  const viewers = new Set<WebSocket>();
  const roots = new Set<InspectedRef>();
  const attached = new Map<InspectedRef, Subscription | null>();
  const stats = { sent: 0, dropped: 0 };
  let outbox: (string | (() => string))[] = [];
  let flushScheduled = false;
  let closing: Promise<void> | null = null;

  const send = (ws: WebSocket, text: string) => {
    ws.send(text);
    stats.sent++;
  };
  /** Every live actor with its current snapshot: a new viewer's starting point, or a lagging one's fresh start. */
  const replay = (ws: WebSocket) => {
    for (const root of new Set([...roots, ...attached.keys()])) {
      for (const ref of liveTree(root)) send(ws, JSON.stringify(actorMessage(ref, root.sessionId)));
    }
  };
  // A viewer more than MAX_VIEWER_BACKLOG behind misses messages until it has caught up, then gets a replay.
  const lagging = new WeakSet<WebSocket>();
  const broadcast = (text: string) => {
    for (const ws of viewers) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      if (lagging.has(ws) ? ws.bufferedAmount > MAX_VIEWER_BACKLOG / 4 : ws.bufferedAmount > MAX_VIEWER_BACKLOG) {
        lagging.add(ws);
        stats.dropped++;
        continue;
      }
      if (lagging.delete(ws)) replay(ws);
      send(ws, text);
    }
  };
  const flush = () => {
    flushScheduled = false;
    const items = outbox;
    outbox = [];
    for (const item of items) broadcast(typeof item === 'string' ? item : item());
  };
  const enqueue = (item: string | (() => string)) => {
    outbox.push(item);
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flush);
    }
  };

  const observe = (event: InspectionEvent): void => {
    try {
      if (viewers.size === 0) return;
      if (event.type === '@xstate.actor') {
        // Its first snapshot exists once the current step is over.
        const ref = event.actorRef as InspectedRef;
        enqueue(() => JSON.stringify(actorMessage(ref, event.rootId)));
      } else if (event.type === '@xstate.event' || event.type === '@xstate.snapshot') {
        enqueue(JSON.stringify(sanitizeInspectionEvent(event)));
      }
    } catch {
      // An observer that throws would break the actor that is inspected.
    }
  };
  const inspect = (event: InspectionEvent): void => {
    if (event.type === '@xstate.actor' && !(event.actorRef as InspectedRef)._parent) {
      for (const root of roots) if ((root.getSnapshot() as { status?: string } | undefined)?.status !== 'active') roots.delete(root);
      roots.add(event.actorRef as InspectedRef);
    }
    observe(event);
  };
  const subscribeAttached = () => {
    // A root also given `inspect` at creation is already observed.
    for (const [ref, sub] of attached) if (!sub && ref.system && !roots.has(ref)) attached.set(ref, ref.system.inspect(observe));
  };
  const unsubscribeAttached = () => {
    for (const [ref, sub] of attached) {
      sub?.unsubscribe();
      attached.set(ref, null);
    }
  };

  const hostAllowed = (value: string | undefined, port: number) =>
    value === `${host.includes(':') ? `[${host}]` : host}:${port}` || value === `localhost:${port}`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://relay');
    const port = (server.address() as AddressInfo).port;
    const [status, body, type] = !hostAllowed(req.headers.host, port)
      ? [403, 'taskmill inspector: unexpected Host header\n', 'text/plain']
      : url.pathname !== '/' || !sameToken(url.searchParams.get('token'), token)
        ? [401, 'taskmill inspector: open the URL the consumer printed (it carries a token)\n', 'text/plain']
        : [200, bridgePage(token, inspectorUrl), 'text/html'];
    res.writeHead(status, { 'Content-Type': `${type}; charset=utf-8`, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' });
    res.end(body);
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  server.on('upgrade', (req, socket, head) => {
    const port = (server.address() as AddressInfo).port;
    const url = new URL(req.url ?? '/', 'http://relay');
    const origin = req.headers.origin;
    // A browser page from another origin may open a WebSocket to localhost: only our own page (or a non-browser client) gets in.
    const originOk = origin === undefined || origin === `http://${req.headers.host ?? ''}`;
    if (closing || url.pathname !== '/' || !hostAllowed(req.headers.host, port) || !originOk || !sameToken(url.searchParams.get('token'), token)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      flush(); // what is pending belongs to the viewers already connected
      viewers.add(ws);
      const forget = () => {
        viewers.delete(ws);
        if (viewers.size === 0) unsubscribeAttached();
      };
      ws.on('close', forget);
      ws.on('error', forget);
      ws.on('message', () => {}); // viewers have nothing to say; nothing they send is relayed
      replay(ws);
      subscribeAttached();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code === 'EADDRINUSE' ? 'the port is in use (choose another, or 0 for any free port)' : (error.code ?? error.message);
      reject(new ConfigError(`inspector cannot listen on ${host}:${requestedPort}: ${reason}`));
    });
    server.listen(requestedPort, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    inspect,
    attach(actor) {
      const root = rootOf(actor as InspectedRef);
      if (!attached.has(root)) attached.set(root, null);
      if (viewers.size > 0) subscribeAttached();
      return () => {
        attached.get(root)?.unsubscribe();
        attached.delete(root);
      };
    },
    url: `${origin}/?token=${token}`,
    wsUrl: `${origin.replace('http', 'ws')}/?token=${token}`,
    host,
    port,
    stats: () => ({ viewers: viewers.size, ...stats }),
    close() {
      closing ??= (async () => {
        flush();
        unsubscribeAttached();
        const closed = [...viewers].map((ws) => new Promise<void>((resolve) => ws.once('close', () => resolve())));
        for (const ws of viewers) ws.close(1001, 'taskmill consumer stopped');
        const grace = setTimeout(() => viewers.forEach((ws) => ws.terminate()), 1000);
        await Promise.all(closed);
        clearTimeout(grace);
        wss.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}

// ─────────────────────────────────────────────────────────── the log file
export interface InspectLogOptions {
  /** Also write each snapshot's (sanitised) context. Default false: value and status only. */
  context?: boolean;
}

export interface InspectLog {
  /** An inspection observer for `createConsumer({ inspect })`. */
  readonly inspect: (event: InspectionEvent) => void;
  /** Inspects an actor's whole system (logs the actors already alive first). Returns a detach function. */
  attach(actor: AnyActorRef): () => void;
  readonly file: string;
  /** Flushes and closes the file; rejects if a write failed. */
  close(): Promise<void>;
}

/** One JSON line per inspection event; null for microsteps and actions. */
export function inspectLogLine(event: InspectionEvent, options: InspectLogOptions = {}): Record<string, unknown> | null {
  const ref = event.actorRef as InspectedRef;
  const line: Record<string, unknown> = { t: new Date().toISOString(), kind: '', actor: actorName(ref), session: ref.sessionId };
  if (ref.systemId) line.system = ref.systemId;
  switch (event.type) {
    case '@xstate.actor':
      line.kind = 'actor';
      if (ref._parent) line.parent = actorName(ref._parent);
      line.logic = ref.logic?.config?.id ?? 'callback';
      return line;
    case '@xstate.event': {
      const source = event.sourceRef as InspectedRef | undefined;
      return Object.assign(line, { kind: 'event', type: event.event.type, source: source ? actorName(source) : undefined, target: line.actor, event: sanitizeEvent(event.event) });
    }
    case '@xstate.snapshot': {
      const { value, status, error, context } = sanitizeSnapshot(event.snapshot);
      return Object.assign(line, { kind: 'snapshot', type: event.event.type, status, value, error, ...(options.context ? { context } : {}) });
    }
    default:
      return null;
  }
}

/**
 * The sanitised inspection stream as JSON lines appended to `file`, for
 * post-mortems: which worker ran which job, what failed and when. Opening the
 * file fails at once (ConfigError); a backlog over 16 MiB (a disk slower than
 * the consumer) drops lines and writes `{ kind: 'dropped', count }`.
 */
export function createInspectLog(file: string, options: InspectLogOptions = {}): InspectLog {
  let fd: number;
  try {
    fd = openSync(file, 'a');
  } catch (error) {
    throw new ConfigError(`cannot open the inspect log "${file}": ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const stream = createWriteStream(file, { fd });
  let failure: Error | null = null;
  stream.on('error', (error) => (failure ??= error));
  let dropped = 0;
  let closing: Promise<void> | null = null;
  const write = (line: Record<string, unknown>) => {
    if (stream.writableLength > MAX_LOG_BACKLOG) return void dropped++;
    if (dropped > 0) {
      stream.write(`${JSON.stringify({ t: line.t, kind: 'dropped', count: dropped })}\n`);
      dropped = 0;
    }
    stream.write(`${JSON.stringify(line)}\n`);
  };
  const inspect = (event: InspectionEvent): void => {
    if (failure || closing) return;
    try {
      const line = inspectLogLine(event, options);
      if (line) write(line);
    } catch {
      // An observer that throws would break the actor that is inspected.
    }
  };
  return {
    inspect,
    file,
    attach(actor) {
      const root = rootOf(actor as InspectedRef);
      for (const ref of liveTree(root)) inspect({ type: '@xstate.actor', actorRef: ref as unknown as AnyActorRef, rootId: root.sessionId });
      const subscription = root.system?.inspect(inspect);
      return () => subscription?.unsubscribe();
    },
    close() {
      closing ??= (async () => {
        stream.end();
        await finished(stream).catch(() => {});
        if (failure) throw new Error(`inspect log "${file}" could not be written: ${failure.message}`);
      })();
      return closing;
    },
  };
}
