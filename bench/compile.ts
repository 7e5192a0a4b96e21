/**
 * Transpiles src/ and bench/ to plain JavaScript for the child processes.
 * A child under a TypeScript loader (tsx) starts seconds slower and carries
 * ~40 MiB of loader in its RSS, which would swamp the figures being measured;
 * users run taskmill compiled, too. Type-only transpilation (no checking) of
 * each file, written below node_modules/.cache so that bare imports resolve
 * to the project's node_modules. Files the code reads at run time (the Redis
 * Lua scripts) are copied beside the output, as `npm run build` does.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

function filesEnding(dir: string, ending: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name.startsWith('.') ? [] : filesEnding(full, ending);
    return entry.name.endsWith(ending) && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

const isStale = (source: string, target: string) => !existsSync(target) || statSync(target).mtimeMs < statSync(source).mtimeMs;

/**
 * Compiles `folders` of `root` into `out`, skipping files whose output is
 * newer than their source (loading the compiler alone takes seconds here).
 * Returns how many files were compiled.
 */
export async function compileForChildren(root: string, out: string, folders: readonly string[] = ['src', 'bench']): Promise<number> {
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'package.json'), '{ "type": "module", "private": true }\n');
  for (const file of folders.flatMap((folder) => filesEnding(path.join(root, folder), '.lua'))) {
    const target = path.join(out, path.relative(root, file));
    if (!isStale(file, target)) continue;
    mkdirSync(path.dirname(target), { recursive: true });
    copyFileSync(file, target);
  }
  const stale = folders
    .flatMap((folder) => filesEnding(path.join(root, folder), '.ts'))
    .filter((file) => isStale(file, path.join(out, path.relative(root, file).replace(/\.ts$/, '.js'))));
  if (stale.length === 0) return 0;
  const { default: ts } = await import('typescript');
  const compilerOptions = {
    module: ts.ModuleKind.ESNext,
    target: ts.ScriptTarget.ES2022,
    verbatimModuleSyntax: true,
    useDefineForClassFields: true,
  };
  for (const file of stale) {
    const relative = path.relative(root, file);
    const { outputText, diagnostics } = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions, fileName: relative, reportDiagnostics: true });
    if (diagnostics && diagnostics.length > 0) {
      throw new Error(`${relative}: ${ts.flattenDiagnosticMessageText(diagnostics[0]!.messageText, '\n')}`);
    }
    const target = path.join(out, relative.replace(/\.ts$/, '.js'));
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  return stale.length;
}
