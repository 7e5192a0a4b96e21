/**
 * How much of a short run's CPU is V8's optimizing compiler. For each system
 * it runs bench/warmup.ts (the consumer in one process, on a preloaded
 * backlog, timed from its first job to its last) in child processes:
 *
 * - as is, and with TurboFan off (`--no-opt`), alternating, `--rounds`
 *   times each: the CPU per 1,000 jobs of each;
 * - once under `--trace-opt`: what TurboFan spent compiling between the
 *   first job and the last, per function. It compiles on background threads,
 *   and process CPU (what the bench reports) counts them.
 *
 *   npx tsx bench/jit.ts                                        # taskmill-memory, 20,000 jobs, 3 rounds
 *   npx tsx bench/jit.ts --systems taskmill-redis,graphile-worker-batched --jobs 20000
 *
 * Needs `stdbuf` (coreutils) so that V8's trace lines and the window's
 * markers reach the pipe in the order they were written. Not a throughput
 * benchmark (npm run bench is): read a system's two figures against each other.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { positiveInteger } from './args.js';

const { values } = parseArgs({
  options: {
    systems: { type: 'string', default: 'taskmill-memory' },
    jobs: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    top: { type: 'string', default: '12' },
  },
});
const jobs = positiveInteger('jobs', values.jobs);
const rounds = positiveInteger('rounds', values.rounds);
const top = Number(values.top);

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const warmup = path.join(root, 'bench', 'warmup.ts');

function run(system: string, v8Flags: string[]): Promise<string> {
  const args = [
    '-oL',
    process.execPath,
    ...v8Flags,
    '--import',
    'tsx',
    warmup,
    '--systems',
    system,
    '--jobs',
    String(jobs),
    '--chunk',
    String(jobs),
    '--markers',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('stdbuf', args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`warmup of ${system} with [${v8Flags.join(' ')}] exited with ${code}`))));
  });
}

/** warmup.ts's line for the system: its one chunk is the whole run. */
function cpuPer1000(out: string, system: string): number {
  const line = out.split('\n').find((l) => l.startsWith(`${system}: `));
  const figure = Number(line?.slice(system.length + 2).split(' ')[0]);
  if (!Number.isFinite(figure)) throw new Error(`no CPU figure for ${system} in warmup's output`);
  return figure;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
// "[completed compiling 0x… <JSFunction name (sfi = 0x…)> (target TURBOFAN) - took 0.006, 5.496, 0.042 ms]":
// the middle figure is the optimization phase, the one that runs on a background thread.
const COMPILED = /^\[completed compiling 0x[0-9a-f]+ <JSFunction ([^ ]*) ?\(sfi.*took ([\d.]+), ([\d.]+), ([\d.]+) ms\]/;

console.log(`${jobs.toLocaleString('en-US')} jobs, the consumer's first job to its last; medians of ${rounds} round(s), as is and --no-opt alternating`);
for (const system of values.systems.split(',')) {
  const withOpt: number[] = [];
  const noOpt: number[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const flags of i % 2 === 0 ? [[], ['--no-opt']] : [['--no-opt'], []]) {
      (flags.length === 0 ? withOpt : noOpt).push(cpuPer1000(await run(system, flags), system));
    }
  }
  const trace = await run(system, ['--trace-opt']);
  const start = trace.indexOf(`### first job ${system}`);
  const end = trace.indexOf(`### last job ${system}`);
  if (start < 0 || end < start) throw new Error(`no markers for ${system} in the --trace-opt run`);
  const byFunction = new Map<string, { ms: number; times: number }>();
  let totalMs = 0;
  for (const line of trace.slice(start, end).split('\n')) {
    const match = COMPILED.exec(line);
    if (!match) continue;
    const ms = Number(match[2]) + Number(match[3]) + Number(match[4]);
    const name = match[1] || '(anonymous)';
    const entry = byFunction.get(name) ?? { ms: 0, times: 0 };
    entry.ms += ms;
    entry.times++;
    byFunction.set(name, entry);
    totalMs += ms;
  }
  const compiles = [...byFunction.values()].reduce((n, e) => n + e.times, 0);
  console.log(`\n${system}: CPU ms per 1,000 jobs ${median(withOpt).toFixed(1)} as is, ${median(noOpt).toFixed(1)} with --no-opt`);
  console.log(
    `  TurboFan in the window (--trace-opt run): ${compiles} compiles of ${byFunction.size} functions, ${totalMs.toFixed(0)} ms = ${((totalMs / jobs) * 1000).toFixed(1)} ms per 1,000 jobs`,
  );
  for (const [name, { ms, times }] of [...byFunction].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    console.log(`  ${ms.toFixed(1).padStart(7)} ms  ${name}${times > 1 ? ` (${times}×)` : ''}`);
  }
}
