/**
 * Reliability scenario 10 on the server backends (test/cli/shutdown.test.ts
 * runs the same signals on SQLite): `taskmill consume` on Redis (polling and
 * blocking) and PostgreSQL, stopped by signals —
 *   SIGTERM during a long command: drain, exit 0, the job acked;
 *   a command that outlives --grace: aborted, its message released, exit 2;
 *   SIGINT twice: forced at once, exit 2, released;
 *   SIGTERM while idle (in a blocking wait on Redis blocking and PostgreSQL
 *   LISTEN): exit 0 promptly. The time is printed; the bound asserted is
 *   generous (the box running the suite is loaded), the figures are in
 *   docs/RELIABILITY.md.
 */
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { type BaseQueue } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { jsonLines, spawnCli, waitFor, type Spawned } from '../helpers/processes.js';
import { CLI_COMMANDS, records } from '../fixtures/cli-helpers.js';
import { describeEachBackend, sleep, type Suite } from './kit.js';

const spawned: Spawned[] = [];
afterAll(() => spawned.forEach((c) => c.child.kill('SIGKILL')));

interface Run {
  consumer: Spawned;
  queue: BaseQueue;
  recordFile: string;
  logged(msg: string): boolean;
}

/** `taskmill consume` on a fresh queue with `jobs` written first; resolves once it logged 'consumer running'. */
async function startConsumer(suite: Suite, label: string, jobs: [string, unknown[]][], extra: string[] = []): Promise<Run> {
  const url = suite.freshUrl();
  const recordFile = path.join(suite.dir, `${label}.records`);
  const queue = suite.openQueue(url);
  for (const [command, args] of jobs) await queue.write(encodeMessage(command, args).data);
  const consumer = spawnCli(['consume', '-q', url, '-n', '-d', '0.02', '-m', '0.2', ...extra, CLI_COMMANDS], {
    env: { RECORD_FILE: recordFile },
    cwd: suite.dir,
  });
  spawned.push(consumer);
  const logged = (msg: string) => jsonLines(consumer.stdout()).some((l) => l.msg === msg);
  await waitFor('consumer running', () => logged('consumer running') || consumer.child.exitCode !== null, 60_000);
  expect(consumer.child.exitCode, consumer.stderr()).toBeNull();
  return { consumer, queue, recordFile, logged };
}

describeEachBackend(
  'taskmill consume stopped by signals',
  (backend, suite) => {
    // On SQLite these three are in test/cli/shutdown.test.ts; the idle stop is measured here on every backend.
    const server = backend.name !== 'SQLite';

    it.runIf(server)('SIGTERM during a long command drains: it finishes, is acked, exit 0', { timeout: 90_000 }, async () => {
      const { consumer, queue, recordFile, logged } = await startConsumer(suite, 'drain', [['cli-sleep', [1500]]]);
      await waitFor('the command to start', () => records(recordFile).includes('started sleep'), 60_000);
      consumer.child.kill('SIGTERM');
      await waitFor('draining', () => logged('draining: no new reads; waiting for running commands'), 30_000);
      expect(records(recordFile)).toEqual(['started sleep']);
      expect(await consumer.exited, consumer.stderr()).toBe(0);
      expect(records(recordFile)).toEqual(['started sleep', 'finished sleep']);
      expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, failed: 0 });
    });

    it.runIf(server)('a command past --grace is aborted and its message released: exit 2', { timeout: 90_000 }, async () => {
      const { consumer, queue, recordFile, logged } = await startConsumer(suite, 'grace', [['cli-hang', []]], ['--grace', '0.5']);
      await waitFor('the command to start', () => records(recordFile).includes('started hang'), 60_000);
      expect(await queue.stats()).toMatchObject({ ready: 0, leased: 1 });
      consumer.child.kill('SIGTERM');
      expect(await consumer.exited, consumer.stderr()).toBe(2);
      expect(records(recordFile)).toEqual(['started hang', 'aborted hang: consumer forced to stop']);
      expect(logged('forcing stop: aborting running commands and releasing their leases')).toBe(true);
      // Released, not left to expire: ready at once for the next consumer, with its delivery given back.
      expect(await queue.stats()).toMatchObject({ ready: 1, leased: 0, failed: 0 });
      const [message] = await queue.readBatch(1);
      expect(message?.attempt).toBe(1);
      await queue.release([message!.id]);
    });

    it.runIf(server)('SIGINT twice forces at once: exit 2, the message released', { timeout: 90_000 }, async () => {
      const { consumer, queue, recordFile, logged } = await startConsumer(suite, 'twice', [['cli-hang', []]]);
      await waitFor('the command to start', () => records(recordFile).includes('started hang'), 60_000);
      consumer.child.kill('SIGINT');
      await waitFor('draining', () => logged('stopping: draining (send the signal again to force)'), 30_000);
      consumer.child.kill('SIGINT');
      expect(await consumer.exited, consumer.stderr()).toBe(2);
      expect(records(recordFile)).toContain('aborted hang: consumer forced to stop');
      expect(await queue.stats()).toMatchObject({ ready: 1, leased: 0, failed: 0 });
    });

    it('SIGTERM while idle (in its wait) exits 0 promptly', { timeout: 90_000 }, async () => {
      // A 5-10 s poll interval: a consumer that waited for its next poll before stopping would show it.
      const { consumer, queue } = await startConsumer(suite, 'idle', [], ['-d', '5', '-m', '10']);
      expect(queue.blocking).toBe(backend.name === 'Redis (blocking)' || backend.name === 'PostgreSQL');
      await sleep(1500); // well inside its wait
      const signalled = Date.now();
      consumer.child.kill('SIGTERM');
      expect(await consumer.exited, consumer.stderr()).toBe(0);
      const ms = Date.now() - signalled;
      // The consumer's own part: from the signal logged to 'consumer stopped' (pino's ms timestamps).
      const at = (msg: string) => jsonLines(consumer.stdout()).find((l) => l.msg === msg)?.time as number;
      const stopMs = at('consumer stopped') - at('stopping: draining (send the signal again to force)');
      console.info(`[reliability] SIGTERM while idle on ${backend.name}: stopped ${stopMs} ms after the signal was logged, exited 0 after ${ms} ms`);
      expect(stopMs).toBeLessThan(1000);
      // Wall clock includes signal delivery and process exit, which a loaded machine slows down: reported, bounded loosely.
      expect(ms).toBeLessThan(2500);
    });
  },
  { concurrent: true },
);
