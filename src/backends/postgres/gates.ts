/**
 * Rate windows and concurrency slots of the PostgreSQL backend (BaseQueue.startGated states
 * the rules): the schema step that adds them and the SQL that decides a start.
 *
 * - A decision is one call of `start_gated()`, a plpgsql function. It takes a
 *   transaction-scoped advisory lock per gate key of the queue, so decisions on one key are
 *   serialised across every consumer, and (being VOLATILE) each of its statements reads a
 *   snapshot taken after the lock: it sees every lease ended and every job parked by whoever
 *   held the lock before it. Times are the database's clock_timestamp() once the locks are held.
 * - A leased job holding a slot has `slot_key`, and `slot_attempt`: the delivery that took it.
 *   A holder whose lease lapsed stops counting at once (its deadline passed), and goes on not
 *   counting when a claim leases it again (a new delivery: attempt moved on). It keeps its
 *   `slot_key` though, so the end of that next delivery still wakes a parked job.
 * - A parked job has `parked_key` and `run_at = 'infinity'`: no claim and no promoteDue reach
 *   it, stats() counts it as delayed, remove() and flush() delete it like any waiting row.
 * - Every statement that ends a lease (ack of a job started with a concurrency gate, fail,
 *   retry, release, reclaim, remove of a lapsed lease) hands the slot keys of the rows it ended to `free_slots()` in the
 *   same statement. That function locks the keys only then, after the rows changed, and wakes
 *   one parked job per freed slot from a fresh snapshot: a start that decided to park at the
 *   same moment either held the lock first (its parked row is seen and woken) or comes after
 *   (the freed slot is seen). Locks are always taken in one order: the job rows first, then the
 *   keys' locks in ascending order, then parked rows with SKIP LOCKED, so nothing can deadlock.
 * - Rate starts, and starts booked for deferred jobs, are rows of `rate_log`.
 */

import { checkStartGates, type StartGates } from '../base.js';

