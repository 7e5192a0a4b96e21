/**
 * The manual checks itself: README.md and docs/**\/*.md.
 *
 * 1. Every relative link (`[text](target)`, `![alt](target)`, including a
 *    `#anchor` part) resolves to a file or folder of the repo and, for an
 *    anchor, to a heading of the target page (GitHub's slugs).
 * 2. Every ```ts / ```typescript block compiles on its own, as an ES module,
 *    against the BUILT package (dist/, which `npm run build` writes) with a
 *    strict tsconfig and skipLibCheck off — the way a user's app sees taskmill.
 *    Blocks may import only from 'taskmill' — and from a block of the same
 *    page that names its file on its first line (`// commands.ts`), which is
 *    written under that name, so a producer block can `import … from
 *    './commands.js'` as the user's app would. A block that cannot compile on
 *    its own (a signature listing) says so in its info string: ```ts nocompile.
 *
 * No markdown parser is installed (none is in node_modules, and this repo adds
 * no dependency for a test), so links are found with a small scanner: fenced
 * code blocks and inline code spans are blanked out first (keeping line
 * numbers), then `[text](target)` is matched. The manual uses only inline links
 * and ATX (`#`) headings; reference-style links and setext headings are not
 * understood, and nothing here uses them.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/** Packages a docs block may import besides taskmill: the drivers whose clients an app hands over. */
const DOC_PACKAGES = ['pg', 'better-sqlite3'];
import { ROOT, tempDir } from '../helpers/processes.js';

const run = promisify(execFile);
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** README.md and every .md below docs/, as repo-relative paths with '/'. */
function manualPages(): string[] {
  const docs = readdirSync(path.join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f.split(path.sep).join('/')}`)
    .sort();
  return ['README.md', ...docs];
}

interface Fence {
  /** 1-based line of the opening fence. */
  line: number;
  info: string;
  body: string;
}

interface ScannedPage {
  /** The text with fenced blocks blanked (line numbers kept): where headings are. */
  text: string;
  /** `text` with inline code spans blanked too: where links are. */
  prose: string;
  fences: Fence[];
}

const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;

function scan(text: string): ScannedPage {
  const lines = text.split('\n');
  const out: string[] = [];
  const fences: Fence[] = [];
  let open: { indent: number; marker: string; line: number; info: string; body: string[] } | null = null;
  for (const [i, line] of lines.entries()) {
    const m = FENCE.exec(line);
    if (open === null) {
      if (m && !(m[2]!.startsWith('`') && m[3]!.includes('`'))) {
        open = { indent: m[1]!.length, marker: m[2]!, line: i + 1, info: m[3]!.trim(), body: [] };
        out.push('');
      } else {
        out.push(line);
      }
      continue;
    }
    if (m && m[2]![0] === open.marker[0] && m[2]!.length >= open.marker.length && m[3]!.trim() === '') {
      fences.push({ line: open.line, info: open.info, body: open.body.join('\n') });
      open = null;
    } else {
      // Fences inside list items are indented; their content is too.
      open.body.push(line.slice(Math.min(open.indent, line.length - line.trimStart().length)));
    }
    out.push('');
  }
  if (open !== null) throw new Error(`unclosed code fence opened at line ${open.line}`);
  // Inline code spans, which may run over a line break but not over a blank line.
  const blanked = out.join('\n');
  const prose = blanked.replace(/(`+)(?:(?!\n[ \t]*\n)[\s\S])+?\1(?!`)/g, (span) => span.replace(/[^\n]/g, ' '));
  return { text: blanked, prose, fences };
}

/** GitHub's heading anchors (github-slugger): lowercase, punctuation dropped, spaces to '-', repeats get -1, -2, … */
function headingSlugs(text: string): Set<string> {
  const slugs = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (!m) continue;
    const text = m[1]!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text only
      .replace(/<[^>]+>/g, ''); // HTML tags
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    slugs.add(n === 0 ? base : `${base}-${n}`);
  }
  return slugs;
}

interface Link {
  page: string;
  line: number;
  target: string;
}

function linksOf(page: string, prose: string): Link[] {
  const links: Link[] = [];
  const re = /!?\[(?:[^\][]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g;
  for (const m of prose.matchAll(re)) {
    const line = prose.slice(0, m.index).split('\n').length;
    links.push({ page, line, target: m[1]! });
  }
  return links;
}

const pages = manualPages();
const texts = new Map(pages.map((p) => [p, readFileSync(path.join(ROOT, p), 'utf8')]));
const scanned = new Map(pages.map((p) => [p, scan(texts.get(p)!)]));
const slugCache = new Map<string, Set<string>>();
function slugsOf(page: string): Set<string> {
  let slugs = slugCache.get(page);
  if (!slugs) {
    slugs = headingSlugs((scanned.get(page) ?? scan(readFileSync(path.join(ROOT, page), 'utf8'))).text);
    slugCache.set(page, slugs);
  }
  return slugs;
}

/** Why `link` does not resolve, or null when it does. */
function brokenReason(link: Link): string | null {
  const { target } = link;
  if (target === '') return 'empty link target';
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // https:, mailto:: not checked offline
  if (target.startsWith('/')) return 'absolute path: link relative to the page instead';
  const hash = target.indexOf('#');
  const file = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
  const anchor = hash === -1 ? null : decodeURIComponent(target.slice(hash + 1));
  const resolved = file === '' ? link.page : path.posix.normalize(path.posix.join(path.posix.dirname(link.page), file));
  if (resolved.startsWith('../') || resolved === '..') return 'points outside the repository';
  const abs = path.join(ROOT, resolved);
  if (!existsSync(abs)) return `${resolved} does not exist`;
  if (anchor === null) return null;
  if (statSync(abs).isDirectory() || !resolved.endsWith('.md')) return `an anchor on ${resolved}, which is not a markdown page`;
  if (!slugsOf(resolved).has(anchor)) return `${resolved} has no heading with the anchor #${anchor}`;
  return null;
}

