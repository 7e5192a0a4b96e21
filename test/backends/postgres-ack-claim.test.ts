/**
 * Acks that ride the next claim (src/backends/postgres/claim.ts). What must hold: an ack issued
 * while a claim is in flight goes in the next claim's statement (one transaction), or alone soon
 * after when no claim comes; each resolves only once its statement committed, with its own
 * refused ids (fencing by delivery holds); a statement that fails rejects exactly the acks it
 * carried and its read, and acks and claims nothing, so no message is lost.
 */
import { describe, expect, it, vi } from 'vitest';
import { DatabaseQueue } from '../../src/backends/postgres/queue.js';
import { ALL, AckClaim, PARK_MAX_MS, type Acked, type CarriedAcks } from '../../src/backends/postgres/claim.js';
import { QueueConnectionError } from '../../src/shared/errors.js';
import { hasPostgres } from '../helpers/services.js';
import { postgresFixture } from '../helpers/postgres-fixture.js';

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('AckClaim (the rules, against fakes)', () => {
  function harness() {
    const alone: CarriedAcks[] = [];
    const coalescer = new AckClaim((ids, deliveries) => {
      alone.push({ ids: [...ids], deliveries: [...deliveries] });
      return Promise.resolve(ALL);
    });
    /** A claim whose statement the test ends: ok(acked) or fail(error). */
    const claim = () => {
      let carried: CarriedAcks | null = null;
      let end!: { ok: (acked: Acked) => void; fail: (error: Error) => void };
      const done = coalescer.claim<string>(
        (acks) =>
          new Promise<[string, Acked]>((resolve, reject) => {
            carried = acks;
            end = { ok: (acked) => resolve(['rows', acked]), fail: reject };
          }),
      );
      return { done, carried: () => carried, end: () => end };
    };
    return { coalescer, alone, claim };
  }

  it('with no claim in flight an ack goes at once, alone', async () => {
    const { coalescer, alone } = harness();
    await expect(coalescer.ack(['1', '2'], [5, 5])).resolves.toBe(ALL);
    expect(alone).toEqual([{ ids: ['1', '2'], deliveries: [5, 5] }]);
  });

  it('acks issued during a claim ride the next claim, merged, each resolved with its own acked ids', async () => {
    const { coalescer, alone, claim } = harness();
    const first = claim();
    expect(first.carried()).toBeNull();
    const a = coalescer.ack(['1', '2'], [5, 5]);
    const b = coalescer.ack(['3'], [6]);
    const second = claim();
    expect(second.carried()).toEqual({ ids: ['1', '2', '3'], deliveries: [5, 5, 6] });
    second.end().ok(['1', '3']); // '2' refused
    await expect(a).resolves.toEqual(['1']);
    await expect(b).resolves.toEqual(['3']);
    first.end().ok(ALL);
    await expect(Promise.all([first.done, second.done])).resolves.toEqual(['rows', 'rows']);
    await turns(3);
    expect(alone).toEqual([]); // nothing went twice
  });

  it('a failing claim rejects exactly the acks it carried and its read; acks parked after it are unaffected', async () => {
    const { coalescer, alone, claim } = harness();
    const first = claim();
    const carried = coalescer.ack(['1'], [5]);
    const second = claim(); // carries '1'
    const later = coalescer.ack(['2'], [5]); // parked after: not in second's statement
    const error = new Error('statement failed');
    second.end().fail(error);
    await expect(carried).rejects.toBe(error);
    await expect(second.done).rejects.toBe(error);
    first.end().ok(ALL);
    await expect(first.done).resolves.toBe('rows');
    // No claim came to take it: it goes alone once the claims in flight have returned.
    await expect(later).resolves.toBe(ALL);
    expect(alone).toEqual([{ ids: ['2'], deliveries: [5] }]);
  });

  it('parked acks go alone two turns after the claim returns when no claim takes them, and never wait past PARK_MAX_MS', async () => {
    const { coalescer, alone, claim } = harness();
    const first = claim();
    const a = coalescer.ack(['1'], [5]);
    first.end().ok(ALL);
    await first.done;
    expect(alone).toEqual([]);
    await turns(2);
    await expect(a).resolves.toBe(ALL);
    expect(alone).toEqual([{ ids: ['1'], deliveries: [5] }]);

    vi.useFakeTimers();
    try {
      const stuck = claim(); // never returns in this test
      const b = coalescer.ack(['2'], [7]);
      vi.advanceTimersByTime(PARK_MAX_MS - 1);
      expect(alone).toHaveLength(1);
      vi.advanceTimersByTime(1);
      expect(alone).toEqual([
        { ids: ['1'], deliveries: [5] },
        { ids: ['2'], deliveries: [7] },
      ]);
      await expect(b).resolves.toBe(ALL);
      stuck.end().ok(ALL);
    } finally {
      vi.useRealTimers();
    }
  });

  it('drain sends what is parked and waits for it', async () => {
    const { coalescer, alone, claim } = harness();
    const first = claim();
    const a = coalescer.ack(['1'], [5]);
    await coalescer.drain();
    expect(alone).toEqual([{ ids: ['1'], deliveries: [5] }]);
    await expect(a).resolves.toBe(ALL);
    first.end().ok(ALL);
  });
});

