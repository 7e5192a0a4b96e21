/**
 * Transactional enqueue with a real consumer process: `taskmill consume`
 * runs on a fresh PostgreSQL schema / SQLite file while this process writes
 * record(n) jobs inside its own transactions. A rolled-back job never runs, a
 * committed one runs once, and while a transaction is open the consumer does
 * not see its job (it is idle and the queue reads empty from another
 * connection) — it starts it only after the commit.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { closeQueues, configure, createQueue, type BaseQueue } from '../../src/index.js';
import { record } from '../fixtures/backends-commands.js';
import { ROOT, spawnCli, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { POSTGRES_URL, dropPostgresSchema, hasPostgres, uniqueName } from '../helpers/services.js';

const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'backends-commands.ts');
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const dir = tempDir('taskmill-tx-e2e-');
const children: Spawned[] = [];
afterAll(async () => {
  for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  await closeQueues();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

const recorded = (file: string) =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => Number(l.split(' ')[0]))
    : [];

/** Starts a consumer on `url`; the three transactions are `run(n, commit, whileOpen)`. */
async function scenario(
  url: string,
  label: string,
  transact: (n: number, outcome: 'commit' | 'rollback', whileOpen: () => Promise<void>) => Promise<void>,
): Promise<void> {
  const recordFile = path.join(dir, `${label}-records.txt`);
  // -n: no scheduler; the fixture's every-minute `tick` would otherwise land in the queue at a minute boundary.
  const consumer = spawnCli(['consume', '-q', url, '-n', '-t', '2', '-d', '0.02', '-m', '0.2', COMMANDS], { env: { RECORD_FILE: recordFile } });
  children.push(consumer);
  await waitFor('consumer running', () => consumer.stdout().includes('consumer running'), 30_000);
  configure({ queue: url });
  const probe: BaseQueue = createQueue(url);
  await probe.open(); // before any transaction: opening a SQLite queue takes the write lock once
  try {
    await transact(1, 'commit', async () => {
      await sleep(1_000); // the consumer polls every ≤ 200 ms: a visible job would have run by now
      expect(recorded(recordFile)).toEqual([]);
      expect((await probe.stats()).ready).toBe(0);
    });
    await waitFor('job 1 ran', () => recorded(recordFile).length >= 1, 10_000);
    await transact(2, 'rollback', async () => {});
    await transact(3, 'commit', async () => {});
    await waitFor('job 3 ran', () => recorded(recordFile).includes(3), 10_000);
    await sleep(500); // a rolled-back job that leaked would have run by now
    expect(recorded(recordFile)).toEqual([1, 3]);
    expect(await probe.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
  } finally {
    await probe.close();
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited, consumer.stderr()).toBe(0);
  }
}

describe.skipIf(!hasPostgres)('schedule({ tx }) with a real consumer: PostgreSQL', () => {
  const url = `${POSTGRES_URL}?schema=${uniqueName('txe2e').replace(/-/g, '_')}`;
  afterAll(() => dropPostgresSchema(url));

  it('a rolled-back job never runs, a committed one runs once, nothing is seen before the commit', { timeout: 60_000 }, async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await scenario(url, 'postgres', async (n, outcome, whileOpen) => {
        await client.query('BEGIN');
        await record.schedule({ tx: client }, n);
        await whileOpen();
        await client.query(outcome === 'commit' ? 'COMMIT' : 'ROLLBACK');
      });
    } finally {
      await client.end();
    }
  });
});

describe('schedule({ tx }) with a real consumer: SQLite', () => {
  it('a rolled-back job never runs, a committed one runs once, nothing is seen before the commit', { timeout: 60_000 }, async () => {
    const file = path.join(dir, 'app.sqlite');
    const url = `sqlite:${file}`;
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    try {
      await scenario(url, 'sqlite', async (n, outcome, whileOpen) => {
        // better-sqlite3 transactions are synchronous: BEGIN / COMMIT by hand around the await. IMMEDIATE:
        // a deferred one that reads first cannot write once the consumer has committed since (WAL).
        db.exec('BEGIN IMMEDIATE');
        await record.schedule({ tx: db }, n);
        await whileOpen();
        db.exec(outcome === 'commit' ? 'COMMIT' : 'ROLLBACK');
      });
    } finally {
      db.close();
    }
  });
});
