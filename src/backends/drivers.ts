/**
 * The database drivers, loaded on first use. `import { RedisQueue } from
 * 'taskmill'` must not cost a SQLite-only consumer the ~45 MiB of resident
 * memory that ioredis, pg and better-sqlite3 take once loaded; each backend
 * asks for its driver when it first connects (all three are CommonJS, so a
 * synchronous require keeps the backends' constructors synchronous).
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type * as Ioredis from 'ioredis';
import type Pg from 'pg';
import type * as PromClient from 'prom-client';

const require = createRequire(import.meta.url);

function lazy<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}

export const ioredis: () => typeof Ioredis = lazy('ioredis');
export const pg: () => typeof Pg = lazy('pg');
export const betterSqlite3: () => typeof BetterSqlite3 = lazy('better-sqlite3');
/** Not a driver, but loaded the same way: only a consumer that asks for metrics pays for it. */
export const promClient: () => typeof PromClient = lazy('prom-client');
