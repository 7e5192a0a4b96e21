/**
 * A redis-server of a test's own, on a free port in a temp dir, for fault
 * tests that kill, restart or freeze the server (never the shared one).
 * No persistence by default: a restart starts empty (pass
 * `args: ['--appendonly', 'yes', '--appendfsync', 'always']` for a server
 * that keeps every acknowledged write; later arguments win). Every server started here is
 * killed when the test process exits, even after a failed test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BINARY = process.env.TASKMILL_TEST_REDIS_SERVER ?? 'redis-server';

function binaryWorks(): boolean {
  const probe = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  return probe.status === 0;
}

/** Whether redis-server can be started here; under CI its absence is a failure, not a skip. */
export const hasRedisServer: boolean = (() => {
  if (binaryWorks()) return true;
  const message = `${BINARY} is not installed (set TASKMILL_TEST_REDIS_SERVER to its path)`;
  if (process.env.CI) throw new Error(`${message} — under CI a missing server is a failure, not a skip`);
  console.warn(`\n!!! SKIPPING Redis fault tests: ${message}. !!!\n`);
  return false;
})();

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something answers a PING on the port (any reply: +PONG, or -NOAUTH with a password). */
function answers(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', () => done(true));
  });
}

export interface RedisServerOptions {
  /** requirepass; the URL then carries it. */
  password?: string;
  /** More `--option value` arguments, e.g. ['--maxmemory-policy', 'allkeys-lru']. */
  args?: string[];
}

export class RedisServer {
  readonly dir: string;
  #child: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'taskmill-redis-'));
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options);
    await server.start();
    return server;
  }

  /** redis://[:password@]127.0.0.1:PORT/0 */
  get url(): string {
    const auth = this.options.password ? `:${encodeURIComponent(this.options.password)}@` : '';
    return `redis://${auth}127.0.0.1:${this.port}/0`;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  async start(): Promise<void> {
    if (this.#child) return;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no'];
    if (this.options.password) args.push('--requirepass', this.options.password);
    args.push(...(this.options.args ?? []));
    const child = spawn(BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      if (this.#child === child) this.#child = null;
    });
    this.#child = child;
    const deadline = Date.now() + 10_000;
    while (!(await answers(this.port))) {
      if (this.#child !== child) throw new Error(`redis-server on port ${this.port} exited at start: ${stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops the server: SIGKILL (a crash) or SIGTERM (a clean stop); resolves once it has exited. */
  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT'); // a frozen process would not act on SIGTERM
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Freezes the process (SIGSTOP): it keeps its sockets open but answers nothing. */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  /** Kills the server and removes its directory. Safe to call more than once. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
