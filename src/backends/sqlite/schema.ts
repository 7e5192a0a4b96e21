/**
 * The SQLite schema of SqliteQueue — tables, indexes, versioned upgrades —
 * and every statement it prepares, kept apart from the queue's logic so the
 * SQL reads as one piece (the EXPLAIN tests in test/backends/sqlite.test.ts
 * check the plans of these exact statements).
 */
import type Database from 'better-sqlite3';
import { ConfigError } from '../../shared/errors.js';

export const SCHEMA_VERSION = 8;

// `data`, `record` and `job_id` have no declared type on purpose: they hold
// TEXT, or a BLOB of UTF-16LE code units when the string is not well-formed
// UTF-16 (lone surrogates would otherwise be replaced by U+FFFD on the way to UTF-8).
const SCHEMA_TABLE = 'CREATE TABLE IF NOT EXISTS taskmill_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);';

const READY_INDEX_V2 = 'CREATE INDEX taskmill_messages_ready ON taskmill_messages (queue, id) WHERE lease_until IS NULL AND run_at IS NULL;';
// Claim order: highest priority first, then oldest.
const READY_INDEX = 'CREATE INDEX taskmill_messages_ready ON taskmill_messages (queue, priority DESC, id) WHERE lease_until IS NULL AND run_at IS NULL;';

// A unique key is held by the live row that carries it: acking, failing or removing the row frees it.
const UNIQUE_INDEX = 'CREATE UNIQUE INDEX taskmill_messages_unique ON taskmill_messages (queue, unique_key) WHERE unique_key IS NOT NULL;';

// Flow control (startGated, sqlite/gates.ts). A message holding a concurrency slot carries its key
// in slot_key while leased; a parked one carries the key it waits for in parked_key, in wake order.
const SLOT_INDEX = 'CREATE INDEX taskmill_messages_slots ON taskmill_messages (queue, slot_key) WHERE slot_key IS NOT NULL;';
const PARKED_INDEX = 'CREATE INDEX taskmill_messages_parked ON taskmill_messages (queue, parked_key, priority DESC, id) WHERE parked_key IS NOT NULL;';

/**
 * The rate windows: one row per recorded start (reserved_for NULL) or start booked for a deferred
 * message (reserved_for its id). Rows older than the window are dropped by the next start of the key.
 */
const RATES_SCHEMA = `
CREATE TABLE taskmill_rates (
  queue TEXT NOT NULL,
  key TEXT NOT NULL,
  at INTEGER NOT NULL,
  reserved_for INTEGER
);
CREATE INDEX taskmill_rates_window ON taskmill_rates (queue, key, at);
CREATE INDEX taskmill_rates_reserved ON taskmill_rates (reserved_for) WHERE reserved_for IS NOT NULL;
`;

/**
 * Job control and queue events (sqlite/control.ts): cancel marks by message id, the registered
 * events listeners, each queue's events log with its own contiguous sequence, and the live
 * consumers' heartbeats.
 */
const CONTROL_SCHEMA = `
CREATE TABLE taskmill_cancels (
  id INTEGER PRIMARY KEY,
  queue TEXT NOT NULL,
  job_id NOT NULL
);
CREATE TABLE taskmill_listeners (
  queue TEXT NOT NULL,
  id TEXT NOT NULL,
  until INTEGER NOT NULL,
  PRIMARY KEY (queue, id)
);
CREATE TABLE taskmill_event_seqs (
  queue TEXT PRIMARY KEY,
  last INTEGER NOT NULL
);
CREATE TABLE taskmill_events (
  queue TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data NOT NULL,
  PRIMARY KEY (queue, seq)
) WITHOUT ROWID;
CREATE TABLE taskmill_consumers (
  queue TEXT NOT NULL,
  id TEXT NOT NULL,
  state TEXT NOT NULL,
  seen_at INTEGER NOT NULL,
  PRIMARY KEY (queue, id)
);
`;

/** The throughput the consumers' heartbeats report: jobs settled per queue and minute (sqlite/control.ts). */
const THROUGHPUT_SCHEMA = `
CREATE TABLE taskmill_throughput (
  queue TEXT NOT NULL,
  minute INTEGER NOT NULL,
  completed INTEGER NOT NULL,
  failed INTEGER NOT NULL,
  PRIMARY KEY (queue, minute)
) WITHOUT ROWID;
`;

