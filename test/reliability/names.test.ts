/**
 * Reliability scenario 6: queue names, Redis key prefixes and PostgreSQL
 * schema names that come from user input — `a*`, `{x}`, an SQL injection,
 * 200 characters — are refused with a ConfigError (or, on the command line,
 * one `taskmill:` line and exit 1) that names the value, before anything
 * touches a server. Canaries next to the queues (a Redis key, a PostgreSQL
 * table, a table in the SQLite file) survive every attempt, `flush` included.
 *
 * The backends' own tests cover the constructors (test/backends/contract.ts:
 * queue names on every backend; redis.test.ts: prefixes given as options;
 * postgres.test.ts: schemas, nothing created). This file goes through the
 * doors a user's input comes in by: createQueue URLs and options, and -q.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, createQueue } from '../../src/index.js';
import { describeValue } from '../../src/shared/errors.js';
import { tempDir } from '../helpers/processes.js';
import { POSTGRES_URL, REDIS_URL, hasPostgres, hasRedis, uniqueName } from '../helpers/services.js';
import { runCli } from '../fixtures/cli-helpers.js';

const dir = tempDir('taskmill-names-');
const canary = uniqueName('canary').replace(/-/g, '_');

/** What a user might type where a name goes; every one must be refused. */
const HOSTILE = ['a*', '{x}', `x"; DROP TABLE ${canary}.canary;--`, 'n'.repeat(200), `x'); DROP SCHEMA ${canary} CASCADE;--`, '', 'has space', 'a:b', '../up'];
/**
 * The command line gets the four (each `taskmill` run starts a process, seconds on a loaded
 * machine): `flush` with each — the one that deletes — and `status` / `enqueue` with the injection.
 */
const CLI_RUNS = (url: (value: string) => string): [string, string[]][] => [
  ...HOSTILE.slice(0, 4).map((value): [string, string[]] => [value, ['flush', '-q', url(value)]]),
  [HOSTILE[2]!, ['status', '-q', url(HOSTILE[2]!)]],
  [HOSTILE[2]!, ['enqueue', 'x', '[]', '-q', url(HOSTILE[2]!)]],
];

/** How an error names a value (describeValue): quoted, long ones cut. */
const shown = (value: string) => describeValue(value);

function refusal(make: () => unknown): ConfigError {
  try {
    make();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('not refused');
}

describe('SQLite: hostile queue names', () => {
  const file = path.join(dir, 'app.sqlite');
  beforeAll(() => {
    const db = new Database(file);
    db.exec("CREATE TABLE canary (note TEXT); INSERT INTO canary VALUES ('alive')");
    db.close();
  });

  it.each(HOSTILE)('createQueue(sqlite:…, { name: %j }) is refused naming the value; the file is untouched', (name) => {
    const error = refusal(() => createQueue(`sqlite:${file}`, { name }));
    expect(error.message).toContain(`SqliteQueue: invalid name ${shown(name)}`);
    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare('SELECT note FROM canary').all()).toEqual([{ note: 'alive' }]);
      expect(db.prepare("SELECT name FROM sqlite_master WHERE name LIKE 'taskmill%'").all()).toEqual([]); // no queue was created either
    } finally {
      db.close();
    }
  });
});

