/**
 * A throw-away PostgreSQL server for fault tests: initdb + pg_ctl in a temp
 * dir on a free port, never the shared server. Running as root, the binaries
 * run as the `postgres` OS user (postgres refuses to run as root).
 *
 * Every server started here is also stopped by a process 'exit' hook, so a
 * failed or interrupted test run does not leave postmasters behind.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The directory holding initdb/pg_ctl: $TASKMILL_PG_BIN, `pg_config --bindir`, else the newest Debian-style install. */
function findBinDir(): string | null {
  const candidates: string[] = [];
  if (process.env.TASKMILL_PG_BIN) candidates.push(process.env.TASKMILL_PG_BIN);
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => path.join(root, v, 'bin')));
  }
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config on PATH
  }
  return candidates.find((dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl'))) ?? null;
}

const BIN_DIR = findBinDir();
const AS_ROOT = process.getuid?.() === 0;
const RUN_AS = 'postgres';

function userIds(user: string): { uid: number; gid: number } | null {
  try {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return null;
  }
}

const OWNER = AS_ROOT ? userIds(RUN_AS) : null;

/** Whether this machine can start a private server (binaries present, and a non-root user to run them when we are root). */
export const canStartPostgres = BIN_DIR !== null && (!AS_ROOT || OWNER !== null);

function command(binary: string, args: string[]): [string, string[]] {
  const file = path.join(BIN_DIR!, binary);
  return AS_ROOT ? ['runuser', ['-u', RUN_AS, '--', file, ...args]] : [file, args];
}

async function pg(binary: string, args: string[]): Promise<string> {
  const [file, argv] = command(binary, args);
  try {
    const { stdout } = await run(file, argv, { encoding: 'utf8', timeout: 60_000 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${binary} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: error });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface PgServerOptions {
  /** Require this password (scram-sha-256) for TCP connections of user postgres. Default: trust. */
  password?: string;
}

export interface PgServer {
  readonly port: number;
  readonly dataDir: string;
  /** postgres://postgres[:password]@127.0.0.1:port/postgres */
  readonly url: string;
  /** `url` without the password (for asserting that a wrong one is refused). */
  urlWithPassword(password: string): string;
  /** Starts the (stopped) server again on the same port and data. */
  start(): Promise<void>;
  /** Stops it (`fast`: disconnects clients, clean shutdown; `immediate`: like a crash). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops it if running and deletes its directory. Idempotent. */
  destroy(): Promise<void>;
}

const running = new Set<string>();

process.once('exit', () => {
  for (const dataDir of running) {
    const [file, argv] = command('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
    spawnSync(file, argv, { stdio: 'ignore', timeout: 10_000 });
  }
});

/** initdb + pg_ctl start on a free port in a fresh temp dir. */
export async function startPgServer(options: PgServerOptions = {}): Promise<PgServer> {
  if (!canStartPostgres) throw new Error('cannot start a private PostgreSQL: no initdb/pg_ctl found (set TASKMILL_PG_BIN)');
  const root = await mkdtemp(path.join(os.tmpdir(), 'taskmill-pg-'));
  const dataDir = path.join(root, 'data');
  if (OWNER) await chown(root, OWNER.uid, OWNER.gid);
  await chmod(root, 0o700);

  const initArgs = ['-D', dataDir, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync', '--auth-local=trust'];
  if (options.password !== undefined) {
    const pwfile = path.join(root, 'pwfile');
    await writeFile(pwfile, `${options.password}\n`, { mode: 0o600 });
    if (OWNER) await chown(pwfile, OWNER.uid, OWNER.gid);
    initArgs.push('--auth-host=scram-sha-256', `--pwfile=${pwfile}`);
  } else {
    initArgs.push('--auth-host=trust');
  }
  await pg('initdb', initArgs);

  const port = await freePort();
  // Small, fast and private: no fsync (a test server), sockets only in our dir and on 127.0.0.1.
  await writeFile(
    path.join(dataDir, 'postgresql.auto.conf'),
    [
      `port = ${port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${root}'`,
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'max_connections = 40',
      'shared_buffers = 16MB',
      'log_min_messages = warning',
      '',
    ].join('\n'),
  );
  if (OWNER) await chown(path.join(dataDir, 'postgresql.auto.conf'), OWNER.uid, OWNER.gid);

  const logFile = path.join(root, 'server.log');
  let up = false;
  const start = async () => {
    await pg('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '30', 'start']);
    up = true;
    running.add(dataDir);
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (!up) return;
    await pg('pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '30', 'stop']);
    up = false;
    running.delete(dataDir);
  };
  await start();

  const credentials = options.password !== undefined ? `postgres:${encodeURIComponent(options.password)}` : 'postgres';
  return {
    port,
    dataDir,
    url: `postgres://${credentials}@127.0.0.1:${port}/postgres`,
    urlWithPassword: (password) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async destroy() {
      try {
        await stop('immediate');
      } catch {
        // Last resort: the postmaster's pid is the first line of postmaster.pid.
        try {
          const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
          if (pid > 0) process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
        running.delete(dataDir);
      }
      await rm(root, { recursive: true, force: true });
    },
  };
}