/** What version 2 added to version 1; a fresh file gets it right after the version-1 tables. */
const LIFECYCLE_SCHEMA = `
CREATE INDEX IF NOT EXISTS taskmill_messages_delayed ON taskmill_messages (queue, run_at) WHERE run_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS taskmill_results (
  queue TEXT NOT NULL,
  job_id NOT NULL,
  record NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (queue, job_id)
);
CREATE INDEX IF NOT EXISTS taskmill_results_expiry ON taskmill_results (expires_at);
`;

// The current schema of a fresh file; older files are brought here by UPGRADES.
const SCHEMA = `
CREATE TABLE taskmill_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  data NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  owner TEXT,
  lease_until INTEGER,
  enqueued_at INTEGER NOT NULL,
  run_at INTEGER,
  priority INTEGER NOT NULL DEFAULT 0,
  unique_key TEXT,
  unique_until INTEGER,
  slot_key TEXT,
  parked_key TEXT,
  delivery INTEGER NOT NULL DEFAULT 0
);
${READY_INDEX}
${UNIQUE_INDEX}
${SLOT_INDEX}
${PARKED_INDEX}
CREATE INDEX IF NOT EXISTS taskmill_messages_leased ON taskmill_messages (queue, lease_until) WHERE lease_until IS NOT NULL;
CREATE TABLE IF NOT EXISTS taskmill_failed (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id INTEGER NOT NULL UNIQUE,
  queue TEXT NOT NULL,
  data NOT NULL,
  attempt INTEGER NOT NULL,
  error TEXT NOT NULL,
  failed_at INTEGER NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS taskmill_failed_queue ON taskmill_failed (queue, seq);
CREATE TABLE IF NOT EXISTS taskmill_slots (
  queue TEXT NOT NULL,
  key TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (queue, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS taskmill_slots_expiry ON taskmill_slots (queue, expires_at);
${LIFECYCLE_SCHEMA}
${RATES_SCHEMA}
${CONTROL_SCHEMA}
${THROUGHPUT_SCHEMA}`;

/** UPGRADES[v] takes a file from version v to v + 1; each step is additive. */
const UPGRADES: Readonly<Record<number, string>> = {
  // The ready index must leave delayed rows out, so it is rebuilt with the new predicate.
  1: `
ALTER TABLE taskmill_messages ADD COLUMN run_at INTEGER;
DROP INDEX taskmill_messages_ready;
${READY_INDEX_V2}
${LIFECYCLE_SCHEMA}`,
  // Priorities: a column on messages (kept by the failed store), and the ready index in claim order.
  2: `
ALTER TABLE taskmill_messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskmill_failed ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
DROP INDEX taskmill_messages_ready;
${READY_INDEX}`,
  // Unique jobs: the key and how long it may be held, on the row that holds it.
  3: `
ALTER TABLE taskmill_messages ADD COLUMN unique_key TEXT;
ALTER TABLE taskmill_messages ADD COLUMN unique_until INTEGER;
${UNIQUE_INDEX}`,
  // Rate limits and concurrency keys: the slot and parked keys on the message, and the rate windows.
  4: `
ALTER TABLE taskmill_messages ADD COLUMN slot_key TEXT;
ALTER TABLE taskmill_messages ADD COLUMN parked_key TEXT;
${SLOT_INDEX}
${PARKED_INDEX}
${RATES_SCHEMA}`,
  // Job control and queue events: tables of their own, nothing on messages changes.
  5: CONTROL_SCHEMA,
  // Throughput history for the dashboard: a table of its own.
  6: THROUGHPUT_SCHEMA,
  // Fencing per delivery: the token of the read that holds the lease (BaseQueue.nextDelivery).
  7: 'ALTER TABLE taskmill_messages ADD COLUMN delivery INTEGER NOT NULL DEFAULT 0;',
};

// The unary + keeps the planner on the primary key for fenced calls: without it,
// it walks every live lease of the queue through the lease index.
const FENCE = '+queue = @queue AND owner = @owner AND +lease_until >= @now';
const IDS = 'id IN (SELECT value FROM json_each(@ids))';
// Per delivery: @delivery is NULL (any lease of this owner) or the token every id of @ids was read
// with. One read hands one token to all its messages, so connection.ts runs a fenced call once per
// token among its ids (an ack batch spans one or two reads): a plain comparison per row. The
// row-value IN over a JSON list of [id, delivery] pairs it replaced cost 40 % of an ack's CPU.
const FENCED_IDS = `${FENCE} AND ${IDS} AND (@delivery IS NULL OR delivery = @delivery)`;
// One message, by its delivery when @delivery is not NULL.
const FENCED_ONE = `${FENCE} AND id = @id AND (@delivery IS NULL OR delivery = @delivery)`;

