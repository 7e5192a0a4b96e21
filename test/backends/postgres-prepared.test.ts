/**
 * The PostgreSQL backend's `preparedStatements` switch: on (the default) the hot queries go as
 * named statements, parsed and planned once per connection; off (behind a transaction-mode
 * pooler) none does. The contract suite runs both ways (postgres.test.ts).
 */
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { DatabaseQueue, type DatabaseQueueOptions } from '../../src/backends/postgres/queue.js';
import { ConfigError } from '../../src/shared/errors.js';
import { hasPostgres, POSTGRES_URL, uniqueName } from '../helpers/services.js';

describe.skipIf(!hasPostgres)('DatabaseQueue: preparedStatements', () => {
  const schema = `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const opened: DatabaseQueue[] = [];

  function queue(options: DatabaseQueueOptions = {}): DatabaseQueue {
    const created = new DatabaseQueue(POSTGRES_URL, { schema, name: uniqueName(), onWarning: () => {}, ...options });
    opened.push(created);
    return created;
  }

  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(opened.splice(0).map((q) => q.close()));
  });

  afterAll(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await client.end();
  });

  /** The statement names the queue's connections were asked to run, per query, while `work` ran. */
  async function namesDuring(q: DatabaseQueue, work: () => Promise<unknown>): Promise<(string | undefined)[]> {
    await q.open();
    const spy = vi.spyOn(pg.Client.prototype, 'query');
    await work();
    const names = spy.mock.calls.map(([config]) => (typeof config === 'object' && config !== null ? (config as { name?: string }).name : undefined));
    spy.mockRestore();
    return names;
  }

  async function aRound(q: DatabaseQueue): Promise<void> {
    await Promise.all([q.write('a'), q.write('b')]);
    const messages = await q.readBatch(10);
    await q.extend(messages.map((m) => m.id));
    await q.ackBatch(messages.map((m) => m.id));
    await q.stats();
  }

  it('on by default: write, claim, extend and ack go as named statements; the rest do not', async () => {
    const q = queue();
    expect(q.preparedStatements).toBe(true);
    const names = await namesDuring(q, () => aRound(q));
    expect(names).toHaveLength(5);
    expect(names.slice(0, 4).every((name) => typeof name === 'string' && name.startsWith('taskmill_'))).toBe(true);
    expect(new Set(names.slice(0, 4)).size).toBe(4); // one name per statement text
    expect(names[4]).toBeUndefined(); // stats: not a hot query
    expect(await q.length()).toBe(0);
  });

  it('off: no statement is named, and the queue works the same', async () => {
    const q = queue({ preparedStatements: false });
    expect(q.preparedStatements).toBe(false);
    const names = await namesDuring(q, () => aRound(q));
    expect(names).toHaveLength(5);
    expect(names.every((name) => name === undefined)).toBe(true);
    expect(await q.stats()).toMatchObject({ ready: 0, leased: 0 });
  });

  it("behind pooler: 'transaction' they are off unless asked for (a pooler that keeps them, PgBouncer 1.21+)", async () => {
    const pooled = queue({ pooler: 'transaction' });
    expect(pooled.preparedStatements).toBe(false);
    expect((await namesDuring(pooled, () => aRound(pooled))).every((name) => name === undefined)).toBe(true);
    expect(queue({ pooler: 'transaction', preparedStatements: true }).preparedStatements).toBe(true);
  });

  it('refuses a value that is not a boolean, naming the option', () => {
    expect(() => queue({ preparedStatements: 'no' as unknown as boolean })).toThrow(ConfigError);
    expect(() => queue({ preparedStatements: 'no' as unknown as boolean })).toThrow(/preparedStatements/);
  });
});
