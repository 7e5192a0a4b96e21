/**
 * Issue 9, scenario 2: a command that calls process.exit() on every attempt.
 * Each run takes its whole consumer process down, so nothing ever acks or
 * fails the job; the lease lapses and it is delivered again. A supervisor
 * (here: this test, restarting `taskmill consume` like systemd would) must
 * not crash-loop forever: after maxDeliveries (3) deliveries without an
 * outcome the next delivery is not run — the job lands in the failed store
 * as "worker lost" — and ordinary jobs around it all complete.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type ExpectStatic } from 'vitest';
import { createQueue, type BaseQueue } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { ROOT, spawnCli, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { BACKENDS, type Backend } from './kit.js';

const COMMANDS = path.join(ROOT, 'test', 'fixtures', 'worker-lost-commands.ts');
const MAX_DELIVERIES = 3;
const ORDINARY = 40;

function records(file: string): Array<{ kind: string; n: number; attempt: number; pid: number }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind, n, attempt, pid] = line.split(' ');
      return { kind: kind!, n: Number(n), attempt: Number(attempt), pid: Number(pid) };
    });
}

// The backends are independent (own file / prefix / schema): their runs overlap.
describe.concurrent('a command that calls process.exit() on every attempt', () => {
  for (const backend of BACKENDS) {
    it.skipIf(!backend.available)(
      `${backend.name}: runs it ${MAX_DELIVERIES} times, then fails it as "worker lost" (retries or not); the restarted consumer stays up and no other job is lost`,
      { timeout: 120_000 },
      async ({ expect }) => {
        const dir = tempDir('taskmill-lost-');
        const url = backend.freshUrl(dir);
        const queue = createQueue(url, { onWarning: () => {} });
        const consumers: Spawned[] = [];
        try {
          await scenario(backend, dir, url, queue, consumers, expect);
        } finally {
          for (const c of consumers) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
          await Promise.all(consumers.map((c) => c.exited));
          await queue.close();
          await backend.dispose(url);
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  }
});

async function scenario(backend: Backend, dir: string, url: string, queue: BaseQueue, consumers: Spawned[], expect: ExpectStatic): Promise<void> {
  const recordFile = path.join(dir, 'records.txt');
  await queue.write(encodeMessage('exitNow', [1]).data);
  for (let i = 0; i < ORDINARY / 2; i++) await queue.write(encodeMessage('record', [i]).data);
  await queue.write(encodeMessage('exitRetried', [2]).data);
  for (let i = ORDINARY / 2; i < ORDINARY; i++) await queue.write(encodeMessage('record', [i]).data);

  // The test plays the process supervisor: a consumer that died is started again, at most 10 times.
  const start = () => {
    const consumer = spawnCli(['consume', '-t', '2', '-n', '--lease', '1', '-d', '0.05', '-m', '0.2', COMMANDS], {
      env: { TASKMILL_QUEUE: url, RECORD_FILE: recordFile },
    });
    consumers.push(consumer);
    return consumer;
  };
  let current = start();
  let last = '';
  const settled = async () => {
    if (current.child.exitCode !== null) {
      expect(consumers.length, 'consumers started: the fleet is crash-looping').toBeLessThan(10);
      current = start();
    }
    const stats = await queue.stats();
    last = `${JSON.stringify(stats)}, ${consumers.length} consumers, runs: ${records(recordFile)
      .filter((r) => r.kind !== 'ok')
      .map((r) => `${r.kind}#${r.attempt}`)
      .join(' ')}`;
    return stats.failed >= 2 && stats.ready === 0 && stats.leased === 0 && stats.delayed === 0;
  };
  await waitFor('both exiting jobs failed and the rest done', settled, 80_000, 200).catch((error: Error) => {
    throw new Error(`${error.message}; last: ${last}\n${current.stderr().slice(-2000)}`);
  });

  const runs = records(recordFile);
  const failed = await queue.failed();
  const commandOf = (data: string) => (JSON.parse(data) as { command: string }).command;
  // A job leased beside a dying one loses that delivery too (nothing acks it): one that sat beside it
  // at every death is failed as "worker lost" as well — in the failed store, not lost. With -t 2 and
  // oldest-first reads, that is at most two per exiting one: a job that ran in the same turn (its ack
  // not written yet) and the one read for the worker it left idle (that claim goes out at once).
  const collateral = failed.filter((f) => commandOf(f.data) === 'record');
  expect(collateral.length).toBeLessThanOrEqual(2 * 2);
  for (const kind of ['exit', 'exit-retried']) {
    const mine = runs.filter((r) => r.kind === kind);
    expect(mine.length, `${kind} runs`).toBe(MAX_DELIVERIES);
    expect(new Set(mine.map((r) => r.attempt)), `${kind}: a lost delivery is not a retry`).toEqual(new Set([1]));
    expect(new Set(mine.map((r) => r.pid)).size, `${kind}: each run took its own process down`).toBe(MAX_DELIVERIES);
  }
  // Nothing lost: every ordinary job ran or is in the failed store as collateral.
  const ordinary = runs.filter((r) => r.kind === 'ok');
  const collateralNs = collateral.map((f) => (JSON.parse(f.data) as { args: number[] }).args[0]);
  expect(new Set([...ordinary.map((r) => r.n), ...collateralNs]).size).toBe(ORDINARY);
  expect(ordinary.length).toBeLessThanOrEqual(ORDINARY + 2 * MAX_DELIVERIES);

  expect(
    failed
      .map((f) => commandOf(f.data))
      .filter((c) => c !== 'record')
      .sort(),
  ).toEqual(['exitNow', 'exitRetried']);
  if (collateral.length > 0) console.info(`[reliability] ${backend.name}: ${collateral.length} job(s) beside an exiting one failed as worker lost too`);
  for (const f of failed)
    expect(f.error).toMatch(new RegExp(`^WorkerLostError: worker lost: command "\\w+" was delivered ${MAX_DELIVERIES} times without an outcome`));

  // 2 × 3 deaths, then the seventh consumer ran the rest and is still running.
  expect(consumers.length).toBe(2 * MAX_DELIVERIES + 1);
  expect(current.child.exitCode).toBeNull();
  current.child.kill('SIGTERM');
  expect(await current.exited, current.stderr()).toBe(0);
  expect(current.stdout()).toContain('worker lost');
}
