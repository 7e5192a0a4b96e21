/**
 * The security guarantee "no eval" (docs/RELIABILITY.md), checked on the
 * source: nothing in src/ turns text into code — no eval, no Function
 * constructor, no vm module, no v8.deserialize (which revives objects), and
 * dynamic import() only where the operator's own command modules are loaded
 * (src/producer/autodiscover.ts: paths from `taskmill consume MODULE…` or autodiscovery,
 * never from a message). What a message decodes to is covered by
 * test/message.test.ts (closed set of types, prototype pollution).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/processes.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Source text without comments, so a comment that says "never evaluates" is not a finding. */
function code(file: string): string {
  return readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

const FORBIDDEN: [string, RegExp][] = [
  ['eval', /\beval\s*\(/],
  ['the Function constructor', /\bnew\s+Function\s*\(|\bFunction\s*\(\s*['"`]/],
  ['the vm module', /['"](node:)?vm['"]/],
  ['v8 (de)serialisation', /['"](node:)?v8['"]|\bv8\.deserialize\b/],
  ['string timers', /\bset(Timeout|Interval|Immediate)\s*\(\s*['"`]/],
];

describe('src/ never turns data into code', () => {
  const files = sources(path.join(ROOT, 'src'));

  it('finds the sources it checks', () => {
    expect(files.length).toBeGreaterThan(20);
    expect(files.map((f) => path.relative(ROOT, f))).toContain(path.join('src', 'codec', 'message.ts'));
  });

  it.each(FORBIDDEN)('%s: nowhere in src/', (_what, pattern) => {
    const hits = files.filter((file) => pattern.test(code(file))).map((file) => path.relative(ROOT, file));
    expect(hits).toEqual([]);
  });

  it('dynamic import() of anything but a fixed package name only in src/producer/autodiscover.ts, which loads the modules the operator names', () => {
    const computed = files.flatMap((file) =>
      code(file)
        .split('\n')
        .filter((line) => /\bimport\(/.test(line) && !/\bimport\(\s*['"][^'"]+['"]\s*\)/.test(line))
        .map((line) => `${path.relative(ROOT, file)}: ${line.trim()}`),
    );
    // The pool's thread bootstrap imports fixed modules only (tsx's API, resolved at load, and the
    // child entry beside it); autodiscovery the resolved path of a module given on the command line or found.
    expect(computed).toEqual([
      `${path.join('src', 'pool', 'child-handle.ts')}: const code = \`(async () => { \${TSX_API ? \`(await import(\${JSON.stringify(TSX_API)})).register();\` : ''} await import(\${JSON.stringify(ENTRY.href)}); })();\`;`,
      `${path.join('src', 'producer', 'autodiscover.ts')}: await import(pathToFileURL(absolute).href);`,
    ]);
  });
});