/** Migration 5: the columns, indexes, table and functions of the gates. */
export function gatesMigration(s: string): string[] {
  return [
    // Nullable without default: adding them rewrites nothing.
    `ALTER TABLE ${s}.jobs ADD COLUMN slot_key text`,
    `ALTER TABLE ${s}.jobs ADD COLUMN slot_attempt integer`,
    `ALTER TABLE ${s}.jobs ADD COLUMN parked_key text`,
    // Holders of one key: counted on every start of the key.
    `CREATE INDEX jobs_slots ON ${s}.jobs (queue, slot_key) WHERE slot_key IS NOT NULL`,
    // Parked jobs of one key in read order: a wake takes the front.
    `CREATE INDEX jobs_parked ON ${s}.jobs (queue, parked_key, priority DESC, id) WHERE parked_key IS NOT NULL`,
    `CREATE TABLE ${s}.rate_log (
       queue text NOT NULL,
       key text NOT NULL,
       at timestamptz NOT NULL,
       -- The deferred job a booked start is for; NULL for a start that happened.
       reserved_for bigint
     )`,
    // A window of one key is one range; the latest entries are its end.
    `CREATE INDEX rate_log_window ON ${s}.rate_log (queue, key, at)`,
    `CREATE INDEX rate_log_reserved ON ${s}.rate_log (reserved_for) WHERE reserved_for IS NOT NULL`,

    // Locks the gate keys of one queue for the rest of the transaction, in ascending order of
    // lock id, so callers needing several never deadlock each other. One bigint per (queue,
    // key): a space of its own, apart from the migration lock's pair of ints. A hash collision
    // only serialises two keys more than needed.
    `CREATE FUNCTION ${s}.lock_gates(p_queue text, p_keys text[]) RETURNS void LANGUAGE plpgsql AS $$
     DECLARE
       v_lock bigint;
     BEGIN
       FOR v_lock IN
         SELECT DISTINCT hashtextextended(k, hashtext(p_queue)) FROM unnest(p_keys) AS k WHERE k IS NOT NULL ORDER BY 1
       LOOP
         PERFORM pg_advisory_xact_lock(v_lock);
       END LOOP;
     END $$`,

    // Makes up to p_count parked jobs of the key ready, first in read order, their attempt
    // unchanged, and notifies like a write. Takes the key's lock (nothing more when the caller
    // holds it already). SKIP LOCKED: only remove() and flush() lock a parked row, to delete it.
    `CREATE FUNCTION ${s}.wake_parked(p_queue text, p_key text, p_count integer, p_channel text) RETURNS integer
     LANGUAGE plpgsql AS $$
     DECLARE
       v_woken integer;
     BEGIN
       PERFORM ${s}.lock_gates(p_queue, ARRAY[p_key]);
       UPDATE ${s}.jobs SET parked_key = NULL, run_at = NULL
       WHERE id IN (SELECT id FROM ${s}.jobs WHERE queue = p_queue AND parked_key = p_key
                    ORDER BY priority DESC, id LIMIT p_count FOR UPDATE SKIP LOCKED);
       GET DIAGNOSTICS v_woken = ROW_COUNT;
       IF v_woken > 0 THEN
         PERFORM pg_notify(p_channel, p_queue);
       END IF;
       RETURN v_woken;
     END $$`,

    // Leases that held slots have ended: one entry of p_keys per freed slot (NULLs ignored).
    // Every key is locked before the first wake, in order.
    `CREATE FUNCTION ${s}.free_slots(p_queue text, p_keys text[], p_channel text) RETURNS integer
     LANGUAGE plpgsql AS $$
     DECLARE
       v_key text;
       v_freed integer;
       v_woken integer := 0;
     BEGIN
       PERFORM ${s}.lock_gates(p_queue, p_keys);
       FOR v_key, v_freed IN SELECT k, count(*)::int FROM unnest(p_keys) AS k WHERE k IS NOT NULL GROUP BY k LOOP
         v_woken := v_woken + ${s}.wake_parked(p_queue, v_key, v_freed, p_channel);
       END LOOP;
       RETURN v_woken;
     END $$`,

    // BaseQueue.startGated: 'started', 'deferred' or 'lost', and for a rate deferral the booked
    // start (ms since the epoch). A gate is absent when its key is NULL.
    `CREATE FUNCTION ${s}.start_gated(
       p_queue text, p_id bigint, p_owner text, p_channel text,
       p_rate_key text, p_rate_limit integer, p_rate_per_ms double precision,
       p_slot_key text, p_slot_limit integer,
       OUT o_decision text, OUT o_run_at double precision
     ) LANGUAGE plpgsql AS $$
     DECLARE
       v_job record;
       v_now timestamptz;
       v_per interval := p_rate_per_ms * interval '1 millisecond';
       v_holders integer := 0;
       v_due integer;
       v_at timestamptz;
       v_decision text := 'started';
       -- The job came with a booking of its own (deferred before, now due).
       v_rebooking boolean := false;
       -- The concurrency key the job holds, or is parked on, after the decision.
       v_kept text;
     BEGIN
       -- This owner's live lease, locked so nothing else changes the row under the decision.
       SELECT slot_key, lease_until INTO v_job FROM ${s}.jobs
       WHERE id = p_id AND queue = p_queue AND owner = p_owner AND lease_until >= now()
       FOR UPDATE;
       IF NOT FOUND THEN
         o_decision := 'lost';
         RETURN;
       END IF;
       -- The gates' keys, and a slot the job still has from a delivery before (which this
       -- decision may free). From here on every statement sees what the locks' holders before did.
       PERFORM ${s}.lock_gates(p_queue, ARRAY[p_slot_key, p_rate_key, v_job.slot_key]);
       v_now := clock_timestamp();
       IF v_job.lease_until < v_now THEN
         o_decision := 'lost'; -- it lapsed while the locks were busy
         RETURN;
       END IF;

       IF p_rate_key IS NOT NULL THEN
         -- Starts that left the window are forgotten; the job's own booking (it was deferred
         -- before) is given back, whatever happens next.
         DELETE FROM ${s}.rate_log WHERE queue = p_queue AND key = p_rate_key AND at <= v_now - v_per;
         DELETE FROM ${s}.rate_log WHERE reserved_for = p_id AND queue = p_queue AND key = p_rate_key;
         v_rebooking := FOUND;
       END IF;

       IF p_slot_key IS NOT NULL THEN
         -- Holders: live leases that took a slot of the key in the delivery they are in. At
         -- most p_slot_limit are looked at: that many already decide.
         SELECT count(*) INTO v_holders FROM (
           SELECT 1 FROM ${s}.jobs
           WHERE queue = p_queue AND slot_key = p_slot_key AND slot_attempt = attempt
             AND owner IS NOT NULL AND lease_until >= v_now AND id <> p_id
           LIMIT p_slot_limit) AS holder;
         IF v_holders >= p_slot_limit THEN
           -- Parked: out of the queue until a holder's lease ends; this delivery not counted.
           UPDATE ${s}.jobs
           SET owner = NULL, lease_until = NULL, attempt = greatest(attempt - 1, 0),
               run_at = 'infinity', parked_key = p_slot_key, slot_key = NULL, slot_attempt = NULL
           WHERE id = p_id;
           v_decision := 'deferred';
           v_kept := p_slot_key;
         END IF;
       END IF;

       IF v_decision = 'started' AND p_rate_key IS NOT NULL THEN
         SELECT count(*) INTO v_due FROM (
           SELECT 1 FROM ${s}.rate_log WHERE queue = p_queue AND key = p_rate_key AND at <= v_now
           LIMIT p_rate_limit) AS due;
         IF v_due >= p_rate_limit THEN
           IF v_rebooking THEN
             -- reserveAt (backends/base.ts), a due booking: the earliest time the starts
             -- already made allow (the p_rate_limit-th latest due one, a window on).
             v_at := greatest(v_now,
               (SELECT at FROM ${s}.rate_log WHERE queue = p_queue AND key = p_rate_key AND at <= v_now
                ORDER BY at DESC OFFSET p_rate_limit - 1 LIMIT 1) + v_per);
           ELSE
             -- reserveAt (backends/base.ts): behind every entry, and a window after the
             -- p_rate_limit-th latest, so the window ending at the booking has room for it.
             v_at := greatest(
               v_now,
               (SELECT max(at) FROM ${s}.rate_log WHERE queue = p_queue AND key = p_rate_key),
               (SELECT at FROM ${s}.rate_log WHERE queue = p_queue AND key = p_rate_key
                ORDER BY at DESC OFFSET p_rate_limit - 1 LIMIT 1) + v_per);
           END IF;
           INSERT INTO ${s}.rate_log (queue, key, at, reserved_for) VALUES (p_queue, p_rate_key, v_at, p_id);
           -- Delayed until its booking, like a delayed write; this delivery not counted.
           UPDATE ${s}.jobs
           SET owner = NULL, lease_until = NULL, attempt = greatest(attempt - 1, 0),
               run_at = v_at, slot_key = NULL, slot_attempt = NULL
           WHERE id = p_id;
           v_decision := 'deferred';
           o_run_at := extract(epoch FROM v_at) * 1000;
         ELSE
           INSERT INTO ${s}.rate_log (queue, key, at) VALUES (p_queue, p_rate_key, v_now);
         END IF;
       END IF;

       IF v_decision = 'started' AND p_slot_key IS NOT NULL THEN
         UPDATE ${s}.jobs SET slot_key = p_slot_key, slot_attempt = attempt WHERE id = p_id;
         v_kept := p_slot_key;
         -- Spare slots while jobs are parked (the limit was raised since they parked): wake that many.
         IF p_slot_limit - v_holders - 1 > 0 THEN
           PERFORM ${s}.wake_parked(p_queue, p_slot_key, p_slot_limit - v_holders - 1, p_channel);
         END IF;
       ELSIF v_decision = 'started' AND v_job.slot_key IS NOT NULL THEN
         UPDATE ${s}.jobs SET slot_key = NULL, slot_attempt = NULL WHERE id = p_id;
       END IF;

       -- A slot it had before and has no more is freed like any lease end frees one: one parked
       -- job of that key wakes. (Parked on that same key: every slot is taken, none to wake.)
       IF v_job.slot_key IS DISTINCT FROM v_kept AND v_job.slot_key IS NOT NULL THEN
         PERFORM ${s}.wake_parked(p_queue, v_job.slot_key, 1, p_channel);
       END IF;
       o_decision := v_decision;
     END $$`,
  ];
}

