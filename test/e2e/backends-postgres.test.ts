/**
 * Real `taskmill consume` processes on the shared PostgreSQL, each test in
 * its own schema (`?schema=`, dropped afterwards): two consumers + a
 * producer, a consumer SIGKILLed mid-way (test/fixtures/backends-e2e.ts),
 * and LISTEN/NOTIFY: an idle consumer starts a job enqueued by another
 * process at once, not at its next poll.
 */
import { describe, expect, it } from 'vitest';
import { DatabaseQueue } from '../../src/index.js';
import { defineBackendTests } from '../fixtures/backends-e2e.js';
import { POSTGRES_URL, dropPostgresSchema, hasPostgres, uniqueName } from '../helpers/services.js';

describe.skipIf(!hasPostgres)('taskmill consume on PostgreSQL (postgres://…), real processes', () => {
  const suite = defineBackendTests({
    jobs: 10_000,
    backlog: 8_000,
    // One write per commit runs at a few hundred per second here (fsync, and NOTIFY serialises commits);
    // batches keep the producer from dominating the run, the consumers still claim and ack one by one.
    producer: 'batch',
    freshUrl: () => `${POSTGRES_URL}?schema=${uniqueName('e2e').replace(/-/g, '_')}`,
    dispose: dropPostgresSchema,
  });

  it('LISTEN/NOTIFY: an idle consumer starts a job enqueued by another process within 1 s', { timeout: 60_000 }, async () => {
    // A 5-10 s reader poll interval; without a notification the backend itself re-checks every
    // 2 s (pollIntervalMs), so five starts within 1 s each are the notifications' doing.
    const { consumer, queue, recordFile } = await suite.startIdleConsumer(['-d', '5', '-m', '10']);
    expect(queue).toBeInstanceOf(DatabaseQueue);
    expect((queue as DatabaseQueue).pollIntervalMs).toBe(2000);
    const latencies = await suite.wakeUpLatencies(queue, recordFile, 5);
    console.info(`[e2e] postgres LISTEN/NOTIFY wake-up latencies (ms): ${latencies.join(', ')}`);
    for (const ms of latencies) expect(ms).toBeLessThan(1000);

    consumer.child.kill('SIGTERM');
    expect(await consumer.exited, consumer.stderr()).toBe(0);
  });
});
