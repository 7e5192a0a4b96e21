import { defineConfig } from 'vitest/config';
import { SlowFirstSequencer } from './test/slow-first-sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Child processes run JavaScript twins of src/ and test/ (test/helpers/processes.ts).
    globalSetup: ['test/global-setup.ts'],
    // Test files are independent (each uses its own queue name / temp dir), so
    // they run in parallel. Most of their time is spent waiting on child
    // processes and servers, not CPU: vitest's default on 2 CPUs (one worker)
    // would run them one after another. Four: clean-clone runs took 600.6 s at
    // four and 581 s at five, but at five the timing of real-process tests
    // under contention failed two of them in one of two runs.
    fileParallelism: true,
    maxWorkers: 4,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
    // Without vitest's cache of timings (a clean clone), the slowest kinds of file start first.
    sequence: { sequencer: SlowFirstSequencer },
  },
});
