import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Test files are independent (each uses its own queue name / temp dir), so
    // they run in parallel; the two cores are the limit.
    fileParallelism: true,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});
