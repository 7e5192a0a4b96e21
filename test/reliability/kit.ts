/**
 * The shared kit of test/reliability/*.test.ts: the durable backends, an
 * isolated queue URL per test (own SQLite file / Redis prefix / PostgreSQL
 * schema) that is removed afterwards, the consumer fixture (consumer.ts) as a
 * child process, and the run records its commands append (commands.ts).
 *
 * `describeEachBackend` makes one describe block per backend, so a failure
 * names its backend and a file's backends can run side by side
 * (`concurrent`). KEEP_RELIABILITY_DIR=1 keeps the temp dirs (record files,
 * SQLite files) and prints where they are.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe } from 'vitest';
import { createQueue, type BaseQueue, type CreateQueueOptions, type QueueStats } from '../../src/index.js';
import { deleteRedisPrefix } from '../fixtures/backends-e2e.js';
import { ROOT, jsonLines, spawnTsx, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { POSTGRES_URL, REDIS_URL, dropPostgresSchema, hasPostgres, hasRedis, uniqueName } from '../helpers/services.js';
import type { RunRecord } from './commands.js';

export type { RunRecord } from './commands.js';

const CONSUMER = path.join(ROOT, 'test', 'reliability', 'consumer.ts');

export interface Backend {
  name: string;
  /** False only outside CI, when the server is not running (services.ts). */
  available: boolean;
  /** A queue URL nobody else uses. */
  freshUrl(dir: string): string;
  /** Removes what `freshUrl` created on the server, once every process using it is dead. */
  dispose(url: string): Promise<void>;
  /**
   * SQLite only: whether some process holds the file's write lock now. A
   * process stopped inside a write transaction blocks every other writer
   * until it runs again — SQLite's nature, not the subject of a test.
   */
  writeLocked?(url: string): boolean;
}

function sqliteWriteLocked(url: string): boolean {
  const file = url.slice('sqlite:'.length);
  if (!existsSync(file)) return false;
  const db = new Database(file, { timeout: 0 });
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return false;
  } catch (error) {
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return true;
    throw error;
  } finally {
    db.close();
  }
}

export const BACKENDS: readonly Backend[] = [
  {
    name: 'SQLite',
    available: true,
    freshUrl: (dir) => `sqlite:${path.join(dir, `${uniqueName('queue')}.sqlite`)}`,
    dispose: async () => {}, // the file lives in the suite's temp dir, removed with it
    writeLocked: sqliteWriteLocked,
  },
  {
    name: 'Redis (polling)',
    available: hasRedis,
    freshUrl: () => `${REDIS_URL}?prefix=${uniqueName('rel')}`,
    dispose: deleteRedisPrefix,
  },
  {
    name: 'Redis (blocking)',
    available: hasRedis,
    freshUrl: () => `${REDIS_URL}?prefix=${uniqueName('rel')}&blocking=true`,
    dispose: deleteRedisPrefix,
  },
  {
    name: 'PostgreSQL',
    available: hasPostgres,
    freshUrl: () => `${POSTGRES_URL}?schema=${uniqueName('rel').replace(/-/g, '_')}`,
    dispose: dropPostgresSchema,
  },
];

export interface ConsumerProcess extends Spawned {
  pid: number;
  /** The consumer's pino log lines so far. */
  logs(): Record<string, unknown>[];
}

export interface Suite {
  /** This describe block's temp dir (record files, SQLite files). */
  readonly dir: string;
  /** A fresh queue URL on this backend, removed after the block. */
  freshUrl(): string;
  /** A queue on `url` in the test process, closed after the block. */
  openQueue(url: string, options?: CreateQueueOptions): BaseQueue;
  /** Starts consumer.ts on `url` and waits until it logs 'consumer running'. */
  startConsumer(url: string, options: { recordFile: string; workers?: number; leaseMs?: number; commandTimeoutMs?: number }): Promise<ConsumerProcess>;
}

