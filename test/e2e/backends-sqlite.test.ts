/**
 * Real `taskmill consume` processes on SQLite (one file shared by all
 * processes): two consumers + a producer, and a consumer SIGKILLed mid-way.
 * The shared body is test/fixtures/backends-e2e.ts.
 */
import path from 'node:path';
import { describe } from 'vitest';
import { defineBackendTests } from '../fixtures/backends-e2e.js';
import { uniqueName } from '../helpers/services.js';

describe('taskmill consume on SQLite (sqlite:FILE), real processes', () => {
  defineBackendTests({
    jobs: 10_000,
    backlog: 60_000,
    freshUrl: (dir) => `sqlite:${path.join(dir, `${uniqueName('queue')}.sqlite`)}`,
    dispose: async () => {}, // the file lives in the suite's temp dir, removed with it
  });
});
