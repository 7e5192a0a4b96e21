/**
 * `npm run demo`: a consumer and a producer on the embedded SQLite default.
 * It starts `taskmill consume -t 4` as its own process, runs the producer as
 * another, waits for the queue to empty, shows the failed store (one job
 * fails on purpose, its worker is replaced) and stops the consumer with
 * SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { SqliteQueue } from '../src/index.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const cli = path.join(root, 'src', 'cli.ts');
const env = { ...process.env, TASKMILL_QUEUE: 'sqlite:taskmill.sqlite' };
const tsx = (args: string[]) => [process.execPath, ['--import', 'tsx', ...args]] as const;

function run(args: string[]): void {
  const [cmd, argv] = tsx(args);
  spawnSync(cmd, argv, { cwd: root, env, stdio: 'inherit' });
}

function banner(text: string): void {
  console.log(`\n\x1b[1m── ${text} ──\x1b[0m`);
}

banner('clearing taskmill.sqlite');
run([cli, 'flush']);

banner('starting: taskmill consume -t 4 examples/commands.ts');
const [cmd, argv] = tsx([cli, 'consume', '-t', '4', '-d', '0.05', '-m', '0.5', 'examples/commands.ts']);
const consumer: ChildProcess = spawn(cmd, argv, { cwd: root, env, stdio: 'inherit' });
const exited = new Promise<number | null>((resolve) => consumer.once('exit', (code) => resolve(code)));
await sleep(1500);

banner('producer: enqueueing 30 jobs (every 10th is a flaky one that fails)');
run(['examples/producer.ts', '30']);

const queue = new SqliteQueue(path.join(root, 'taskmill.sqlite'));
for (let i = 0; i < 200; i++) {
  const { ready, leased } = await queue.stats();
  if (ready === 0 && leased === 0) break;
  await sleep(100);
}
await queue.close();

banner('taskmill status');
run([cli, 'status']);
banner('taskmill failed');
run([cli, 'failed']);

banner('stopping the consumer with SIGTERM');
consumer.kill('SIGTERM');
const code = await exited;
banner(`consumer exited with code ${code}`);
process.exitCode = code ?? 1;
