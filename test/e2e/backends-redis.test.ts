/**
 * Real `taskmill consume` processes on the shared Redis (redis://…, polling),
 * each test on its own key prefix: two consumers + a producer, and a
 * consumer SIGKILLed mid-way. The shared body is test/fixtures/backends-e2e.ts.
 */
import { describe } from 'vitest';
import { defineBackendTests, deleteRedisPrefix } from '../fixtures/backends-e2e.js';
import { REDIS_URL, hasRedis, uniqueName } from '../helpers/services.js';

describe.skipIf(!hasRedis)('taskmill consume on Redis (redis://…), real processes', () => {
  defineBackendTests({
    jobs: 10_000,
    backlog: 60_000,
    freshUrl: () => `${REDIS_URL}?prefix=${uniqueName('e2e')}`,
    dispose: deleteRedisPrefix,
  });
});
