/**
 * A TCP proxy on a free loopback port that sits between a client under test
 * and a real server, and misbehaves on command: the network faults a consumer
 * must survive without any help from the server.
 *
 * Modes, switched while connections are live:
 * - `pass`: bytes go both ways untouched;
 * - `reset`: every live connection is closed with an RST both ways (new ones pass);
 * - `silence`: the live connections stay open and carry nothing either way — no
 *   reply, no FIN, no RST, as when a NAT or firewall forgets a connection;
 * - `latency(ms)`: every chunk is delayed by `ms` (order kept);
 * - `trickle(bytes, everyMs)`: at most `bytes` per `everyMs` each way.
 *
 * `silence`, `latency` and `trickle` apply to the connections live at the
 * switch (`{ newConnections: true }` to every later one as well), so a client
 * that replaces its connection gets a working one: the fault is in the path,
 * not in the server.
 */
import net from 'node:net';

export type FaultMode = { kind: 'pass' } | { kind: 'silence' } | { kind: 'latency'; ms: number } | { kind: 'trickle'; bytes: number; everyMs: number };

export interface ProxiedConnection {
  readonly id: number;
  readonly openedAt: number;
  /** When the client side ended or closed it (FIN, RST or destroy), else undefined. */
  closedByClientAt: number | undefined;
  mode: FaultMode;
}

interface Link {
  info: ProxiedConnection;
  client: net.Socket;
  server: net.Socket;
  /** Per direction: chunks waiting for their time (latency) or their share (trickle). */
  pending: { toServer: Buffer[]; toClient: Buffer[] };
  timers: Set<NodeJS.Timeout>;
  /** Closed by the proxy (reset, stop, or its other side gone): the client's close that follows is not the client's doing. */
  dropped: boolean;
}

export class FaultProxy {
  readonly #server: net.Server;
  readonly #links = new Set<Link>();
  readonly connections: ProxiedConnection[] = [];
  #newMode: FaultMode = { kind: 'pass' };
  #nextId = 1;
  port = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.#server = net.createServer((client) => this.#accept(client));
  }

  /** A proxy to `host:port`, listening on 127.0.0.1 at a free port. */
  static async start(host: string, port: number): Promise<FaultProxy> {
    const proxy = new FaultProxy(host, port);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.port = (proxy.#server.address() as net.AddressInfo).port;
    return proxy;
  }

  /** `url` with its host and port replaced by this proxy's. */
  url(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  /** Connections the client has not closed. */
  live(): ProxiedConnection[] {
    return [...this.#links].map((link) => link.info).filter((info) => info.closedByClientAt === undefined);
  }

  /** Connections opened after `time` (ms since the epoch). */
  openedAfter(time: number): ProxiedConnection[] {
    return this.connections.filter((c) => c.openedAt > time);
  }

  /** Applies `mode` to the live connections (and to later ones with `newConnections`); returns the ones it applied to. */
  set(mode: FaultMode, options: { newConnections?: boolean } = {}): ProxiedConnection[] {
    if (options.newConnections) this.#newMode = mode;
    const hit: ProxiedConnection[] = [];
    for (const link of this.#links) {
      if (link.info.closedByClientAt !== undefined) continue;
      link.info.mode = mode;
      hit.push(link.info);
      if (mode.kind === 'pass') this.#flush(link);
    }
    return hit;
  }

  /** Applies `mode` to connections opened from now on only. */
  setNew(mode: FaultMode): void {
    this.#newMode = mode;
  }

  /** Every live connection closed with an RST both ways; returns them. */
  reset(): ProxiedConnection[] {
    const hit: ProxiedConnection[] = [];
    for (const link of [...this.#links]) {
      hit.push(link.info);
      this.#drop(link, true);
    }
    return hit;
  }

  async stop(): Promise<void> {
    for (const link of [...this.#links]) this.#drop(link, false);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    const info: ProxiedConnection = { id: this.#nextId++, openedAt: Date.now(), closedByClientAt: undefined, mode: this.#newMode };
    this.connections.push(info);
    const server = net.connect({ host: this.targetHost, port: this.targetPort });
    const link: Link = { info, client, server, pending: { toServer: [], toClient: [] }, timers: new Set(), dropped: false };
    this.#links.add(link);
    client.setNoDelay(true);
    server.setNoDelay(true);
    client.on('data', (chunk: Buffer) => this.#forward(link, 'toServer', chunk));
    server.on('data', (chunk: Buffer) => this.#forward(link, 'toClient', chunk));
    const clientGone = () => {
      if (link.dropped) return;
      info.closedByClientAt ??= Date.now();
      // A silent path forwards nothing, not even the close: the server learns of it from its own timeouts (or ours, at stop()).
      if (info.mode.kind !== 'silence') this.#drop(link, false);
    };
    client.on('end', clientGone);
    client.on('close', clientGone);
    client.on('error', clientGone);
    const serverGone = () => {
      if (info.mode.kind !== 'silence') this.#drop(link, false);
    };
    server.on('end', serverGone);
    server.on('close', serverGone);
    server.on('error', serverGone);
  }

  #forward(link: Link, way: 'toServer' | 'toClient', chunk: Buffer): void {
    const { mode } = link.info;
    if (mode.kind === 'silence') return; // swallowed: this path has forgotten the connection
    if (mode.kind === 'pass' && link.pending[way].length === 0) {
      this.#write(link, way, chunk);
      return;
    }
    link.pending[way].push(chunk);
    if (mode.kind === 'latency') {
      this.#later(link, mode.ms, () => {
        const next = link.pending[way].shift(); // gone when a switch back to pass flushed it
        if (next) this.#write(link, way, next);
      });
    } else if (mode.kind === 'trickle' && link.pending[way].length === 1) this.#trickle(link, way);
    else if (mode.kind === 'pass') this.#flush(link);
  }

  /** Sends at most `bytes` of what waits in `way`, then again every `everyMs` while anything waits. */
  #trickle(link: Link, way: 'toServer' | 'toClient'): void {
    const { mode } = link.info;
    const queue = link.pending[way];
    if (queue.length === 0) return;
    if (mode.kind !== 'trickle') return this.#flush(link);
    const head = queue[0]!;
    const part = head.subarray(0, mode.bytes);
    if (part.length === head.length) queue.shift();
    else queue[0] = head.subarray(mode.bytes);
    this.#write(link, way, part);
    this.#later(link, mode.everyMs, () => this.#trickle(link, way));
  }

  #flush(link: Link): void {
    for (const way of ['toServer', 'toClient'] as const) {
      for (const chunk of link.pending[way].splice(0)) this.#write(link, way, chunk);
    }
  }

  #write(link: Link, way: 'toServer' | 'toClient', chunk: Buffer): void {
    if (link.info.mode.kind === 'silence') return;
    const target = way === 'toServer' ? link.server : link.client;
    if (!target.destroyed) target.write(chunk);
  }

  #later(link: Link, ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      link.timers.delete(timer);
      fn();
    }, ms);
    link.timers.add(timer);
  }

  #drop(link: Link, rst: boolean): void {
    if (!this.#links.delete(link)) return;
    for (const timer of link.timers) clearTimeout(timer);
    link.dropped = true;
    for (const socket of [link.client, link.server]) {
      if (rst && !socket.destroyed) socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}
