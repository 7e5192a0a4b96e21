import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Test files are independent (each uses its own queue name / temp dir), so
    // they run in parallel. Most of their time is spent waiting on child
    // processes and servers, not CPU: vitest's default on 2 CPUs (one worker)
    // would run them one after another.
    fileParallelism: true,
    maxWorkers: 4,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});
