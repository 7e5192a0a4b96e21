/**
 * The package as a user gets it: `npm pack` of this repo installed into a
 * throw-away ESM app and a CommonJS app, each running a job from its own
 * `commands.ts` through the installed `taskmill consume`, and the shipped
 * typings checked by a strict compile with nothing but taskmill and
 * @types/node installed.
 *
 * The tarball is packed with --ignore-scripts from the dist/ that `npm run
 * build` wrote (CI builds first): running prepack here would rebuild dist/
 * under the test files that run beside this one. That prepack builds is
 * checked on package.json.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir, waitFor } from '../helpers/processes.js';
import { REDIS_URL, hasRedis, uniqueName } from '../helpers/services.js';

const run = promisify(execFile);
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

const COMMANDS_TS = `import { queueCommand } from 'taskmill';

export const add = queueCommand('add', async (a: number, b: number): Promise<number> => a + b);
// A wrong argument type is a compile error through the shipped typings.
// @ts-expect-error: 'x' is not a number
export const unused = (): unknown => add('x', 1);
`;

// A backend author's file: the subpath exports and their typings.
const AUTHOR_TS = `import { BaseQueue, type QueueMessage } from 'taskmill/backends';
import { runContractSuite, type ContractTarget } from 'taskmill/testing';
import { MemoryQueue } from 'taskmill';

const target: ContractTarget = { create: (options) => new MemoryQueue('author', options) };
export const suite = (): void => runContractSuite('memory', target);
export const isQueue = (queue: unknown): queue is BaseQueue => queue instanceof BaseQueue;
export type Message = QueueMessage;
`;

const STRICT_TSCONFIG = JSON.stringify({
  compilerOptions: {
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    types: ['node'],
  },
  include: ['*.ts', '*.cts', '*.mts'],
});

// A producer as each kind of app would write it; tsx comes with taskmill.
const PRODUCERS = {
  esm: `import { register } from 'tsx/esm/api';
import { configure, closeQueues } from 'taskmill';
register();
configure({ queue: process.env.TASKMILL_QUEUE });
const { add } = await import('./commands.ts');
const job = await add(2, 3);
console.log(JSON.stringify({ result: await job.result({ timeout: 20000 }) }));
await closeQueues();
`,
  cjs: `require('tsx/cjs/api').register();
const { configure, closeQueues } = require('taskmill');
const { add } = require('./commands.ts');
configure({ queue: process.env.TASKMILL_QUEUE });
(async () => {
  const job = await add(4, 5);
  console.log(JSON.stringify({ result: await job.result({ timeout: 20000 }) }));
  await closeQueues();
})();
`,
};

let root = '';
let tarball = '';

beforeAll(async () => {
  if (!existsSync(path.join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` before the tests');
  root = tempDir('taskmill-pack-');
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', root], { cwd: ROOT });
  tarball = path.join(root, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'apps', private: true }));
  // --ignore-scripts: no native build of better-sqlite3 here (these apps use Redis).
  await run('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: root });
  mkdirSync(path.join(root, 'node_modules', '@types'), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(root, 'node_modules', '@types', 'node'), 'dir');
  // taskmill/testing runs under vitest, an optional peer dependency: the app brings its own.
  symlinkSync(path.join(ROOT, 'node_modules', 'vitest'), path.join(root, 'node_modules', 'vitest'), 'dir');
  for (const kind of ['esm', 'cjs'] as const) {
    const dir = path.join(root, kind);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `app-${kind}`, type: kind === 'esm' ? 'module' : 'commonjs' }));
    writeFileSync(path.join(dir, 'commands.ts'), COMMANDS_TS);
    writeFileSync(path.join(dir, 'author.ts'), AUTHOR_TS);
    writeFileSync(path.join(dir, 'tsconfig.json'), STRICT_TSCONFIG);
    writeFileSync(path.join(dir, kind === 'esm' ? 'producer.mjs' : 'producer.cjs'), PRODUCERS[kind]);
  }
}, 120_000);

describe('the packed tarball', () => {
  it('ships the build, its typings, the LICENSE and the README, and builds on prepack', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
    for (const f of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/cli.js', 'LICENSE', 'README.md', 'package.json']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => !f.startsWith('dist/') && !['LICENSE', 'README.md', 'package.json'].includes(f))).toEqual([]);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.prepack).toMatch(/npm run build/);
  });

  it('declares at runtime only what runtime needs', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const runtime = Object.keys(pkg.dependencies);
    expect(runtime.filter((d) => d.startsWith('@types/') || d.startsWith('@statelyai/'))).toEqual([]);
    // Every runtime dependency is imported somewhere in the shipped build.
    const dist = readdirSync(path.join(ROOT, 'dist'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.js') || f.endsWith('.cjs'))
      .map((f) => readFileSync(path.join(ROOT, 'dist', f), 'utf8'))
      .join('\n');
    for (const dep of runtime) expect(dist, `${dep} is a dependency but dist/ never imports it`).toMatch(new RegExp(`['"]${dep}(/[^'"]*)?['"]`));
  });

  it('resolves taskmill/backends and taskmill/testing at run time', async () => {
    const script =
      "const b = await import('taskmill/backends'); const t = await import('taskmill/testing'); console.log(typeof b.BaseQueue, typeof t.runContractSuite)";
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: path.join(root, 'esm') });
    expect(stdout.trim()).toBe('function function');
  });

  it('installs the taskmill command', () => {
    expect(existsSync(path.join(root, 'node_modules', '.bin', 'taskmill'))).toBe(true);
  });

  for (const kind of ['esm', 'cjs'] as const) {
    it(`type-checks a strict ${kind === 'esm' ? 'ESM' : 'CommonJS'} app with skipLibCheck: false`, async () => {
      const result = await run(process.execPath, [TSC, '-p', path.join(root, kind)]).catch((e: { stdout: string }) => e);
      expect(result.stdout).toBe('');
    }, 60_000);

    // In each pool: a thread or process of the built package imports the same commands.ts through tsx.
    it.runIf(hasRedis).each(['inline', 'threads', 'processes'])(
      `runs a job from commands.ts in a ${kind === 'esm' ? '"type": "module"' : '"type": "commonjs"'} app (--pool %s)`,
      async (pool) => {
        const dir = path.join(root, kind);
        const env = { ...process.env, TASKMILL_QUEUE: `${REDIS_URL}?prefix=${uniqueName('pack')}` };
        // No modules named: the consumer autodiscovers commands.ts.
        const consumer = spawn(path.join(root, 'node_modules', '.bin', 'taskmill'), ['consume', '-n', '--pool', pool], {
          cwd: dir,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let log = '';
        consumer.stdout.on('data', (d: Buffer) => (log += d.toString()));
        consumer.stderr.on('data', (d: Buffer) => (log += d.toString()));
        const exited = new Promise<number | null>((resolve) => consumer.once('exit', (code) => resolve(code)));
        try {
          await waitFor('the consumer to start', () => log.includes('consumer running'), 30_000);
          expect(log).toContain('"commands":["add"]');
          const { stdout } = await run(process.execPath, [kind === 'esm' ? 'producer.mjs' : 'producer.cjs'], { cwd: dir, env });
          expect(JSON.parse(stdout.trim())).toEqual({ result: kind === 'esm' ? 5 : 9 });
        } finally {
          consumer.kill('SIGTERM');
        }
        expect(await exited).toBe(0);
      },
      60_000,
    );
  }
});
