/**
 * The soak's backends: each one gets servers of its own (free port, temp dir),
 * never the shared ones. Redis runs with an append-only file fsynced on every
 * write, so a restart loses nothing that was acknowledged; PostgreSQL is
 * restarted with a fast (clean) shutdown. SQLite has no server to restart.
 */
import path from 'node:path';
import { RedisServer } from '../../test/helpers/redis-server.js';
import { canStartPostgres, startPgServer, type PgServer } from '../../test/helpers/pg-server.js';

export const BACKENDS = ['sqlite', 'redis', 'redis-blocking', 'postgres'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface SoakBackend {
  name: BackendName;
  url: string;
  /** Stops the server, waits `downMs`, starts it again on the same port and data; says how it stopped. Null: no server. */
  restart: ((downMs: number, random: () => number) => Promise<string>) | null;
  /** Makes sure the server is up (the drain needs it). */
  ensureUp(): Promise<void>;
  dispose(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startBackend(name: BackendName, dir: string): Promise<SoakBackend> {
  switch (name) {
    case 'sqlite':
      return {
        name,
        url: `sqlite:${path.join(dir, 'soak.sqlite')}`,
        restart: null,
        async ensureUp() {},
        async dispose() {},
      };
    case 'redis':
    case 'redis-blocking': {
      const server = await RedisServer.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
      const query = name === 'redis-blocking' ? '?blocking=true&prefix=soak' : '?prefix=soak';
      return {
        name,
        url: `${server.url}${query}`,
        async restart(downMs, random) {
          // SIGKILL is a crash; SIGTERM makes redis-server SHUTDOWN (fsync the AOF, close clients).
          const signal = random() < 0.5 ? 'SIGKILL' : 'SIGTERM';
          await server.stop(signal);
          await sleep(downMs);
          await server.start();
          return signal === 'SIGKILL' ? 'kill -9' : 'shutdown';
        },
        async ensureUp() {
          if (!server.running) await server.start();
        },
        dispose: () => server.dispose(),
      };
    }
    case 'postgres': {
      if (!canStartPostgres) throw new Error('cannot start a private PostgreSQL here (no initdb/pg_ctl; set TASKMILL_PG_BIN)');
      const server: PgServer = await startPgServer();
      let up = true;
      return {
        name,
        url: `${server.url}?schema=soak`,
        async restart(downMs) {
          await server.stop('fast');
          up = false;
          await sleep(downMs);
          await server.start();
          up = true;
          return 'fast stop';
        },
        async ensureUp() {
          if (!up) {
            await server.start();
            up = true;
          }
        },
        dispose: () => server.destroy(),
      };
    }
  }
}
