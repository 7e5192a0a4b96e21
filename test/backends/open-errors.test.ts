/**
 * Opening a queue: a failure that waiting cannot mend (authentication, no
 * such role or database, TLS, a SQLite file in a missing directory) fails a
 * consumer's start at once with the server's reason, said once; a transient
 * one (connection refused) is retried until openTimeoutMs.
 *
 * The consumers here get openTimeoutMs 60 s: without the permanent/transient
 * split each start below would retry past the test's own timeout.
 */
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumer } from '../../src/consumer/consumer.js';
import { createQueue } from '../../src/backends/index.js';
import { QueueConnectionError } from '../../src/shared/errors.js';
import { isPermanentPostgresError, isPermanentRedisError, isPermanentSqliteError } from '../../src/backends/permanent-errors.js';
import { POSTGRES_URL, hasPostgres } from '../helpers/services.js';
import { RedisServer, hasRedisServer, freePort } from '../helpers/redis-server.js';
import { tempDir } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });

/** Starts a consumer on `url` and returns how its start failed. */
async function startFailure(url: string, openTimeoutMs = 60_000): Promise<{ error: QueueConnectionError; ms: number }> {
  const consumer = createConsumer({ queue: createQueue(url, { onWarning: () => {} }), logger: silent, periodic: false, openTimeoutMs });
  const started = Date.now();
  const error = await consumer.start().then(
    () => {
      throw new Error(`consumer on ${url} started`);
    },
    (e: unknown) => e,
  );
  await consumer.stop({ timeout: 1000 }).catch(() => {});
  expect(error).toBeInstanceOf(QueueConnectionError);
  return { error: error as QueueConnectionError, ms: Date.now() - started };
}

/** The reason is in the message exactly once, and nothing (a cause) repeats it in a log line. */
function expectReasonOnce(error: QueueConnectionError, reason: string): void {
  expect(error.message.split(reason)).toHaveLength(2);
  expect(error.cause).toBeUndefined();
  expect(error.permanent).toBe(true);
}

describe('which driver errors are permanent', () => {
  const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  it.each([
    ['28P01 (password)', withCode('28P01'), true],
    ['28000 (no such role)', withCode('28000'), true],
    ['3D000 (no such database)', withCode('3D000'), true],
    ['42501 (may not create the schema)', withCode('42501'), true],
    ['no SSL on the server', new Error('The server does not support SSL connections'), true],
    ['a self-signed certificate', withCode('DEPTH_ZERO_SELF_SIGNED_CERT'), true],
    ['a host name not in the certificate', withCode('ERR_TLS_CERT_ALTNAME_INVALID'), true],
    ['57P03 (the server is starting)', withCode('57P03'), false],
    ['53300 (too many connections)', withCode('53300'), false],
    ['ECONNREFUSED', withCode('ECONNREFUSED'), false],
    ['ECONNRESET', withCode('ECONNRESET'), false],
    ['EAI_AGAIN (DNS)', withCode('EAI_AGAIN'), false],
  ])('PostgreSQL: %s', (_what, error, permanent) => {
    expect(isPermanentPostgresError(error)).toBe(permanent);
  });
  it.each([
    ['NOAUTH', new Error('NOAUTH Authentication required.'), true],
    ['WRONGPASS', new Error('WRONGPASS invalid username-password pair or user is disabled.'), true],
    ['NOPERM', new Error("NOPERM User x has no permissions to run the 'info' command"), true],
    ['an invalid DB index', new Error('ERR DB index is out of range'), true],
    ['a certificate', withCode('CERT_HAS_EXPIRED'), true],
    ['LOADING (the server is starting)', new Error('LOADING Redis is loading the dataset in memory'), false],
    ['ECONNREFUSED', withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'), false],
  ])('Redis: %s', (_what, error, permanent) => {
    expect(isPermanentRedisError(error)).toBe(permanent);
  });
  it.each([
    ['SQLITE_CANTOPEN', withCode('SQLITE_CANTOPEN'), true],
    ['SQLITE_NOTADB', withCode('SQLITE_NOTADB'), true],
    ['a missing directory', new TypeError('Cannot open database because the directory does not exist'), true],
    ['SQLITE_BUSY', withCode('SQLITE_BUSY'), false],
  ])('SQLite: %s', (_what, error, permanent) => {
    expect(isPermanentSqliteError(error)).toBe(permanent);
  });
});

describe.runIf(hasPostgres)('PostgreSQL: a consumer fails at once on', () => {
  it('a role that does not exist', async () => {
    const url = new URL(POSTGRES_URL);
    url.username = 'no_such_role_taskmill';
    url.password = 'pw-never-shown';
    const { error, ms } = await startFailure(url.href);
    expectReasonOnce(error, 'role "no_such_role_taskmill" does not exist');
    expect(error.driverCode).toBe('28000');
    expect(error.message).not.toContain('pw-never-shown');
    expect(ms).toBeLessThan(10_000);
  });

  it('a database that does not exist', async () => {
    const url = new URL(POSTGRES_URL);
    url.pathname = '/no_such_db_taskmill';
    const { error, ms } = await startFailure(url.href);
    expectReasonOnce(error, 'database "no_such_db_taskmill" does not exist');
    expect(ms).toBeLessThan(10_000);
  });

  it('TLS asked of a server without it', async () => {
    const { error } = await startFailure(`${POSTGRES_URL}?sslmode=no-verify`);
    expectReasonOnce(error, 'does not support SSL connections');
  });
});

describe.runIf(hasRedisServer)('Redis with a password (a server of its own): a consumer fails at once on', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start({ password: 'right-pass' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('no password (NOAUTH)', async () => {
    const { error, ms } = await startFailure(`redis://127.0.0.1:${server.port}/0`);
    expectReasonOnce(error, 'NOAUTH');
    expect(ms).toBeLessThan(10_000);
  });

  it('a wrong password (WRONGPASS)', async () => {
    const { error, ms } = await startFailure(`redis://:wrong-pass@127.0.0.1:${server.port}/0`);
    expectReasonOnce(error, 'WRONGPASS');
    expect(error.message).not.toContain('wrong-pass');
    expect(ms).toBeLessThan(10_000);
  });
});

describe('SQLite', () => {
  it('a file in a missing directory fails at once', async () => {
    const { error, ms } = await startFailure(`sqlite:${path.join(tempDir('taskmill-open-'), 'missing', 'q.sqlite')}`);
    expectReasonOnce(error, 'directory does not exist');
    expect(ms).toBeLessThan(10_000);
  });
});

describe('a transient failure', () => {
  it('is retried until openTimeoutMs (connection refused)', async () => {
    const port = await freePort();
    const { error, ms } = await startFailure(`postgres://postgres@127.0.0.1:${port}/test`, 1500);
    expect(error.permanent).toBe(false);
    expect(error.driverCode).toBe('ECONNREFUSED');
    // More than one attempt: the first fails in a few ms, the backoff waits 200 ms, then 400 ms, …
    expect(ms).toBeGreaterThanOrEqual(500);
  });
});
