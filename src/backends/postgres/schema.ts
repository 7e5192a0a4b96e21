/**
 * The PostgreSQL backend's tables, their versioned migrations and the SQL the
 * queue runs (how values map to columns: values.ts). Everything lives in one
 * schema (default `taskmill`) so it can sit next to an application's own
 * tables without touching them.
 *
 * Migrations are append-only: each step is additive SQL, applied once, in
 * order, recorded in `<schema>.migrations`. They run in one transaction under
 * an advisory lock, so any number of processes starting at once apply each
 * step exactly once.
 */
import type pg from 'pg';
import { pg as loadPg } from '../drivers.js';
import { z } from 'zod';
import { ConfigError } from '../../shared/errors.js';
import { freeSlotsOf, gatesMigration, gateStatements } from './gates.js';
import { controlMigration, throughputMigration } from './control.js';
import { ackClaimStatement, claimSteps, deliveriesMatch, leaseFor } from './claim.js';

export const DEFAULT_SCHEMA = 'taskmill';
export const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
const SCHEMA_EXPECTED = 'must be 1-63 characters from a-z 0-9 _, starting with a letter or _ (not pg_)';

/** An allowed schema name (PostgresQueue's `schema` option and the URL's `?schema=`). @internal */
export const schemaNameField = z
  .string({ error: SCHEMA_EXPECTED })
  .regex(SCHEMA_PATTERN, { error: SCHEMA_EXPECTED })
  .refine((schema) => !schema.startsWith('pg_'), { error: SCHEMA_EXPECTED });