describe.skipIf(!hasPostgres)('DatabaseQueue: acks riding the next claim', () => {
  const { s, queue, sql } = postgresFixture();

  /** Two leased messages and a claim in flight: an ack issued now is parked for the next claim. */
  async function leasedPair(q: DatabaseQueue) {
    await q.writeBatch(['m1', 'm2', 'r1', 'r2', 'r3']);
    const leased = await q.readBatch(2);
    expect(leased.map((m) => m.data)).toEqual(['m1', 'm2']);
    return leased;
  }

  it('an ack issued while a claim is in flight commits with the next claim, fenced by delivery', async () => {
    for (const preparedStatements of [true, false]) {
      const q = queue({ preparedStatements });
      await q.open();
      const [m1, m2] = await leasedPair(q);
      // Which transaction deletes each row: logged by a trigger, compared with the claim's.
      await sql(`CREATE TABLE IF NOT EXISTS ${s}.deleted_by (id bigint, tx xid8)`);
      await sql(`CREATE OR REPLACE FUNCTION ${s}.log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN INSERT INTO ${s}.deleted_by VALUES (OLD.id, pg_current_xact_id()); RETURN OLD; END $$`);
      await sql(`CREATE OR REPLACE TRIGGER log_delete BEFORE DELETE ON ${s}.jobs FOR EACH ROW EXECUTE FUNCTION ${s}.log_delete()`);
      try {
        const inFlight = q.readBatch(1);
        // m2's token is stale: refused, m1 acked.
        const acking = q.ackBatch([m1!.id, m2!.id], [m1!.delivery, m2!.delivery - 1]);
        const carrying = q.readBatch(1);
        expect(await acking).toEqual([m2!.id]);
        const [first, next] = await Promise.all([inFlight, carrying]);
        expect([...first, ...next].map((m) => m.data).sort()).toEqual(['r1', 'r2']);
        const [deleted] = await sql<{ id: string; tx: string }>(`SELECT id::text, tx::text FROM ${s}.deleted_by`);
        expect(deleted?.id).toBe(m1!.id);
        const [claimedWith] = await sql<{ tx: string }>(`SELECT xmin::text AS tx FROM ${s}.jobs WHERE id = $1`, [next[0]!.id]);
        // xmin is the 32-bit transaction id, pg_current_xact_id() the 64-bit one: compare the low part.
        expect(String(BigInt(deleted!.tx) % 2n ** 32n)).toBe(claimedWith!.tx);
        expect(await q.stats()).toMatchObject({ ready: 1, leased: 3 }); // m2 still leased, r1, r2
        expect(await q.ackBatch([m2!.id], [m2!.delivery])).toEqual([]);
      } finally {
        await sql(`DROP TRIGGER log_delete ON ${s}.jobs`);
        await sql(`DELETE FROM ${s}.deleted_by`);
      }
    }
  });

  it('a failing ack-and-claim statement rejects exactly its read and its acks, and acks and claims nothing', async () => {
    const q = queue();
    await q.open();
    const [m1, m2] = await leasedPair(q);
    await sql(`CREATE OR REPLACE FUNCTION ${s}.refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN IF OLD.data = 'm1' THEN RAISE EXCEPTION 'delete refused'; END IF; RETURN OLD; END $$`);
    await sql(`CREATE OR REPLACE TRIGGER refuse_delete BEFORE DELETE ON ${s}.jobs FOR EACH ROW EXECUTE FUNCTION ${s}.refuse_delete()`);
    let outcomes: PromiseSettledResult<unknown>[];
    try {
      const inFlight = q.readBatch(1);
      const acking = q.ackBatch([m1!.id, m2!.id], [m1!.delivery, m2!.delivery]);
      const carrying = q.readBatch(1);
      outcomes = await Promise.allSettled([inFlight, acking, carrying]);
    } finally {
      await sql(`DROP TRIGGER refuse_delete ON ${s}.jobs`);
    }
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    for (const outcome of outcomes.slice(1)) {
      const error = (outcome as PromiseRejectedResult).reason as Error;
      expect(error).toBeInstanceOf(QueueConnectionError);
      expect(error.message).toMatch(/read \(with 2 acks\) failed .*delete refused/);
    }
    // Nothing acked (m2 neither: one statement), nothing claimed by the failed read.
    expect(await q.stats()).toMatchObject({ ready: 2, leased: 3 });
    // The acks can be retried: both still hold their leases.
    expect(await q.ackBatch([m1!.id, m2!.id], [m1!.delivery, m2!.delivery])).toEqual([]);
    expect((await q.readBatch(10)).map((m) => m.data)).toEqual(['r2', 'r3']);
  });
});
