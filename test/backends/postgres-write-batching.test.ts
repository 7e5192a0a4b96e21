/**
 * Concurrent single writes on one PostgreSQL queue share a statement and a commit
 * (src/backends/postgres/write-batcher.ts). What must hold: each call resolves with its own id
 * only once its row is committed, a failed statement rejects exactly the calls it carried, and
 * delays, priorities, close() and the transactional path keep their meaning.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { QueueConnectionError } from '../../src/shared/errors.js';
import { hasPostgres, POSTGRES_URL } from '../helpers/services.js';
import { postgresFixture } from '../helpers/postgres-fixture.js';

describe.skipIf(!hasPostgres)('DatabaseQueue: coalesced single writes', () => {
  const { s, queue, sql } = postgresFixture();

  it('many parallel writes are all stored once, ids distinct and in call order, in fewer transactions than calls', async () => {
    const q = queue();
    await q.open();
    const datas = Array.from({ length: 400 }, (_, i) => `m${i}`);
    const ids = await Promise.all(datas.map((d) => q.write(d)));
    expect(new Set(ids).size).toBe(datas.length);
    const rows = await sql<{ id: string; data: string; tx: string }>(`SELECT id::text, data, xmin::text AS tx FROM ${s}.jobs WHERE queue = $1`, [q.name]);
    expect(rows).toHaveLength(datas.length);
    const byId = new Map(rows.map((r) => [r.id, r.data]));
    expect(ids.map((id) => byId.get(id))).toEqual(datas); // each call got its own row's id
    // Calls made in one turn went in one statement: ids ascend in call order.
    expect([...ids].sort((a, b) => Number(a) - Number(b))).toEqual(ids);
    // Coalesced: the 400 rows were written by a handful of transactions, not one each.
    expect(new Set(rows.map((r) => r.tx)).size).toBeLessThan(datas.length / 10);
    const read = await q.readBatch(1000);
    expect(read.map((m) => m.data)).toEqual(datas);
  });

  it('big payloads are not coalesced past about a million characters: each statement keeps a deadline it can meet', async () => {
    const q = queue();
    await q.open();
    const big = (c: string) => c.repeat(600_000);
    const ids = await Promise.all([q.write(big('a')), q.write(big('b')), q.write('small'), q.write(big('c'))]);
    const rows = await sql<{ id: string; tx: string; size: number }>(
      `SELECT id::text, xmin::text AS tx, length(data) AS size FROM ${s}.jobs WHERE queue = $1`,
      [q.name],
    );
    // By call, not by id: the statements run side by side, so their ids may interleave.
    const byCall = ids.map((id) => rows.find((r) => r.id === id)!);
    expect(byCall.map((r) => r.size)).toEqual([600_000, 600_000, 5, 600_000]);
    // a | b + small | c: never two big ones in one statement.
    expect(byCall.map((r) => r.tx)).toEqual([byCall[0]!.tx, byCall[1]!.tx, byCall[1]!.tx, byCall[3]!.tx]);
    expect(new Set(rows.map((r) => r.tx)).size).toBe(3);
  });

  it('a resolved write is committed: another connection sees its row at once', async () => {
    const q = queue();
    await q.open();
    const pending = Array.from({ length: 20 }, (_, i) => q.write(`v${i}`));
    for (const [i, write] of pending.entries()) {
      const id = await write;
      const seen = await sql<{ data: string }>(`SELECT data FROM ${s}.jobs WHERE id = $1`, [id]);
      expect(seen).toEqual([{ data: `v${i}` }]);
    }
  });

  it('delays and priorities are per call inside one shared statement', async () => {
    const q = queue();
    await q.open();
    const [low, delayed, high, plain] = await Promise.all([
      q.write('low', { priority: -5 }),
      q.write('delayed', { runAt: Date.now() + 3_600_000 }),
      q.write('high', { priority: 7 }),
      q.write('plain'),
    ]);
    const rows = await sql<{ id: string; priority: number; delayed: boolean; tx: string }>(
      `SELECT id::text, priority, run_at IS NOT NULL AS delayed, xmin::text AS tx FROM ${s}.jobs WHERE queue = $1 ORDER BY id`,
      [q.name],
    );
    expect(rows.map((r) => [r.id, r.priority, r.delayed])).toEqual([
      [low, -5, false],
      [delayed, 0, true],
      [high, 7, false],
      [plain, 0, false],
    ]);
    expect(new Set(rows.map((r) => r.tx)).size).toBe(1); // they did share one statement
    expect((await q.readBatch(10)).map((m) => m.data)).toEqual(['high', 'plain', 'low']);
    expect(await q.stats()).toMatchObject({ delayed: 1, leased: 3 });
  });

  it('a failing statement rejects exactly its own calls, with a clear error; other statements are written', async () => {
    const q = queue();
    await q.open();
    // A row the database refuses, so the statement that carries it fails as a whole.
    await sql(`CREATE OR REPLACE FUNCTION ${s}.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN IF NEW.data = 'poison' THEN RAISE EXCEPTION 'poisoned row refused'; END IF; RETURN NEW; END $$`);
    await sql(`CREATE TRIGGER refuse_poison BEFORE INSERT ON ${s}.jobs FOR EACH ROW EXECUTE FUNCTION ${s}.refuse_poison()`);
    try {
      // One turn: five good calls and the poison share a statement.
      const doomed = [...Array.from({ length: 5 }, (_, i) => q.write(`a${i}`)), q.write('poison')];
      const outcomes = await Promise.allSettled(doomed);
      // The next turn: a statement of its own, unaffected.
      const later = await Promise.all(Array.from({ length: 5 }, (_, i) => q.write(`b${i}`)));
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        const error = (outcome as PromiseRejectedResult).reason as Error;
        expect(error).toBeInstanceOf(QueueConnectionError);
        expect(error.message).toMatch(/write \(6 concurrent writes in one statement\) failed .*poisoned row refused/);
      }
      // Nothing half-written, nothing lost silently: a rejected call left no row, a resolved one did.
      const rows = await sql<{ id: string; data: string }>(`SELECT id::text, data FROM ${s}.jobs WHERE queue = $1 ORDER BY id`, [q.name]);
      expect(rows.map((r) => r.data)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
      expect(rows.map((r) => r.id)).toEqual(later);
    } finally {
      await sql(`DROP TRIGGER refuse_poison ON ${s}.jobs`);
    }
  });

  it('a bad argument rejects only its own call, before anything is sent', async () => {
    const q = queue();
    await q.open();
    const outcomes = await Promise.allSettled([q.write('ok1'), q.write('bad', { priority: 1.5 }), q.write('ok2')]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await q.length()).toBe(2);
  });

  it('close() writes what was already called before it ends the pool; later calls are refused', async () => {
    const q = queue();
    await q.open();
    const pending = Array.from({ length: 50 }, (_, i) => q.write(`c${i}`));
    const closing = q.close();
    await expect(q.write('too late')).rejects.toThrow(/is closed/);
    const ids = await Promise.all(pending);
    await closing;
    const rows = await sql<{ count: number }>(`SELECT count(*)::int AS count FROM ${s}.jobs WHERE queue = $1 AND id = ANY($2::bigint[])`, [q.name, ids]);
    expect(rows[0]!.count).toBe(50);
  });

  it('a write in the application transaction is not coalesced: it rolls back with it', async () => {
    const q = queue();
    await q.open();
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query('BEGIN');
      const [inTx, outside] = await Promise.all([q.writeInTransaction(client, 'in tx'), q.write('outside')]);
      expect(inTx.duplicate).toBe(false);
      await client.query('ROLLBACK');
      const rows = await sql<{ id: string; data: string }>(`SELECT id::text, data FROM ${s}.jobs WHERE queue = $1`, [q.name]);
      expect(rows).toEqual([{ id: outside, data: 'outside' }]);
    } finally {
      await client.end();
    }
  });
});