/** Each entry is one version; its statements run in order inside the migration transaction. */
const MIGRATIONS: ReadonlyArray<(s: string) => string[]> = [
  // 1: jobs, failed store, slot claims.
  (s) => [
    `CREATE TABLE ${s}.jobs (
       id bigserial PRIMARY KEY,
       queue text NOT NULL,
       data text,
       data_utf16 bytea,
       attempt integer NOT NULL DEFAULT 0,
       owner text,
       lease_until timestamptz,
       created_at timestamptz NOT NULL DEFAULT now(),
       CONSTRAINT jobs_one_payload CHECK ((data IS NULL) <> (data_utf16 IS NULL)),
       CONSTRAINT jobs_lease CHECK ((owner IS NULL) = (lease_until IS NULL))
     )`,
    // Ready rows in claim order: a claim reads the first n entries of one queue.
    // Keyed on `id + 0`, not `id`, so that no other index can deliver that order:
    // the primary key could, and the planner likes it (it assumes leased rows are
    // spread evenly), but leased rows cluster at the head of a queue, so that plan
    // walks every in-flight row (and other queues' rows) on every claim.
    `CREATE INDEX jobs_ready ON ${s}.jobs (queue, (id + 0)) WHERE owner IS NULL`,
    // Leased rows by deadline: expired leases are a short range at the front.
    `CREATE INDEX jobs_leased ON ${s}.jobs (queue, lease_until) WHERE owner IS NOT NULL`,
    `CREATE TABLE ${s}.failed (
       seq bigserial PRIMARY KEY,
       id bigint NOT NULL UNIQUE,
       queue text NOT NULL,
       data text,
       data_utf16 bytea,
       attempt integer NOT NULL,
       error text NOT NULL,
       created_at timestamptz NOT NULL,
       failed_at timestamptz NOT NULL DEFAULT now()
     )`,
    `CREATE INDEX failed_queue ON ${s}.failed (queue, seq)`,
    `CREATE TABLE ${s}.slots (
       queue text NOT NULL,
       key text NOT NULL,
       expires_at timestamptz NOT NULL,
       PRIMARY KEY (queue, key)
     )`,
    `CREATE INDEX slots_expiry ON ${s}.slots (queue, expires_at)`,
  ],
  // 2: delayed jobs (run_at, NULL = ready) and result records.
  (s) => [
    `ALTER TABLE ${s}.jobs ADD COLUMN run_at timestamptz`,
    // A delayed row is never leased. NOT VALID skips a scan that could only find run_at NULL in every existing row.
    `ALTER TABLE ${s}.jobs ADD CONSTRAINT jobs_delayed_unleased CHECK (run_at IS NULL OR owner IS NULL) NOT VALID`,
    // Delayed rows must not be in the claim index at all: a million of them ahead of
    // the first ready row would otherwise be walked (and filtered out) on every claim.
    `DROP INDEX ${s}.jobs_ready`,
    `CREATE INDEX jobs_ready ON ${s}.jobs (queue, (id + 0)) WHERE owner IS NULL AND run_at IS NULL`,
    // Due rows are the front of this range, so promoting costs O(log n + due).
    `CREATE INDEX jobs_delayed ON ${s}.jobs (queue, run_at) WHERE run_at IS NOT NULL`,
    `CREATE TABLE ${s}.results (
       queue text NOT NULL,
       job_id text NOT NULL,
       record text,
       record_utf16 bytea,
       expires_at timestamptz NOT NULL,
       PRIMARY KEY (queue, job_id),
       CONSTRAINT results_one_record CHECK ((record IS NULL) <> (record_utf16 IS NULL))
     )`,
    `CREATE INDEX results_expiry ON ${s}.results (queue, expires_at)`,
  ],
  // 3: priorities. The claim index becomes (queue, priority DESC, id + 0): still the
  // front of one range per claim. Built before the old one goes, so a claim always has one.
  (s) => [
    `ALTER TABLE ${s}.jobs ADD COLUMN priority smallint NOT NULL DEFAULT 0`,
    `ALTER TABLE ${s}.failed ADD COLUMN priority smallint NOT NULL DEFAULT 0`,
    `CREATE INDEX jobs_ready_by_priority ON ${s}.jobs (queue, priority DESC, (id + 0)) WHERE owner IS NULL AND run_at IS NULL`,
    `DROP INDEX ${s}.jobs_ready`,
    `ALTER INDEX ${s}.jobs_ready_by_priority RENAME TO jobs_ready`,
  ],
  // 4: unique jobs. The live row that carries a key holds it: deleting the row (ack, remove)
  // or moving it to the failed store frees the key, with no work on those paths.
  (s) => [
    `ALTER TABLE ${s}.jobs ADD COLUMN unique_key text`,
    `ALTER TABLE ${s}.jobs ADD COLUMN unique_until timestamptz`,
    `CREATE UNIQUE INDEX jobs_unique ON ${s}.jobs (queue, unique_key) WHERE unique_key IS NOT NULL`,
  ],
  // 5: rate limits and concurrency keys (gates.ts): slot and parked columns, the rate log, start_gated().
  gatesMigration,
  // 6: job control and queue events (control.ts): cancel marks, listeners, the events log.
  controlMigration,
  // 7: the dashboard's throughput history, reported by the consumers' heartbeats.
  throughputMigration,
  // 8: fencing per delivery: the token of the read that holds the lease (BaseQueue.nextDelivery).
  // A constant default: adding it rewrites no row.
  (s) => [`ALTER TABLE ${s}.jobs ADD COLUMN delivery bigint NOT NULL DEFAULT 0`],
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The deadline of each statement of a schema migration (the queue's queryTimeoutMs is for its calls). */
export const MIGRATION_QUERY_TIMEOUT_MS = 300_000;

/**
 * Brings `schema` up to `target` (default SCHEMA_VERSION; lower only to build an
 * old schema in an upgrade test). Cheap (one query) when it already is.
 * `checkTimeoutMs` is the deadline of that check (the queue's queryTimeoutMs).
 * @internal
 */
export async function migrate(pool: pg.Pool, schema: string, target = SCHEMA_VERSION, checkTimeoutMs = MIGRATION_QUERY_TIMEOUT_MS): Promise<void> {
  if (!Number.isInteger(target) || target < 1 || target > SCHEMA_VERSION) {
    throw new ConfigError(`invalid schema version ${String(target)}: must be an integer from 1 to ${SCHEMA_VERSION}`);
  }
  const s = loadPg().escapeIdentifier(schema);
  const check = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
    pool.query<R>({ text, values, query_timeout: checkTimeoutMs } as pg.QueryConfig);
  const current = await check<{ version: number | null }>(`SELECT CASE WHEN to_regclass($1) IS NULL THEN NULL ELSE 0 END AS version`, [`${s}.migrations`]);
  if (current.rows[0]?.version !== null) {
    const applied = await check<{ version: number }>(`SELECT coalesce(max(version), 0) AS version FROM ${s}.migrations`);
    if ((applied.rows[0]?.version ?? 0) >= target) return;
  }

  const client = await pool.connect();
  // A checked-out client has no error listener of the pool's; without one a dropped connection would crash the process.
  const onError = () => {};
  client.on('error', onError);
  let broken: Error | undefined;
  // The queue's queryTimeoutMs is for its calls: a migration may wait for another one's lock, or build an index.
  const sql = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
    client.query<R>({ text, values, query_timeout: MIGRATION_QUERY_TIMEOUT_MS } as pg.QueryConfig);
  try {
    await sql('BEGIN');
    await sql(`SELECT pg_advisory_xact_lock(hashtext('taskmill'), hashtext($1))`, [schema]);
    // CREATE SCHEMA IF NOT EXISTS still needs CREATE on the database; a schema made by a DBA must just work.
    const exists = await sql(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]);
    if (exists.rowCount === 0) await sql(`CREATE SCHEMA ${s}`);
    await sql(`CREATE TABLE IF NOT EXISTS ${s}.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const applied = await sql<{ version: number }>(`SELECT coalesce(max(version), 0) AS version FROM ${s}.migrations`);
    for (let version = (applied.rows[0]?.version ?? 0) + 1; version <= target; version++) {
      for (const statement of MIGRATIONS[version - 1]!(s)) await sql(statement);
      await sql(`INSERT INTO ${s}.migrations (version) VALUES ($1)`, [version]);
    }
    await sql('COMMIT');
  } catch (error) {
    broken = error instanceof Error ? error : new Error(String(error));
    await client.query({ text: 'ROLLBACK', query_timeout: checkTimeoutMs } as pg.QueryConfig).catch(() => {});
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/** The queue's SQL for one schema. `$1` is always the queue name. */
export function statements(schema: string) {
  const s = loadPg().escapeIdentifier(schema);
  /** run_at for a requested time in ms since the epoch: the DATABASE clock decides whether it is still ahead. */
  const delayUntil = (param: string) => {
    const at = `to_timestamp(${param}::double precision / 1000)`;
    return `CASE WHEN ${at} > now() THEN ${at} END`;
  };
  /** The same for one id: `delivery` NULL or its token. */
  const deliveryMatches = (delivery: string) => `(${delivery}::bigint IS NULL OR delivery = ${delivery}::bigint)`;
  return {
    /**
     * $2 text, $3 bytea, $4 channel, $5 runAt ms or null, $6 priority. The NOTIFY is part of the
     * write's transaction, so it is sent on commit; a delayed row sends none (promoting it does).
     */
    write: `WITH job AS (
              INSERT INTO ${s}.jobs (queue, data, data_utf16, run_at, priority) VALUES ($1, $2, $3, ${delayUntil('$5')}, $6)
              RETURNING id, run_at)
            SELECT id, CASE WHEN run_at IS NULL THEN pg_notify($4, $1) END FROM job`,
    /**
     * $2 key, $3 text, $4 bytea, $5 runAt ms or null, $6 priority, $7 key ttl ms or null, $8 channel.
     * No row back: the key is held (writeOnceHolder says by whom).
     */
    writeOnce: `WITH job AS (
                  INSERT INTO ${s}.jobs (queue, data, data_utf16, run_at, priority, unique_key, unique_until)
                  VALUES ($1, $3, $4, ${delayUntil('$5')}, $6, $2, CASE WHEN $7::double precision IS NOT NULL THEN ${leaseFor('$7')} END)
                  ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
                  RETURNING id, run_at)
                SELECT id, CASE WHEN run_at IS NULL THEN pg_notify($8, $1) END FROM job`,
    /** $2 key. The row holding it, and whether its hold has lapsed. */
    writeOnceHolder: `SELECT id, data, data_utf16, unique_until < now() AS lapsed FROM ${s}.jobs WHERE queue = $1 AND unique_key = $2`,
    /** $2 id. A lapsed hold lets go of its key (only if it still has lapsed). */
    dropLapsedKey: `UPDATE ${s}.jobs SET unique_key = NULL, unique_until = NULL WHERE id = $2 AND queue = $1 AND unique_until < now()`,
    /** $2 text[], $3 bytea[] (one of each pair null), $4 channel, $5 runAt ms or null, $6 priority. Ids come back in input order. */
    writeBatch: `WITH job AS (
                   INSERT INTO ${s}.jobs (queue, data, data_utf16, run_at, priority)
                   SELECT $1, d.data, d.data_utf16, ${delayUntil('$5')}, $6
                   FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS d(data, data_utf16, n)
                   ORDER BY d.n
                   RETURNING id, run_at)
                 SELECT array_agg(id ORDER BY id)::text[] AS ids, CASE WHEN bool_or(run_at IS NULL) THEN pg_notify($4, $1) END FROM job`,
    /**
     * $2 text[], $3 bytea[] (one of each pair null), $4 runAt ms[] (null: ready now), $5 priority[],
     * $6 channel: coalesced single writes (write-batcher.ts), each row with its own delay and
     * priority. Ids come back in input order; one NOTIFY if any row is ready.
     */
    writeRows: `WITH job AS (
                  INSERT INTO ${s}.jobs (queue, data, data_utf16, run_at, priority)
                  SELECT $1, d.data, d.data_utf16, ${delayUntil('d.run_at')}, d.priority
                  FROM unnest($2::text[], $3::bytea[], $4::double precision[], $5::smallint[]) WITH ORDINALITY
                       AS d(data, data_utf16, run_at, priority, n)
                  ORDER BY d.n
                  RETURNING id, run_at)
                SELECT array_agg(id ORDER BY id)::text[] AS ids, CASE WHEN bool_or(run_at IS NULL) THEN pg_notify($6, $1) END FROM job`,
    /**
     * $2 max, $3 owner, $4 lease ms, $5 delivery token. Two cheap branches, each the start of an
     * ordered range of one partial index: the first ready rows in read order
     * (jobs_ready: highest priority, then oldest; it holds no leased and no
     * delayed row), and the leases that expired first (jobs_leased); the $2
     * first of both in read order are leased. Cost
     * O(log n + $2) whatever the table size, the number of leases in flight,
     * of delayed rows or of other queues. SKIP LOCKED lets concurrent
     * claimers pass each other instead of queueing on the same rows. When
     * expired leases exist, up to $2 rows more than are taken stay locked
     * until the statement ends; a concurrent claim may skip them and get fewer
     * (never wrong ones), and the next read finds them.
     * Deadlines are now() of the database: consumers' clocks never matter.
     * holds_slot: an expired lease taken over still carries the concurrency slot of the
     * delivery that lapsed (gates.ts); the ack of this one must free it.
     * The SQL is in claim.ts, which also folds an ack into it (ackClaim).
     */
    claim: `WITH ${claimSteps(s)}`,
    /** ack and claim in one statement (claim.ts). */
    ackClaim: ackClaimStatement(s),
    /**
     * $2 ids, $3 owner, $4 deliveries or null. One row: the count acked, and the acked ids only
     * when some were refused (the common case sends back no id at all).
     */
    ack: `WITH acked AS (
            DELETE FROM ${s}.jobs WHERE id = ANY($2::bigint[]) AND queue = $1 AND owner = $3 AND lease_until >= now()
            AND ${deliveriesMatch('$2', '$4')} RETURNING id)
          SELECT count(*)::int AS count, CASE WHEN count(*) < cardinality($2::bigint[]) THEN coalesce(array_agg(id), '{}')::text[] END AS ids FROM acked`,
    /** $2 ids, $3 owner, $4 channel, $5 deliveries or null. `held` reads each row's slot before the update clears it. */
    release: `WITH held AS (
                SELECT id, slot_key FROM ${s}.jobs
                WHERE id = ANY($2::bigint[]) AND queue = $1 AND owner = $3 AND lease_until >= now() AND ${deliveriesMatch('$2', '$5')}
                FOR UPDATE),
              released AS (
                UPDATE ${s}.jobs AS j
                SET owner = NULL, lease_until = NULL, attempt = greatest(j.attempt - 1, 0), slot_key = NULL, slot_attempt = NULL
                FROM held WHERE j.id = held.id RETURNING held.slot_key)
              SELECT count(*)::int AS count, CASE WHEN count(*) > 0 THEN pg_notify($4, $1) END, ${freeSlotsOf(s, '$4')} FROM released`,
    /** $2 ids, $3 owner, $4 lease ms, $5 deliveries or null. */
    extend: `UPDATE ${s}.jobs SET lease_until = ${leaseFor('$4')}
             WHERE id = ANY($2::bigint[]) AND queue = $1 AND owner = $3 AND lease_until >= now() AND ${deliveriesMatch('$2', '$5')}
             RETURNING id`,
    /** $2 id, $3 owner, $4 error, $5 channel, $6 delivery or null. */
    fail: `WITH moved AS (
             DELETE FROM ${s}.jobs WHERE id = $2 AND queue = $1 AND owner = $3 AND lease_until >= now() AND ${deliveryMatches('$6')}
             RETURNING id, queue, data, data_utf16, attempt, created_at, priority, slot_key),
           stored AS (
             INSERT INTO ${s}.failed (id, queue, data, data_utf16, attempt, error, created_at, priority)
             SELECT id, queue, data, data_utf16, attempt, $4, created_at, priority FROM moved)
           SELECT count(*)::int AS count, ${freeSlotsOf(s, '$5')} FROM moved`,
    /**
     * $2 id, $3 owner, $4 text, $5 bytea, $6 runAt ms, $7 channel, $8 delivery or null. Fenced like ack.
     * The row keeps its id, so once ready it is read in its original place.
     */
    retry: `WITH held AS (
              SELECT id, slot_key FROM ${s}.jobs WHERE id = $2 AND queue = $1 AND owner = $3 AND lease_until >= now() AND ${deliveryMatches('$8')}
              FOR UPDATE),
            retried AS (
              UPDATE ${s}.jobs AS j SET data = $4, data_utf16 = $5, attempt = 0, owner = NULL, lease_until = NULL,
                                        run_at = ${delayUntil('$6')}, slot_key = NULL, slot_attempt = NULL
              FROM held WHERE j.id = held.id RETURNING j.run_at, held.slot_key)
            SELECT count(*)::int AS count, CASE WHEN bool_or(run_at IS NULL) THEN pg_notify($7, $1) END, ${freeSlotsOf(s, '$7')} FROM retried`,
    /**
     * $2 channel, $3 max. The first $3 due rows of jobs_delayed. SKIP LOCKED: rows
     * another caller is promoting are its to count, so concurrent callers never
     * wait on each other and each row is promoted (and counted) once.
     */
    promoteDue: `WITH due AS (
                   SELECT id FROM ${s}.jobs WHERE queue = $1 AND run_at IS NOT NULL AND run_at <= now()
                   ORDER BY run_at LIMIT $3 FOR UPDATE SKIP LOCKED),
                 promoted AS (
                   UPDATE ${s}.jobs AS j SET run_at = NULL FROM due WHERE j.id = due.id RETURNING j.id)
                 SELECT count(*)::int AS count, CASE WHEN count(*) > 0 THEN pg_notify($2, $1) END FROM promoted`,
    /**
     * $2 id, $3 channel. Ready, delayed, parked or lease expired: nobody is running it. A claim
     * that holds the row right now makes this wait for it and then see the new lease. A lapsed
     * holder removed frees its slot.
     */
    remove: `WITH removed AS (
               DELETE FROM ${s}.jobs WHERE id = $2 AND queue = $1 AND (owner IS NULL OR lease_until < now()) RETURNING slot_key)
             SELECT count(*)::int AS count, ${freeSlotsOf(s, '$3')} FROM removed`,
    /**
     * $2 channel. SKIP LOCKED: a row a claimer is taking right now is being reclaimed anyway.
     * A lapsed holder's slot is freed here, waking a parked job as its lease end would have.
     */
    reclaim: `WITH lapsed AS (
                SELECT id, slot_key FROM ${s}.jobs WHERE queue = $1 AND owner IS NOT NULL AND lease_until < now()
                FOR UPDATE SKIP LOCKED),
              reclaimed AS (
                UPDATE ${s}.jobs AS j SET owner = NULL, lease_until = NULL, slot_key = NULL, slot_attempt = NULL
                FROM lapsed WHERE j.id = lapsed.id RETURNING lapsed.slot_key)
              SELECT count(*)::int AS count, CASE WHEN count(*) > 0 THEN pg_notify($2, $1) END, ${freeSlotsOf(s, '$2')} FROM reclaimed`,
    /** $2 limit. */
    failed: `SELECT id, data, data_utf16, attempt, error, failed_at FROM ${s}.failed WHERE queue = $1 ORDER BY seq LIMIT $2`,
    /** $2 ids or null for all, $3 channel. Re-queued messages keep their id, so they are read in their original place. */
    requeueFailed: `WITH moved AS (
                      DELETE FROM ${s}.failed WHERE queue = $1 AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
                      RETURNING id, queue, data, data_utf16, created_at, priority),
                    requeued AS (
                      INSERT INTO ${s}.jobs (id, queue, data, data_utf16, attempt, created_at, priority)
                      SELECT id, queue, data, data_utf16, 0, created_at, priority FROM moved RETURNING id)
                    SELECT count(*)::int AS count, CASE WHEN count(*) > 0 THEN pg_notify($3, $1) END FROM requeued`,
    /** $2 ids or null for all. */
    purgeFailed: `DELETE FROM ${s}.failed WHERE queue = $1 AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))`,
    length: `SELECT count(*)::int AS count FROM ${s}.jobs WHERE queue = $1 AND owner IS NULL AND run_at IS NULL`,
    /** Parked jobs (run_at 'infinity', gates.ts) count as delayed. */
    stats: `SELECT count(*) FILTER (WHERE owner IS NULL AND run_at IS NULL)::int AS ready,
                   count(*) FILTER (WHERE owner IS NOT NULL)::int AS leased,
                   (SELECT count(*)::int FROM ${s}.failed WHERE queue = $1) AS failed,
                   count(*) FILTER (WHERE run_at IS NOT NULL)::int AS delayed
            FROM ${s}.jobs WHERE queue = $1`,
    flush: `WITH j AS (DELETE FROM ${s}.jobs WHERE queue = $1),
                 f AS (DELETE FROM ${s}.failed WHERE queue = $1),
                 k AS (DELETE FROM ${s}.slots WHERE queue = $1),
                 r AS (DELETE FROM ${s}.results WHERE queue = $1),
                 g AS (DELETE FROM ${s}.rate_log WHERE queue = $1),
                 c AS (DELETE FROM ${s}.cancels WHERE queue = $1)
            SELECT 1`,
    /**
     * $2 key, $3 text, $4 bytea, $5 ttl ms, $6 channel. One statement: take
     * the slot (new, or expired and taken over under its row lock), and only
     * if this call took it insert the job. Other expired slots of the queue
     * are purged on the side (SKIP LOCKED, so purgers never wait on each other).
     */
    writeUnique: `WITH purged AS (
                    DELETE FROM ${s}.slots WHERE (queue, key) IN (
                      SELECT queue, key FROM ${s}.slots WHERE queue = $1 AND key <> $2 AND expires_at < now()
                      LIMIT 100 FOR UPDATE SKIP LOCKED)),
                  claim AS (
                    INSERT INTO ${s}.slots (queue, key, expires_at) VALUES ($1, $2, ${leaseFor('$5')})
                    ON CONFLICT (queue, key) DO UPDATE SET expires_at = excluded.expires_at
                    WHERE ${s}.slots.expires_at < now()
                    RETURNING 1),
                  job AS (
                    INSERT INTO ${s}.jobs (queue, data, data_utf16) SELECT $1, $3, $4 FROM claim RETURNING id)
                  SELECT id, pg_notify($6, $1) FROM job`,
    /**
     * $2 job ids (distinct, sorted: concurrent upserts lock rows in the same
     * order, so they cannot deadlock), $3 text[], $4 bytea[], $5 ttl ms[].
     * Expired records of the queue are purged on the side, up to twice as many
     * as are written (so the table cannot outgrow what is alive), through
     * results_expiry, SKIP LOCKED, never a key being written in this statement.
     * $6 message ids and $7 their deliveries, or both null; $8 owner: given them, a record is
     * written only while its message's lease is held by that delivery.
     */
    setResults: `WITH purged AS (
                   DELETE FROM ${s}.results WHERE (queue, job_id) IN (
                     SELECT queue, job_id FROM ${s}.results
                     WHERE queue = $1 AND expires_at <= now() AND job_id <> ALL($2::text[])
                     LIMIT greatest(100, 2 * cardinality($2::text[])) FOR UPDATE SKIP LOCKED))
                 INSERT INTO ${s}.results (queue, job_id, record, record_utf16, expires_at)
                 SELECT $1, r.job_id, r.record, r.record_utf16, ${leaseFor('r.ttl')}
                 FROM unnest($2::text[], $3::text[], $4::bytea[], $5::double precision[], $6::bigint[], $7::bigint[]) WITH ORDINALITY
                      AS r(job_id, record, record_utf16, ttl, message_id, delivery, n)
                 WHERE $7::bigint[] IS NULL OR EXISTS (
                   SELECT 1 FROM ${s}.jobs AS j WHERE j.id = r.message_id AND j.queue = $1 AND j.owner = $8::text
                   AND j.delivery = r.delivery AND j.lease_until >= now())
                 ORDER BY r.n
                 ON CONFLICT (queue, job_id) DO UPDATE
                 SET record = excluded.record, record_utf16 = excluded.record_utf16, expires_at = excluded.expires_at`,
    /** $2 job id. */
    getResult: `SELECT record, record_utf16 FROM ${s}.results WHERE queue = $1 AND job_id = $2 AND expires_at > now()`,
    ...gateStatements(s, deliveriesMatch, deliveryMatches),
  };
}

export type Statements = ReturnType<typeof statements>;
