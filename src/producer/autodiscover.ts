/**
 * autodiscover() and importModule(): how command modules are found and
 * loaded, TypeScript included, in ESM and CommonJS packages alike.
 */
import { pathToFileURL } from 'node:url';
import path from 'node:path';

export const DEFAULT_DISCOVERY_PATTERNS = ['**/commands.{js,mjs,cjs,ts,mts,cts}'];

let tsLoaderRegistered = false;

/**
 * Imports a module by path; TypeScript goes through tsx so users need no build
 * step. Both of tsx's hooks are registered: in a `"type": "commonjs"` package a
 * `.ts` file is CommonJS, and Node's own require() of it would take its
 * `import` syntax for ESM and fail ("require() … in a cycle"). Its
 * `require('taskmill')` then reaches this same instance through index.cjs.
 */
export async function importModule(file: string): Promise<void> {
  const absolute = path.resolve(file);
  if (/\.(?:ts|mts|cts|tsx)$/.test(absolute) && !tsLoaderRegistered && !(process.features as { typescript?: unknown }).typescript) {
    const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
    esm.register();
    cjs.register();
    tsLoaderRegistered = true;
  }
  await import(pathToFileURL(absolute).href);
}

/**
 * Imports every module matching `patterns` (default: files named
 * commands.{js,mjs,cjs,ts,mts,cts} below cwd, outside node_modules and dot-folders)
 * and returns the paths imported, sorted.
 */
export async function autodiscover(patterns?: string | string[], options: { cwd?: string } = {}): Promise<string[]> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const list = patterns === undefined ? DEFAULT_DISCOVERY_PATTERNS : Array.isArray(patterns) ? patterns : [patterns];
  const files = (await (await import('tinyglobby')).glob(list, { cwd, absolute: true, ignore: ['**/node_modules/**', '**/.*/**'], onlyFiles: true })).sort();
  for (const file of files) await importModule(file);
  return files;
}
