/**
 * Dropping a namespace's leftovers: Redis keys under a prefix, a PostgreSQL
 * schema. Shared by the adapters' destroy().
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { quoteIdent } from './names.js';

/** Deletes every key starting with `prefix` (`name:`; SCAN, never KEYS: the server is shared). */
export async function deleteRedisKeys(url: string, prefix: string): Promise<number> {
  if (!/^[A-Za-z0-9_.-]+:$/.test(prefix)) throw new Error(`refusing to delete keys under an unusual prefix ${JSON.stringify(prefix)}`);
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    redis.disconnect();
  }
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}
