/**
 * Several OS processes on one SQLite file: a producer, three consumers and a
 * consumer that dies holding leases. Every message must be acked exactly once
 * in total, none lost, and the dead consumer's messages re-delivered.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { SqliteQueue } from '../../src/backends/sqlite.js';

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
  expect(await check.stats()).toEqual({ ready: 0, leased: 0, failed: 0 });
  await check.close();
}, 30_000);