/** Registers the hooks that clean up after a describe block and returns its helpers. Call inside `describe`. */
export function useSuite(backend: Backend): Suite {
  let dir = '';
  const urls: string[] = [];
  const queues: BaseQueue[] = [];
  const children: Spawned[] = [];
  const killAll = () => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  };
  beforeAll(() => {
    dir = tempDir('taskmill-reliability-');
    if (process.env.KEEP_RELIABILITY_DIR) console.info(`[reliability] ${backend.name}: ${dir}`);
    process.once('exit', killAll); // even when the test worker dies before afterAll
  });
  afterAll(async () => {
    killAll(); // SIGKILL also ends a SIGSTOPped process
    await Promise.all(children.map((c) => c.exited));
    await Promise.allSettled(queues.map((q) => q.close()));
    await Promise.allSettled(urls.map((url) => backend.dispose(url)));
    if (dir && !process.env.KEEP_RELIABILITY_DIR) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  return {
    get dir() {
      return dir;
    },
    freshUrl() {
      const url = backend.freshUrl(dir);
      urls.push(url);
      return url;
    },
    openQueue(url, options = {}) {
      const queue = createQueue(url, { onWarning: () => {}, ...options });
      queues.push(queue);
      return queue;
    },
    async startConsumer(url, { recordFile, workers = 2, leaseMs = 30_000, commandTimeoutMs }) {
      const env = { RECORD_FILE: recordFile, ...(commandTimeoutMs ? { COMMAND_TIMEOUT_MS: String(commandTimeoutMs) } : {}) };
      const spawned = spawnTsx([CONSUMER, url, String(workers), String(leaseMs)], { env });
      children.push(spawned);
      const consumer: ConsumerProcess = { ...spawned, pid: spawned.child.pid!, logs: () => jsonLines(spawned.stdout()) };
      await waitFor(
        `consumer ${consumer.pid} running (stderr: ${spawned.stderr().slice(-500)})`,
        () => spawned.stdout().includes('consumer running') || spawned.child.exitCode !== null,
        60_000, // starting Node + tsx takes seconds when the suite loads both cores
      );
      if (spawned.child.exitCode !== null) throw new Error(`consumer exited ${spawned.child.exitCode}: ${spawned.stderr()}`);
      return consumer;
    },
  };
}

/**
 * A describe block `title` holding one block per available backend, named after it.
 * `concurrent`: the blocks run side by side (they wait on child processes and
 * servers far more than they use the CPU) and so do the tests inside a block,
 * except those declared with `it.sequential`, which run in order.
 */
export function describeEachBackend(title: string, body: (backend: Backend, suite: Suite) => void, options: { concurrent?: boolean } = {}): void {
  const group = options.concurrent ? describe.concurrent : describe;
  group(title, () => {
    for (const backend of BACKENDS) {
      describe.skipIf(!backend.available)(backend.name, () => body(backend, useSuite(backend)));
    }
  });
}

/** The run records in `file`, oldest first ([] before the first run); a line still being written is left for the next read. */
export function readRecords(file: string): RunRecord[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.pop(); // '' after the last complete line, or a partial one
  return lines.filter(Boolean).map((line) => JSON.parse(line) as RunRecord);
}

/** Nothing ready, leased or delayed (failed messages are the test's to count). */
export function isDrained(stats: QueueStats): boolean {
  return stats.ready === 0 && stats.leased === 0 && stats.delayed === 0;
}

export function countBy<T>(items: Iterable<T>): Map<T, number> {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends SIGTERM and resolves with the exit code (a signal name if it died of one), or 'hung' after `timeoutMs`. */
export async function terminate(consumer: ConsumerProcess, timeoutMs = 20_000): Promise<number | string> {
  consumer.child.kill('SIGTERM');
  return Promise.race([consumer.exited, sleep(timeoutMs).then(() => 'hung')]);
}

export { waitFor };
