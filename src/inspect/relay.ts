/**
 * The loopback WebSocket relay between a consumer and the Stately inspector
 * (why not @statelyai/inspect's server: inspect/index.ts).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP, type AddressInfo } from 'node:net';
import type { WebSocket } from 'ws';
import type { AnyActorRef, InspectionEvent, Subscription } from 'xstate';
import { ConfigError } from '../shared/errors.js';
import { actorMessage, liveTree, rootOf, sanitizeInspectionEvent, type InspectedRef } from './sanitize.js';

/** `taskmill consume --inspect` without a port. */
export const DEFAULT_INSPECT_PORT = 9898;
const DEFAULT_INSPECTOR_PAGE = 'https://stately.ai/inspect';
/** A viewer further behind than this loses messages instead of growing our memory. */
const MAX_VIEWER_BACKLOG = 4 * 1024 * 1024;

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
  // Loaded here, not at the top: the package index (what every consumer
  // imports) exports startInspector, and ws with node's HTTP stack cost a
  // consumer that never inspects about 7 MiB of resident memory.
  const [{ default: http }, { WebSocket, WebSocketServer }] = await Promise.all([import('node:http'), import('ws')]);

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
      roots.add(event.actorRef);
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
