/**
 * Real `taskmill consume` processes on the shared Redis with
 * `?blocking=true`, each test on its own key prefix: two consumers + a
 * producer, a consumer SIGKILLed mid-way (test/fixtures/backends-e2e.ts),
 * and what blocking is for: an idle consumer wakes at once for a job another
 * process enqueues, and stops promptly from inside its blocking wait.
 */
import { describe, expect, it } from 'vitest';
import { defineBackendTests, deleteRedisPrefix } from '../fixtures/backends-e2e.js';
import { REDIS_URL, hasRedis, uniqueName } from '../helpers/services.js';

describe.skipIf(!hasRedis)('taskmill consume on Redis, blocking (redis://…?blocking=true), real processes', () => {
  const suite = defineBackendTests({
    jobs: 10_000,
    backlog: 60_000,
    freshUrl: () => `${REDIS_URL}?prefix=${uniqueName('e2e')}&blocking=true`,
    dispose: deleteRedisPrefix,
  });

  it(
    'an idle consumer blocked in its wait starts a job enqueued by another process within 3 s; SIGTERM while blocked exits 0 within 1.5 s',
    { timeout: 60_000 },
    async () => {
      // A 5-10 s poll interval: only a wake-up from the blocking wait can start a job within 3 s.
      const { consumer, queue, recordFile } = await suite.startIdleConsumer(['-d', '5', '-m', '10']);
      expect(queue.blocking).toBe(true);
      const latencies = await suite.wakeUpLatencies(queue, recordFile, 5);
      console.info(`[e2e] redis blocking wake-up latencies (ms): ${latencies.join(', ')}`);
      for (const ms of latencies) expect(ms).toBeLessThan(3000);

      await new Promise((resolve) => setTimeout(resolve, 1000)); // back in its blocking wait
      const signalled = Date.now();
      consumer.child.kill('SIGTERM');
      expect(await consumer.exited, consumer.stderr()).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(1500);
    },
  );
});