describe('the manual (README.md, docs/)', () => {
  it('has a README that is a front door: short, with "Try it", linking every docs page', () => {
    const readme = texts.get('README.md')!;
    expect(readme.split('\n').length).toBeLessThanOrEqual(300);
    expect(readme).toMatch(/^## Try it \(fresh clone\)$/m);
    expect(readme).toContain('npm install && npm run demo');
    expect(readme).toMatch(/^npm test\b/m);
    const linked = new Set(
      linksOf('README.md', scanned.get('README.md')!.prose)
        .map((link) => link.target.split('#')[0]!)
        .filter((file) => file !== '' && !/^[a-z][a-z0-9+.-]*:/i.test(file))
        .map((file) => path.posix.normalize(file)),
    );
    const unlinked = pages.filter((p) => p.startsWith('docs/') && !linked.has(p));
    expect(unlinked, 'docs pages the README does not link to').toEqual([]);
  });

  it('has no relative link to a missing file or heading', () => {
    const broken: string[] = [];
    let count = 0;
    for (const page of pages) {
      for (const link of linksOf(page, scanned.get(page)!.prose)) {
        count++;
        const reason = brokenReason(link);
        if (reason) broken.push(`${page}:${link.line}: (${link.target}): ${reason}`);
      }
    }
    expect(count).toBeGreaterThan(50);
    expect(broken, `broken links:\n${broken.join('\n')}`).toEqual([]);
  });

  it('has only TypeScript blocks that compile against the built package', async () => {
    if (!existsSync(path.join(ROOT, 'dist', 'index.d.ts')) || !existsSync(path.join(ROOT, 'dist', 'index.js'))) {
      throw new Error('dist/ is missing: run `npm run build` before this test (the TypeScript blocks compile against the built package)');
    }
    const dir = tempDir('taskmill-docs-');
    mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
    symlinkSync(ROOT, path.join(dir, 'node_modules', 'taskmill'), 'dir');
    symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'), 'dir');
    // The drivers a page may show next to taskmill (docs/transactions.md hands their clients over).
    for (const pkg of [...DOC_PACKAGES, '@types/pg', '@types/better-sqlite3'])
      symlinkSync(path.join(ROOT, 'node_modules', pkg), path.join(dir, 'node_modules', pkg), 'dir');
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'docs-blocks', private: true, type: 'module' }));
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          moduleDetection: 'force',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
        },
        include: ['**/*.ts', '**/*.mts', '**/*.cts'],
      }),
    );

    // One folder per page (its blocks may import each other's named files), e.g. docs-backends-redis/block003.ts.
    const blocks = new Map<string, { page: string; line: number }>();
    const problems: string[] = [];
    for (const page of pages) {
      const folder = page.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-');
      mkdirSync(path.join(dir, folder));
      const compiled = scanned.get(page)!.fences.filter((fence) => {
        const [lang, ...flags] = fence.info.split(/\s+/);
        return (lang === 'ts' || lang === 'typescript') && !flags.includes('nocompile');
      });
      const named = new Map<string, number>();
      for (const fence of compiled) {
        const name = /^\/\/ ([\w.-]+)\.(ts|mts|cts)\b/.exec(fence.body)?.slice(1);
        if (!name) continue;
        const file = `${name[0]}.${name[1]}`;
        if (named.has(file)) problems.push(`${page}: blocks at lines ${named.get(file)} and ${fence.line} are both named ${file}`);
        named.set(file, fence.line);
      }
      for (const fence of compiled) {
        const name = /^\/\/ ([\w.-]+\.(?:ts|mts|cts))\b/.exec(fence.body)?.[1];
        const file = `${folder}/${name ?? `block${String(blocks.size + 1).padStart(3, '0')}.ts`}`;
        blocks.set(file, { page, line: fence.line });
        writeFileSync(path.join(dir, file), `${fence.body}\n`);
        for (const m of fence.body.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)) {
          const sibling = /^\.\/([\w.-]+)\.(m?c?js)$/.exec(m[1]!);
          const siblingTs = sibling ? `${sibling[1]}.${sibling[2]!.replace('js', 'ts')}` : null;
          if (m[1] === 'taskmill' || DOC_PACKAGES.includes(m[1]!.split('/')[0]!) || (siblingTs && named.has(siblingTs))) continue;
          problems.push(
            `${page}: block at line ${fence.line} imports '${m[1]}': blocks may import only from 'taskmill', ${DOC_PACKAGES.join(', ')} (or a named block of the same page)`,
          );
        }
      }
    }
    expect(blocks.size).toBeGreaterThan(20);
    expect(problems, problems.join('\n')).toEqual([]);

    // Run in the temp dir: tsc names files relative to its cwd.
    const result = await run(process.execPath, [TSC, '-p', '.', '--pretty', 'false'], { cwd: dir, maxBuffer: 16 * 1024 * 1024 })
      .catch((e: { stdout?: string; stderr?: string }) => e)
      .finally(() => rmSync(dir, { recursive: true, force: true }));
    // "docs-x/block007.ts(3,5): error TS…" → "docs/x.md: block at line 40, line 43 col 5: error TS…"
    const errors = `${result.stdout ?? ''}${result.stderr ?? ''}`
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const m = /^([\w-]+\/[\w.-]+\.[mc]?ts)\((\d+),(\d+)\): (.*)$/.exec(l);
        const origin = m ? blocks.get(m[1]!) : undefined;
        if (!m || !origin) return l;
        return `${origin.page}: block at line ${origin.line}, line ${origin.line + Number(m[2])} col ${m[3]}: ${m[4]}`;
      });
    expect(errors, `TypeScript blocks that do not compile:\n${errors.join('\n')}`).toEqual([]);
  }, 180_000);
});