/**
 * The SELECT-list item a lease-ending statement adds over rows that carry `slot_key` (the
 * value before the statement): frees their slots. `CASE` keeps a statement whose rows hold
 * no slot from calling the function at all.
 */
export function freeSlotsOf(s: string, channel: string): string {
  return `CASE WHEN bool_or(slot_key IS NOT NULL) THEN ${s}.free_slots($1, array_agg(slot_key), ${channel}) END AS woken`;
}

/** The gates' statements for one schema (escaped). `$1` is always the queue name. */
export function gateStatements(s: string, deliveriesMatch: (ids: string, deliveries: string) => string, deliveryMatches: (delivery: string) => string) {
  return {
    /**
     * $2 id, $3 owner, $4 channel, $5-$7 rate key, limit, per ms, $8-$9 concurrency key, limit (NULL keys: no such gate),
     * $10 delivery or null. The delivery is checked on the row locked first, so start_gated() (which checks owner and
     * deadline under the same lock) decides on that delivery or is not called at all (no row back: lost).
     */
    startGated: `WITH held AS (SELECT id FROM ${s}.jobs WHERE id = $2 AND queue = $1 AND ${deliveryMatches('$10')} FOR UPDATE)
                 SELECT g.o_decision AS decision, g.o_run_at AS run_at
                 FROM held CROSS JOIN LATERAL ${s}.start_gated($1, $2, $3, $4, $5, $6, $7, $8, $9) AS g`,
    /** $2 ids, $3 owner, $4 channel, $5 deliveries or null. ack for jobs this instance started with a concurrency gate: frees their slots. */
    ackHolders: `WITH done AS (
                   DELETE FROM ${s}.jobs WHERE id = ANY($2::bigint[]) AND queue = $1 AND owner = $3 AND lease_until >= now()
                   AND ${deliveriesMatch('$2', '$5')}
                   RETURNING id, slot_key)
                 SELECT coalesce(array_agg(id), '{}')::text[] AS ids, ${freeSlotsOf(s, '$4')} FROM done`,
  };
}

/** start_gated()'s gate parameters ($5-$9), the gates checked first (ConfigError naming a bad one). */
export function gateParams(gates: StartGates): unknown[] {
  const { rate, concurrency } = checkStartGates(gates);
  return [rate?.key ?? null, rate?.limit ?? null, rate?.perMs ?? null, concurrency?.key ?? null, concurrency?.limit ?? null];
}

/**
 * The leased ids of one queue instance whose rows hold a concurrency slot: started there with
 * a concurrency gate, or claimed still carrying the slot of a delivery that lapsed. Their ack
 * goes through ackHolders, which frees the slot; every other ack keeps the plain delete.
 */
export class SlotHolders extends Set<string> {
  /** The ids of `ids` in the set: [] without a look at them while the set is empty (no gates in use). */
  among(ids: readonly string[]): readonly string[] {
    return this.size === 0 ? NONE : ids.filter((id) => this.has(id));
  }

  forget(ids: readonly string[]): void {
    for (const id of ids) this.delete(id);
  }
}

const NONE: readonly string[] = Object.freeze([]);
