/**
 * The order test files start in, when vitest has no timings to go by.
 *
 * Vitest starts the files that took longest last time first, from its cache of
 * results (node_modules/.vite). A clean clone, as CI runs, has no cache, and
 * then vitest starts the largest files first. That puts the end-to-end and
 * reliability files, small because their work happens in child processes and
 * servers, at the end, where each one becomes the tail of the run: in a
 * clean-clone `.ci/run` the last five files to finish took 38–116 s each.
 * Without a cache these start first, slowest kind first; with one, vitest's
 * order stands.
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Kinds of file that take a minute or more on a 2-core box, slowest first (paths from the root). */
const SLOW_FIRST: readonly RegExp[] = [
  /^test\/periodic\/realtime\.test\.ts$/, // two real minutes, mostly waiting
  /^test\/e2e\//,
  /^test\/reliability\//,
  /^test\/backends\/(postgres|redis|redis-cluster|sqlite)\.test\.ts$/,
  /^test\/(producer\/queue-events|package\/pack|cli\/admin|bench\/run)\.test\.ts$/,
];

export class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const root = this.ctx.config.root;
    const key = (file: TestSpecification) => `${file.project.name}:${relative(root, file.moduleId)}`;
    if (sorted.every((file) => this.ctx.cache.getFileTestResults(key(file)) !== undefined)) return sorted;
    const rank = (file: TestSpecification) => {
      const path = relative(root, file.moduleId).split('\\').join('/');
      const index = SLOW_FIRST.findIndex((pattern) => pattern.test(path));
      return index === -1 ? SLOW_FIRST.length : index;
    };
    // Array.prototype.sort is stable: within a rank, vitest's order stands.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}
