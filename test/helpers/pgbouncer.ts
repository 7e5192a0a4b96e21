/**
 * A private PgBouncer (Debian's `pgbouncer`) in transaction mode, on a free
 * loopback port in a temp dir, in front of the shared PostgreSQL
 * (POSTGRES_URL): the pooler that breaks session state, named prepared
 * statements and LISTEN, for the tests that prove taskmill does without them.
 *
 * PgBouncer refuses to run as root: running as root, it is spawned as the
 * `postgres` OS user (like test/helpers/pg-server.ts does for postgres).
 * It runs in the foreground as our child, so a process 'exit' hook can kill
 * it when a test run fails or is interrupted.
 *
 * Absent binary: the suites using it skip loudly; under CI=true that is a
 * failure (.ci/run installs it), as for a missing server in services.ts.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './pg-server.js';
import { POSTGRES_URL } from './services.js';

export const PGBOUNCER_BIN = process.env.TASKMILL_PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer';

function userIds(user: string): { uid: number; gid: number } | null {
  try {
    return {
      uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim()),
    };
  } catch {
    return null;
  }
}

const AS_ROOT = process.getuid?.() === 0;
const OWNER = AS_ROOT ? userIds('postgres') : null;

function checkAvailable(): boolean {
  let reason: string | null = null;
  if (!existsSync(PGBOUNCER_BIN)) reason = `${PGBOUNCER_BIN} is missing (apt-get install pgbouncer, or set TASKMILL_PGBOUNCER_BIN)`;
  else if (AS_ROOT && !OWNER) reason = 'running as root and there is no `postgres` OS user to run pgbouncer as';
  if (reason === null) return true;
  if (process.env.CI) throw new Error(`PgBouncer: ${reason} — under CI a missing pgbouncer is a failure, not a skip`);
  console.warn(`\n!!! SKIPPING PgBouncer tests: ${reason}. !!!\n`);
  return false;
}

export const hasPgbouncer = checkAvailable();

export interface Pgbouncer {
  readonly port: number;
  /** POSTGRES_URL's user and database on the pooler's port (no password: the pooler trusts its clients). */
  readonly url: string;
  /** SIGTERM (immediate shutdown), waits for the exit and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface PgbouncerOptions {
  /** Server connections per (database, user) pair. Default 8: several, so a statement prepared on one is missing on the next. */
  poolSize?: number;
}

/** Starts pgbouncer (pool_mode = transaction, auth trust) in front of POSTGRES_URL's server and database. */
export async function startPgbouncer(options: PgbouncerOptions = {}): Promise<Pgbouncer> {
  const upstream = new URL(POSTGRES_URL);
  const user = decodeURIComponent(upstream.username || 'postgres');
  // The pooler logs in to the server with the auth_file's password (clients are trusted).
  const password = decodeURIComponent(upstream.password).replace(/"/g, '""');
  const database = decodeURIComponent(upstream.pathname.slice(1) || user);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'taskmill-pgbouncer-'));
  const port = await freePort();
  const ini = path.join(dir, 'pgbouncer.ini');
  const logFile = path.join(dir, 'pgbouncer.log');
  writeFileSync(path.join(dir, 'users.txt'), `"${user}" "${password}"\n`, { mode: 0o600 });
  writeFileSync(
    ini,
    [
      '[databases]',
      `${database} = host=${upstream.hostname} port=${upstream.port || 5432} dbname=${database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      "unix_socket_dir = ''",
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize ?? 8}`,
      'max_client_conn = 500',
      `logfile = ${logFile}`,
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  if (OWNER) for (const file of [dir, ini, path.join(dir, 'users.txt')]) chownSync(file, OWNER.uid, OWNER.gid);

  const child = spawn(PGBOUNCER_BIN, [ini], { stdio: ['ignore', 'ignore', 'pipe'], ...(OWNER ? { uid: OWNER.uid, gid: OWNER.gid } : {}) });
  running.add(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitedEarly = false;
  void exited.then(() => {
    exitedEarly = true;
    running.delete(child);
  });

  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '') + stderr;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  while (!(await reachable(port))) {
    if (exitedEarly || Date.now() > deadline) {
      const why = exitedEarly ? 'exited' : 'did not listen within 15 s';
      const output = log();
      await stop();
      throw new Error(`pgbouncer ${why}: ${output.trim().slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const url = new URL(POSTGRES_URL);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  url.password = '';
  return { port, url: url.href, stop };
}