describe.skipIf(!hasRedis)('Redis: hostile queue names and key prefixes', { timeout: 120_000 }, () => {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  const canaryKey = `${canary}:canary`;
  beforeAll(async () => {
    await redis.connect();
    await redis.set(canaryKey, 'alive');
  });
  afterAll(async () => {
    await redis.del(canaryKey);
    redis.disconnect();
  });

  it.each(HOSTILE)('%j as ?prefix= (plain and blocking) and as a queue name is refused naming the value', (value) => {
    for (const url of [`${REDIS_URL}?prefix=${encodeURIComponent(value)}`, `${REDIS_URL}?prefix=${encodeURIComponent(value)}&blocking=true`]) {
      // An empty ?prefix= is absent, so the default prefix applies; every other value names itself.
      if (value === '') continue;
      expect(refusal(() => createQueue(url)).message, url).toContain(`invalid prefix ${shown(value)}`);
    }
    expect(refusal(() => createQueue(REDIS_URL, { name: value })).message).toContain(`RedisQueue: invalid name ${shown(value)}`);
  });

  it('taskmill flush / status / enqueue -q with a hostile ?prefix=: exit 1, one line naming it; no key of the server touched', async () => {
    const runs = await Promise.all(
      CLI_RUNS((value) => `${REDIS_URL}?prefix=${encodeURIComponent(value)}`).map(([value, args]) =>
        runCli(args, { cwd: dir }).then((result) => ({ value, args, result })),
      ),
    );
    for (const { value, args, result } of runs) {
      const what = `${args[0]} with prefix ${JSON.stringify(value)}`;
      expect(result.code, what).toBe(1);
      expect(result.stderr.trimEnd().split('\n'), what).toHaveLength(1);
      expect(result.stderr, what).toContain(`invalid prefix ${shown(value)}`);
    }
    // Other tests write to this server meanwhile, so no key count is compared: the canary stays, no key carries a hostile prefix.
    expect(await redis.get(canaryKey)).toBe('alive');
    for (const value of HOSTILE.slice(0, 4)) expect(await redis.keys(`${value.replace(/[*?[\]\\]/g, '\\$&')}:*`)).toEqual([]);
  });
});

describe.skipIf(!hasPostgres)('PostgreSQL: hostile queue names and schema names', { timeout: 120_000 }, () => {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  const schemas = () => client.query<{ nspname: string }>('SELECT nspname FROM pg_namespace ORDER BY nspname').then((r) => r.rows.map((row) => row.nspname));
  let schemasBefore: string[] = [];
  beforeAll(async () => {
    await client.connect();
    await client.query(`CREATE SCHEMA ${canary}; CREATE TABLE ${canary}.canary (note text); INSERT INTO ${canary}.canary VALUES ('alive')`);
    schemasBefore = await schemas();
  });
  afterAll(async () => {
    await client.query(`DROP SCHEMA IF EXISTS ${canary} CASCADE`);
    await client.end();
  });

  const canaryAlive = async () => (await client.query(`SELECT note FROM ${canary}.canary`)).rows;

  it.each([...HOSTILE, 'Upper', 'pg_catalog', 'public"."x'])('%j as ?schema= (and as a queue name) is refused naming the value', async (value) => {
    if (value !== '') {
      const error = refusal(() => createQueue(`${POSTGRES_URL}?schema=${encodeURIComponent(value)}`));
      expect(error.message).toContain(`PostgresQueue: invalid schema ${shown(value)}`);
    }
    // 'Upper' and 'pg_catalog' are fine queue names (a queue name is a value in a column, never an identifier).
    if (HOSTILE.includes(value))
      expect(refusal(() => createQueue(POSTGRES_URL, { name: value })).message).toContain(`PostgresQueue: invalid name ${shown(value)}`);
    expect(await canaryAlive()).toEqual([{ note: 'alive' }]);
  });

  it('taskmill flush / status / enqueue -q with a hostile ?schema=: exit 1, one line naming it; no schema created, the canary table intact', async () => {
    const runs = await Promise.all(
      CLI_RUNS((value) => `${POSTGRES_URL}?schema=${encodeURIComponent(value)}`).map(([value, args]) =>
        runCli(args, { cwd: dir }).then((result) => ({ value, args, result })),
      ),
    );
    for (const { value, args, result } of runs) {
      const what = `${args[0]} with schema ${JSON.stringify(value)}`;
      expect(result.code, what).toBe(1);
      expect(result.stderr.trimEnd().split('\n'), what).toHaveLength(1);
      expect(result.stderr, what).toContain(`PostgresQueue: invalid schema ${shown(value)}`);
    }
    expect(await canaryAlive()).toEqual([{ note: 'alive' }]);
    // Only schemas other tests made meanwhile may have appeared; none named after a hostile value.
    const created = (await schemas()).filter((s) => !schemasBefore.includes(s));
    for (const value of HOSTILE) expect(created).not.toContain(value);
  });
});
