/**
 * Every backend as a queue URL, for tests that run one scenario on each:
 * memory (in this process), SQLite (a temp file), PostgreSQL (a schema of its
 * own) and Redis polling and blocking (a prefix of their own). A server that
 * is absent is skipped loudly, and fails the run under CI (services.ts).
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll } from 'vitest';
import { createQueue } from '../../src/index.js';
import { tempDir } from './processes.js';
import { POSTGRES_URL, REDIS_URL, dropPostgresSchema, hasPostgres, hasRedis, uniqueName } from './services.js';

export interface BackendServer {
  kind: string;
  available: boolean;
  /** A fresh queue URL (its own file, schema or prefix). */
  url(): string;
  /** Removes what the URL's queues left behind. */
  dispose(url: string): Promise<void>;
}

/** The backends, with `label` in each name; call at the top of a test file (it registers the cleanup). */
export function backendServers(label: string): BackendServer[] {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const flushRedis = async (url: string) => {
    const queue = createQueue(url, { onWarning: () => {} });
    try {
      await queue.flush();
    } finally {
      await queue.close();
    }
  };
  return [
    { kind: 'memory', available: true, url: () => `memory://${uniqueName(label)}`, dispose: async () => {} },
    {
      kind: 'SQLite',
      available: true,
      url: () => {
        const dir = tempDir(`taskmill-${label}-`);
        dirs.push(dir);
        return `sqlite:${path.join(dir, 'queue.sqlite')}`;
      },
      dispose: async () => {},
    },
    {
      kind: 'PostgreSQL',
      available: hasPostgres,
      url: () => `${POSTGRES_URL}?schema=${uniqueName(label).replace(/-/g, '_')}`,
      dispose: dropPostgresSchema,
    },
    ...[false, true].map((blocking): BackendServer => ({
      kind: blocking ? 'Redis (blocking)' : 'Redis (polling)',
      available: hasRedis,
      url: () => `${REDIS_URL}?prefix=${uniqueName(label)}${blocking ? '&blocking=true' : ''}`,
      dispose: flushRedis,
    })),
  ];
}