const READY = 'lease_until IS NULL AND run_at IS NULL';
const CLAIM = 'UPDATE taskmill_messages SET owner = @owner, lease_until = @until, attempt = attempt + 1, delivery = @delivery';
// The columns connection.ts reads by position (the claim statements are .raw()).
const CLAIMED = 'RETURNING id, data, attempt, priority';

// A parked message's run_at: a time no clock reaches, so it stays out of the ready index and out of
// promoteDue's reach (and counts as delayed) until a freed slot of its parked_key wakes it.
const PARKED_RUN_AT = Number.MAX_SAFE_INTEGER;
// A lease that ends unstarted (release, a deferred start): its delivery is not counted.
const UNLEASE = 'owner = NULL, lease_until = NULL, attempt = max(attempt - 1, 0)';

export const SQL = {
  insert: 'INSERT INTO taskmill_messages (queue, data, enqueued_at, run_at, priority) VALUES (@queue, @data, @now, @runAt, @priority)',
  uniqueHolder: 'SELECT id, data, unique_until FROM taskmill_messages WHERE queue = @queue AND unique_key = @key',
  // A hold past its unique_until lets go of the key, so the new row can take it.
  dropLapsedKey: 'UPDATE taskmill_messages SET unique_key = NULL, unique_until = NULL WHERE id = @id',
  insertKeyed: `INSERT INTO taskmill_messages (queue, data, enqueued_at, run_at, priority, unique_key, unique_until)
    VALUES (@queue, @data, @now, @runAt, @priority, @key, @until)`,
  // Ready rows come from the partial (queue, priority DESC, id) index, expired
  // leases from the (queue, lease_until) one: both O(log n + max), whatever the
  // queue length and however many rows are delayed. RETURNING does not keep
  // the subquery's order, so the queue sorts the (at most max) rows it gets.
  claim: `${CLAIM}
    WHERE id IN (
      SELECT id FROM (
        SELECT id, priority FROM (SELECT id, priority FROM taskmill_messages WHERE queue = @queue AND ${READY}
                                  ORDER BY priority DESC, id LIMIT @max)
        UNION ALL
        SELECT id, priority FROM (SELECT id, priority FROM taskmill_messages WHERE queue = @queue AND lease_until IS NOT NULL AND lease_until < @now
                                  ORDER BY id LIMIT @max)
        ORDER BY priority DESC, id LIMIT @max))
    ${CLAIMED}`,
  // A claim when no lease has expired (expiredLease finds none): the ready side alone, already in
  // claim order, without the union and its sort (about a seventh of a claim's CPU).
  claimReady: `${CLAIM}
    WHERE id IN (SELECT id FROM taskmill_messages WHERE queue = @queue AND ${READY} ORDER BY priority DESC, id LIMIT @max)
    ${CLAIMED}`,
  expiredLease: 'SELECT 1 FROM taskmill_messages WHERE queue = @queue AND lease_until IS NOT NULL AND lease_until < @now LIMIT 1',
  ack: `DELETE FROM taskmill_messages WHERE ${FENCED_IDS} RETURNING id`,
  // The ack when every id is expected to be acked: only the count of deleted rows comes back.
  ackCounted: `DELETE FROM taskmill_messages WHERE ${FENCED_IDS}`,
  release: `UPDATE taskmill_messages SET ${UNLEASE} WHERE ${FENCED_IDS} RETURNING id, slot_key`,
  extend: `UPDATE taskmill_messages SET lease_until = @until WHERE ${FENCED_IDS} RETURNING id`,
  takeForFail: `DELETE FROM taskmill_messages WHERE ${FENCED_ONE} RETURNING data, attempt, priority, slot_key`,
  insertFailed: `INSERT INTO taskmill_failed (id, queue, data, attempt, error, failed_at, priority)
    VALUES (@id, @queue, @data, @attempt, @error, @now, @priority)`,
  reclaim: `UPDATE taskmill_messages SET owner = NULL, lease_until = NULL
    WHERE queue = @queue AND lease_until IS NOT NULL AND lease_until < @now`,
  listFailed: 'SELECT id, data, attempt, error, failed_at FROM taskmill_failed WHERE queue = @queue ORDER BY seq LIMIT @limit',
  requeueSome: `INSERT INTO taskmill_messages (id, queue, data, attempt, enqueued_at, priority)
    SELECT id, queue, data, 0, failed_at, priority FROM taskmill_failed WHERE queue = @queue AND ${IDS}`,
  requeueAll: `INSERT INTO taskmill_messages (id, queue, data, attempt, enqueued_at, priority)
    SELECT id, queue, data, 0, failed_at, priority FROM taskmill_failed WHERE queue = @queue`,
  purgeSome: `DELETE FROM taskmill_failed WHERE queue = @queue AND ${IDS}`,
  purgeAll: 'DELETE FROM taskmill_failed WHERE queue = @queue',
  stats: `SELECT
    (SELECT count(*) FROM taskmill_messages WHERE queue = @queue AND ${READY}) AS ready,
    (SELECT count(*) FROM taskmill_messages WHERE queue = @queue AND lease_until IS NOT NULL) AS leased,
    (SELECT count(*) FROM taskmill_failed WHERE queue = @queue) AS failed,
    (SELECT count(*) FROM taskmill_messages WHERE queue = @queue AND run_at IS NOT NULL) AS delayed`,
  length: `SELECT count(*) AS n FROM taskmill_messages WHERE queue = @queue AND ${READY}`,
  purgeSlots: 'DELETE FROM taskmill_slots WHERE queue = @queue AND expires_at <= @now',
  claimSlot: 'INSERT INTO taskmill_slots (queue, key, expires_at) VALUES (@queue, @key, @until) ON CONFLICT (queue, key) DO NOTHING',
  flushMessages: 'DELETE FROM taskmill_messages WHERE queue = @queue',
  flushFailed: 'DELETE FROM taskmill_failed WHERE queue = @queue',
  flushSlots: 'DELETE FROM taskmill_slots WHERE queue = @queue',
  flushResults: 'DELETE FROM taskmill_results WHERE queue = @queue',
  flushRates: 'DELETE FROM taskmill_rates WHERE queue = @queue',
  flushCancels: 'DELETE FROM taskmill_cancels WHERE queue = @queue',
  // @runAt is NULL when the retry is due at once.
  retry: `UPDATE taskmill_messages SET data = @data, attempt = 0, owner = NULL, lease_until = NULL, run_at = @runAt
    WHERE ${FENCED_ONE} RETURNING slot_key`,
  promoteDue: 'UPDATE taskmill_messages SET run_at = NULL WHERE queue = @queue AND run_at IS NOT NULL AND run_at <= @now',
  // Ready, delayed or lease expired: nobody is running it.
  remove: 'DELETE FROM taskmill_messages WHERE id = @id AND +queue = @queue AND (lease_until IS NULL OR +lease_until < @now) RETURNING slot_key',
  // Bounded so one call never stalls on a backlog, yet larger than any batch it follows: the table cannot outgrow its live records.
  purgeResults: `DELETE FROM taskmill_results WHERE rowid IN (
    SELECT rowid FROM taskmill_results WHERE expires_at <= @now ORDER BY expires_at LIMIT @limit)`,
  setResult: `INSERT INTO taskmill_results (queue, job_id, record, expires_at) VALUES (@queue, @jobId, @record, @expiresAt)
    ON CONFLICT (queue, job_id) DO UPDATE SET record = excluded.record, expires_at = excluded.expires_at`,
  // A record of a delivery: written only while that delivery holds its message's lease.
  setFencedResult: `INSERT INTO taskmill_results (queue, job_id, record, expires_at)
    SELECT @queue, @jobId, @record, @expiresAt WHERE EXISTS (SELECT 1 FROM taskmill_messages WHERE ${FENCED_ONE})
    ON CONFLICT (queue, job_id) DO UPDATE SET record = excluded.record, expires_at = excluded.expires_at`,
  getResult: 'SELECT record FROM taskmill_results WHERE queue = @queue AND job_id = @jobId AND expires_at > @now',

  // ── flow control: startGated and the lease endings that free a slot (sqlite/gates.ts) ──
  // The lease check, with the slot the message may already hold (a second start of one lease).
  gateHeld: `SELECT slot_key FROM taskmill_messages WHERE ${FENCED_ONE}`,
  // Holders of the key's slots: live leases only, so a holder whose lease lapsed no longer counts.
  slotHolders: `SELECT count(*) AS n FROM taskmill_messages
    WHERE queue = @queue AND slot_key = @key AND +lease_until >= @now AND id <> @id`,
  takeSlot: 'UPDATE taskmill_messages SET slot_key = @key WHERE id = @id',
  dropSlot: 'UPDATE taskmill_messages SET slot_key = NULL WHERE id = @id',
  park: `UPDATE taskmill_messages SET ${UNLEASE}, slot_key = NULL, parked_key = @key, run_at = ${PARKED_RUN_AT}
    WHERE id = @id`,
  // Parked messages of the key become ready at once, in read order, their attempt unchanged.
  wakeParked: `UPDATE taskmill_messages SET parked_key = NULL, run_at = NULL
    WHERE id IN (SELECT id FROM taskmill_messages WHERE queue = @queue AND parked_key = @key
                 ORDER BY priority DESC, id LIMIT @count)`,
  // A rate-deferred message waits like a delayed write, until the start booked for it.
  deferTo: `UPDATE taskmill_messages SET ${UNLEASE}, slot_key = NULL, run_at = @runAt WHERE id = @id`,
  // The window is (now − perMs, now]: starts before it no longer count, reservations nobody took up are dropped.
  rateExpire: 'DELETE FROM taskmill_rates WHERE queue = @queue AND key = @key AND at <= @since',
  // A message starting on its own reservation gives it back first, so it does not count against itself.
  rateUnreserve: 'DELETE FROM taskmill_rates WHERE reserved_for = @id AND +queue = @queue AND +key = @key',
  // Entries already due (starts, and reservations whose time has come), counted up to the limit.
  rateDue: `SELECT count(*) AS n FROM (
    SELECT 1 FROM taskmill_rates WHERE queue = @queue AND key = @key AND at <= @now LIMIT @limit)`,
  // reserveAt() of base.ts: behind the last booked entry, and a window after the limit-th entry from the end.
  rateReserveAt: `SELECT max(@now,
    coalesce((SELECT at FROM taskmill_rates WHERE queue = @queue AND key = @key ORDER BY at DESC LIMIT 1), @now),
    coalesce((SELECT at + @perMs FROM taskmill_rates WHERE queue = @queue AND key = @key
              ORDER BY at DESC LIMIT 1 OFFSET @limit - 1), @now)) AS at`,
  // reserveAt() of base.ts for a due booking: the earliest time the due entries allow.
  rateRebookAt: `SELECT max(@now,
    coalesce((SELECT at + @perMs FROM taskmill_rates WHERE queue = @queue AND key = @key AND at <= @now
              ORDER BY at DESC LIMIT 1 OFFSET @limit - 1), @now)) AS at`,
  rateRecord: 'INSERT INTO taskmill_rates (queue, key, at, reserved_for) VALUES (@queue, @key, @at, @reservedFor)',
  // The ack of messages this instance started with a concurrency gate: the slots it frees come back with it.
  ackHolders: `DELETE FROM taskmill_messages WHERE ${FENCED_IDS} RETURNING id, slot_key`,
  // Which of the redelivered messages a claim just took were lapsed slot holders.
  claimedHolders: `SELECT id, slot_key FROM taskmill_messages WHERE ${IDS} AND slot_key IS NOT NULL`,
  // Slot holders whose lease lapsed, before reclaim() makes them ready.
  lapsedHolders: 'SELECT id, slot_key FROM taskmill_messages WHERE queue = @queue AND slot_key IS NOT NULL AND +lease_until < @now',
} as const;

