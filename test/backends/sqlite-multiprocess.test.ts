/**
 * Several OS processes on one SQLite file: a producer, three consumers and a
 * consumer that dies holding leases. Every message must be acked exactly once
 * in total, none lost, and the dead consumer's messages re-delivered. Then
 * consumers promoting and retrying, and consumers starting under gates.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { SqliteQueue } from '../../src/backends/sqlite/queue.js';

const run = promisify(execFile);
const fixture = fileURLToPath(new URL('../fixtures/sqlite-worker.ts', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskmill-sqlite-mp-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function child(...args: string[]) {
  return run(process.execPath, ['--import', 'tsx', fixture, ...args], { timeout: 60_000 });
}

it('a producer and several consumer processes on one file: each message acked exactly once', async () => {
  const file = path.join(dir, 'shared.sqlite');
  const queue = 'mp';
  const total = 2000;
  const stopFile = path.join(dir, 'stop');
  const gate = path.join(dir, 'gate');
  // Create the schema first so the crasher cannot find an empty file and spin on it.
  const setup = new SqliteQueue(file, { name: queue });
  await setup.open();
  await setup.close();

  const outs = [1, 2, 3].map((i) => path.join(dir, `consumer-${i}.jsonl`));
  // All start together (their start-up overlaps); the consumers and the rest of the
  // production wait at the gate until the crasher has taken its leases and died.
  const producer = child('producer', file, queue, String(total), gate);
  const consumers = outs.map((out) => child('consumer', file, queue, gate, stopFile, out));
  const { stdout: crashedOut } = await child('crasher', file, queue);
  fs.writeFileSync(gate, '');
  await producer;
  fs.writeFileSync(stopFile, '');
  await Promise.all(consumers);

  const acked = outs.flatMap((out) =>
    fs
      .readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { id: string; data: string; attempt: number }),
  );
  const byData = new Map<string, number>();
  for (const m of acked) byData.set(m.data, (byData.get(m.data) ?? 0) + 1);
  expect(acked.length).toBe(total);
  expect(byData.size).toBe(total);
  for (let i = 0; i < total; i++) expect(byData.get(`m${i}`), `m${i}`).toBe(1);
  expect(new Set(acked.map((m) => m.id)).size).toBe(total);

  // The messages the dead consumer held came back after their lease, as second deliveries.
  const crashed = JSON.parse(crashedOut) as string[];
  expect(crashed.length).toBeGreaterThan(0);
  const redelivered = acked.filter((m) => crashed.includes(m.id));
  expect(redelivered.map((m) => m.attempt)).toEqual(crashed.map(() => 2));
  const others = acked.filter((m) => !crashed.includes(m.id));
  expect(others.every((m) => m.attempt === 1)).toBe(true);

  const check = new SqliteQueue(file, { name: queue });
  expect(await check.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
  await check.close();
}, 30_000);

it('consumer processes promoting and retrying on one file: each delayed message promoted once, each retry run once', async () => {
  const file = path.join(dir, 'lifecycle.sqlite');
  const queue = 'lc';
  const total = 400;
  const producer = new SqliteQueue(file, { name: queue });
  await producer.open();
  // Every delay (a delayed write or a delayed retry) and every promotion, logged by the database itself:
  // whether a retry due in 50 ms was still in the future when it ran is up to the scheduler of a busy machine.
  const log = new Database(file);
  log.exec(`
    CREATE TABLE lifecycle_log (event TEXT NOT NULL);
    CREATE TRIGGER log_delayed_write AFTER INSERT ON taskmill_messages WHEN new.run_at IS NOT NULL
      BEGIN INSERT INTO lifecycle_log VALUES ('delayed'); END;
    CREATE TRIGGER log_delayed_retry AFTER UPDATE OF run_at ON taskmill_messages WHEN old.run_at IS NULL AND new.run_at IS NOT NULL
      BEGIN INSERT INTO lifecycle_log VALUES ('delayed'); END;
    CREATE TRIGGER log_promoted AFTER UPDATE OF run_at ON taskmill_messages WHEN old.run_at IS NOT NULL AND new.run_at IS NULL
      BEGIN INSERT INTO lifecycle_log VALUES ('promoted'); END;
  `);
  // Half are delayed past the children's start-up (promoted by them), half ready at once.
  const delayedIds = await producer.writeBatch(
    Array.from({ length: total / 2 }, (_, i) => `d${i}`),
    { runAt: Date.now() + 1000 },
  );
  const readyIds = await producer.writeBatch(Array.from({ length: total / 2 }, (_, i) => `r${i}`));
  await producer.close();

  const outs = [1, 2, 3].map((i) => path.join(dir, `lifecycle-${i}.json`));
  await Promise.all(outs.map((out) => child('lifecycle', file, queue, out)));
  const summaries = outs.map(
    (out) => JSON.parse(fs.readFileSync(out, 'utf8')) as { promoted: number; retried: string[]; acked: Array<{ id: string; data: string; attempt: number }> },
  );

  const retried = summaries.flatMap((s) => s.retried);
  const acked = summaries.flatMap((s) => s.acked);
  const all = [...delayedIds, ...readyIds];
  // Every message: retried exactly once, then acked exactly once with the new data and a fresh attempt count.
  expect([...retried].sort()).toEqual([...all].sort());
  expect(acked.map((m) => m.id).sort()).toEqual([...all].sort());
  for (const m of acked) expect(m.data).toMatch(/^[dr]\d+:retried$/);
  expect(acked.every((m) => m.attempt === 1)).toBe(true);
  // Each delay was promoted exactly once, and the promoteDue() counts of all processes add up to that.
  const events = Object.fromEntries(
    (log.prepare('SELECT event, count(*) AS n FROM lifecycle_log GROUP BY event').all() as Array<{ event: string; n: number }>).map((row) => [
      row.event,
      row.n,
    ]),
  );
  log.close();
  expect(events['delayed']).toBeGreaterThanOrEqual(delayedIds.length);
  expect(events['promoted']).toBe(events['delayed']);
  expect(summaries.reduce((sum, s) => sum + s.promoted, 0)).toBe(events['promoted']);

  const check = new SqliteQueue(file, { name: queue });
  expect(await check.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
  await check.close();
}, 30_000);

it('consumer processes starting under gates on one file: never more than the limit running, nor starting in any window', async () => {
  const file = path.join(dir, 'gated.sqlite');
  const queue = 'gt';
  const total = 40;
  const gates = { concurrency: { key: 'c', limit: 2 }, rate: { key: 'r', limit: 4, perMs: 100 } };
  const producer = new SqliteQueue(file, { name: queue });
  await producer.open();
  // What the database saw, in the order it happened: the holders of the key each time a slot was
  // taken, and each recorded start with its time (the backend's clock, so no slack for round trips).
  const log = new Database(file);
  log.exec(`
    CREATE TABLE gate_log (holders INTEGER, started_at INTEGER);
    CREATE TRIGGER log_slot AFTER UPDATE OF slot_key ON taskmill_messages WHEN new.slot_key IS NOT NULL
      BEGIN INSERT INTO gate_log (holders) SELECT count(*) FROM taskmill_messages WHERE queue = new.queue AND slot_key = new.slot_key; END;
    CREATE TRIGGER log_start AFTER INSERT ON taskmill_rates WHEN new.reserved_for IS NULL
      BEGIN INSERT INTO gate_log (started_at) VALUES (new.at); END;
  `);
  const datas = Array.from({ length: total }, (_, i) => `g${i}`);
  await producer.writeBatch(datas);
  await producer.close();

  const outs = [1, 2, 3].map((i) => path.join(dir, `gated-${i}.json`));
  await Promise.all(outs.map((out) => child('gated', file, queue, out, JSON.stringify(gates))));
  const summaries = outs.map((out) => JSON.parse(fs.readFileSync(out, 'utf8')) as { started: string[]; deferred: number });

  // Each message started exactly once; the gates were contended (some starts deferred).
  expect(summaries.flatMap((s) => s.started).sort()).toEqual([...datas].sort());
  expect(summaries.reduce((sum, s) => sum + s.deferred, 0)).toBeGreaterThan(0);
  const slots = log.prepare('SELECT count(holders) AS taken, max(holders) AS most FROM gate_log').get() as { taken: number; most: number };
  expect(slots.taken).toBe(total);
  expect(slots.most).toBeLessThanOrEqual(gates.concurrency.limit);
  const starts = (log.prepare('SELECT started_at FROM gate_log WHERE started_at IS NOT NULL ORDER BY started_at').all() as Array<{ started_at: number }>).map(
    (row) => row.started_at,
  );
  log.close();
  expect(starts).toHaveLength(total);
  const { limit, perMs } = gates.rate;
  for (let i = 0; i + limit < starts.length; i++) expect(starts[i + limit]! - starts[i]!).toBeGreaterThanOrEqual(perMs);

  const check = new SqliteQueue(file, { name: queue });
  expect(await check.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
  await check.close();
}, 30_000);
