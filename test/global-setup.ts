/**
 * Transpiles src/ and test/ once per run, for the child processes the tests
 * start (test/helpers/processes.ts): plain Node on JavaScript, as users run
 * taskmill, instead of a TypeScript loader in every child. Only files changed
 * since the last run are transpiled again.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { compileForChildren } from '../bench/compile.js';
import { COMPILED, COMPILED_MARK, ROOT } from './helpers/processes.js';

export default async function setup(): Promise<void> {
  rmSync(COMPILED_MARK, { force: true });
  await compileForChildren(ROOT, COMPILED, ['src', 'test']);
  // The CLI reads its version from ../package.json, which here is the twins' own.
  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  writeFileSync(path.join(COMPILED, 'package.json'), `${JSON.stringify({ type: 'module', private: true, version })}\n`);
  writeFileSync(COMPILED_MARK, '');
}
