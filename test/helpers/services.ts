/**
 * Which real servers a test may use. On a developer laptop without Redis or
 * PostgreSQL the suites that need them skip with a loud reason; under CI
 * (CI=true) a missing server is a failure, never a skip.
 */
import net from 'node:net';
import pg from 'pg';

export const REDIS_URL = process.env.TASKMILL_TEST_REDIS ?? 'redis://127.0.0.1:6379/0';
export const POSTGRES_URL = process.env.TASKMILL_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function available(what: string, url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  const ok = await reachable(hostname, Number(port));
  if (ok) return true;
  const message = `${what} is not reachable at ${hostname}:${port}`;
  if (process.env.CI) throw new Error(`${message} — under CI a missing server is a failure, not a skip`);
  console.warn(`\n!!! SKIPPING ${what} tests: ${message}. Start it to run them. !!!\n`);
  return false;
}

export const hasRedis = await available('Redis', REDIS_URL);
export const hasPostgres = await available('PostgreSQL', POSTGRES_URL);

/** A queue name no other test file (running in parallel) uses. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Drops the schema named by a PostgreSQL queue URL's `?schema=` (what a test's fresh URL created). */
export async function dropPostgresSchema(url: string): Promise<void> {
  const schema = new URL(url).searchParams.get('schema');
  if (!schema) throw new Error('dropPostgresSchema needs a ?schema= URL');
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${client.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}