/** Every statement, prepared once per connection. @internal */
export type Statements = { [K in keyof typeof SQL]: Database.Statement };

/** @internal The statements, exported so a test can check their query plans. */
export const SQLITE_STATEMENTS: Readonly<Record<keyof typeof SQL, string>> = SQL;

/** Creates the schema in a fresh file or upgrades an older one in place; runs inside BEGIN IMMEDIATE. @internal */
export function migrate(db: Database.Database, path: string): void {
  db.exec(SCHEMA_TABLE);
  const row = db.prepare('SELECT version FROM taskmill_schema WHERE id = 1').get() as { version: number } | undefined;
  if (!row) {
    db.exec(SCHEMA);
    db.prepare('INSERT INTO taskmill_schema (id, version) VALUES (1, ?)').run(SCHEMA_VERSION);
    return;
  }
  if (row.version > SCHEMA_VERSION) {
    throw new ConfigError(`SQLite file ${path} has taskmill schema version ${row.version}, newer than this taskmill's ${SCHEMA_VERSION}: upgrade taskmill`);
  }
  for (let version = row.version; version < SCHEMA_VERSION; version++) {
    const upgrade = UPGRADES[version];
    if (upgrade === undefined) throw new ConfigError(`SQLite file ${path} has taskmill schema version ${version}, which this taskmill cannot upgrade`);
    db.exec(upgrade);
  }
  if (row.version !== SCHEMA_VERSION) db.prepare('UPDATE taskmill_schema SET version = ? WHERE id = 1').run(SCHEMA_VERSION);
}
