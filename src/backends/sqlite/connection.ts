/**
 * The connection of one SqliteQueue: it opens the file, brings its schema up
 * to date, and prepares every statement and transaction once. Each method is
 * one statement or one BEGIN IMMEDIATE transaction; sqlite/queue.ts checks
 * the input and turns results and driver errors into promises.
 */
import type Database from 'better-sqlite3';
import { betterSqlite3 } from '../drivers.js';
import { ConfigError } from '../../shared/errors.js';
import { SQL, migrate, type Statements } from './schema.js';
import { prepareGates, type EndedLease, type SqliteGates } from './gates.js';
import { writesOf } from './writes.js';
import { prepareControl, type SqliteControl } from './control.js';
import type { QueueMessage, WriteOnceResult } from '../base.js';

/** Data as stored: TEXT, or a BLOB of UTF-16LE code units when the string is not well-formed. */
export type Stored = string | Buffer;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function encode(data: unknown): Stored {
  if (typeof data !== 'string') throw new ConfigError(`message data must be a string, got ${typeof data}`);
  return LONE_SURROGATE.test(data) ? Buffer.from(data, 'utf16le') : data;
}

export function decode(stored: Stored): string {
  return typeof stored === 'string' ? stored : stored.toString('utf16le');
}

const ROW_ID = /^[1-9][0-9]{0,15}$/;

/** A message id as stored, or undefined when it cannot be one of ours. */
export function rowId(id: unknown): number | undefined {
  if (typeof id !== 'string' || !ROW_ID.test(id)) return undefined;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Message ids as stored; ids that cannot be ours are left out (they are refused). */
function rowIds(ids: readonly string[]): number[] {
  const numbers: number[] = [];
  for (const id of ids) {
    const n = rowId(id);
    if (n !== undefined) numbers.push(n);
  }
  return numbers;
}

/** Message ids as JSON for json_each; ids that cannot be ours are left out (they are refused). */
export function idList(ids: readonly string[]): string {
  return JSON.stringify(rowIds(ids));
}

/** The ids of one fenced statement (JSON for json_each), all read under `delivery` (null: any lease of this owner). */
export interface DeliveryGroup {
  ids: string;
  /** How many ids `ids` holds. */
  count: number;
  delivery: number | null;
}

/**
 * A fenced call's ids grouped by their delivery token, one group per token (the order of first
 * appearance). One read gives every message it returns the same token, so an ack batch has a group
 * per read it spans. Ids that cannot be ours, and ids whose token is no safe integer, are left out
 * (they are refused). Without `deliveries`, one group fenced by the owner only.
 */
export function byDelivery(ids: readonly string[], deliveries: readonly number[] | undefined): DeliveryGroup[] {
  if (deliveries === undefined) {
    const list = rowIds(ids);
    return [{ ids: JSON.stringify(list), count: list.length, delivery: null }];
  }
  const groups = new Map<number, number[]>();
  for (let i = 0; i < ids.length; i++) {
    const id = rowId(ids[i]);
    const delivery = deliveries[i];
    if (id === undefined || delivery === undefined || !Number.isSafeInteger(delivery)) continue;
    const group = groups.get(delivery);
    if (group) group.push(id);
    else groups.set(delivery, [id]);
  }
  return Array.from(groups, ([delivery, list]) => ({ ids: JSON.stringify(list), count: list.length, delivery }));
}

/** Thrown inside a transaction to roll it back: not every id of an ack was acked. */
const NOT_EVERY = new Error('not every id was acked');

/** A claimed row as the claim statement returns it (.raw()): its RETURNING columns in order. */
type ClaimedRow = [id: number, data: Stored, attempt: number, priority: number];

/** Read order of a claim's rows: highest priority, then oldest. */
function claimOrder(a: ClaimedRow, b: ClaimedRow): number {
  return b[3] - a[3] || a[0] - b[0];
}

/** The stored run_at: NULL (ready) unless `runAt` is after `now`; whole ms, never early. */
export function storedRunAt(runAt: number | undefined, now: number): number | null {
  return runAt !== undefined && runAt > now ? Math.ceil(runAt) : null;
}

export interface StoredResultRecord {
  jobId: Stored;
  record: Stored;
  ttlMs: number;
}

export interface Connection {
  db: Database.Database;
  s: Statements;
  insertOne(data: Stored, runAt: number | undefined, priority: number): string;
  insertMany(datas: Stored[], runAt: number | undefined, priority: number): string[];
  insertUnique(key: string, data: Stored, ttlMs: number): string | null;
  insertOnce(key: string, data: Stored, runAt: number | undefined, priority: number, keyTtlMs: number | undefined): WriteOnceResult;
  claim(max: number, delivery: number): QueueMessage[];
  /**
   * Runs a fenced statement (this owner, lease not expired; each id's delivery when `deliveries`
   * is given) on `ids`, in one transaction; the ids of the rows it touched.
   */
  fenced(which: 'ack' | 'extend', ids: readonly string[], deliveries: readonly number[] | undefined): number[];
  /** Acks `ids`, of which `holders` were started with a concurrency gate: their slots are freed at once. */
  ackHolders(ids: readonly string[], deliveries: readonly number[] | undefined, holders: ReadonlySet<string>): number[];
  release(ids: readonly string[], deliveries: readonly number[] | undefined): void;
  fail(id: number, error: string, delivery: number | null): boolean;
  retry(id: number, data: Stored, runAt: number, delivery: number | null): boolean;
  remove(id: number): boolean;
  reclaim(): number;
  gates: SqliteGates;
  control: SqliteControl;
  requeue(ids: string | null): number;
  /** Stores `records`; with `fences`, record i only while message fences[i].id is leased by this owner under fences[i].delivery. */
  setResults(records: StoredResultRecord[], fences?: ReadonlyArray<{ id: number | undefined; delivery: number }>): void;
  flush(): void;
}

/** Opens the file, creates the schema on first use, and prepares every statement and transaction once. */
export function openConnection(path: string, busyTimeoutMs: number, queue: string, owner: string, leaseMs: number): Connection {
  const db = new (betterSqlite3())(path, { timeout: busyTimeoutMs });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.transaction(() => migrate(db, path)).immediate();
    const prepared: Record<string, Database.Statement> = {};
    for (const [key, sql] of Object.entries(SQL)) prepared[key] = db.prepare(sql);
    const s = prepared as Statements;
    const gates = prepareGates(db, s, queue, owner);

    const insert = (data: Stored, now: number, runAt: number | null, priority: number) =>
      String(s.insert.run({ queue, data, now, runAt, priority }).lastInsertRowid);
    const insertMany = db.transaction((datas: Stored[], runAt: number | undefined, priority: number) => {
      const now = Date.now();
      const stored = storedRunAt(runAt, now);
      return datas.map((data) => insert(data, now, stored, priority));
    });
    const insertUnique = db.transaction((key: string, data: Stored, ttlMs: number) => {
      const now = Date.now();
      // The expiry index makes this a cheap seek when nothing has expired.
      s.purgeSlots.run({ queue, now });
      if (s.claimSlot.run({ queue, key, until: now + ttlMs }).changes === 0) return null;
      return insert(data, now, null, 0);
    });
    const writes = writesOf(s, queue);
    const insertOnce = db.transaction(writes.insertOnce);
    // The hot statements hand back arrays, not one object per row: ack and extend their ids
    // (.pluck), claim its columns in RETURNING order (.raw).
    s.ack.pluck();
    s.extend.pluck();
    s.claim.raw();
    s.claimReady.raw();
    /** Runs fenced statement `st` once per delivery group; every row it returned. */
    const fencedGroups = <T>(st: Database.Statement, groups: readonly DeliveryGroup[]): T[] => {
      const now = Date.now();
      let rows: T[] = [];
      for (const { ids, delivery } of groups) {
        const some = st.all({ queue, owner, now, until: now + leaseMs, ids, delivery }) as T[];
        rows = rows.length === 0 ? some : rows.concat(some);
      }
      return rows;
    };
    const fencedAll = <T>(st: Database.Statement, ids: readonly string[], deliveries: readonly number[] | undefined): T[] =>
      fencedGroups<T>(st, byDelivery(ids, deliveries));
    const fencedMany = db.transaction(fencedGroups);
    /**
     * The usual ack, where every id is acked, without RETURNING (about a seventh of an ack):
     * the count of deleted rows tells. Any other count rolls it back, and the ack that names the
     * rows it touched runs instead.
     */
    const ackEvery = db.transaction((groups: readonly DeliveryGroup[], expected: number) => {
      const now = Date.now();
      let acked = 0;
      for (const { ids, delivery } of groups) acked += s.ackCounted.run({ queue, owner, now, ids, delivery }).changes;
      if (acked !== expected) throw NOT_EVERY;
    });
    const claim = db.transaction((max: number, delivery: number) => {
      const now = Date.now();
      const params = { queue, owner, now, until: now + leaseMs, max, delivery };
      // Under one BEGIN IMMEDIATE and one `now`: what the check found still holds for the claim.
      const rows = (s.expiredLease.get(params) === undefined ? s.claimReady : s.claim).all(params) as ClaimedRow[];
      // A lapsed slot holder claimed again gives its slot back. Only a redelivery can be one
      // (a holder was delivered before), so a first delivery costs nothing more.
      if (rows.some((row) => row[2] > 1)) gates.claimedAgain(rows.filter((row) => row[2] > 1).map((row) => row[0]));
      return rows;
    });
    const ackHolders = db.transaction((ids: readonly string[], deliveries: readonly number[] | undefined, held: ReadonlySet<string>) => {
      const plain: string[] = [];
      const holders: string[] = [];
      const plainDeliveries: number[] | undefined = deliveries && [];
      const holderDeliveries: number[] | undefined = deliveries && [];
      for (const [i, id] of ids.entries()) {
        (held.has(id) ? holders : plain).push(id);
        if (deliveries) (held.has(id) ? holderDeliveries : plainDeliveries)!.push(deliveries[i]!);
      }
      const acked = plain.length === 0 ? [] : fencedAll<number>(s.ack, plain, plainDeliveries);
      const freed = fencedAll<EndedLease>(s.ackHolders, holders, holderDeliveries);
      gates.leasesEnded(freed);
      return [...acked, ...freed.map((row) => row.id)];
    });
    const release = db.transaction((ids: readonly string[], deliveries: readonly number[] | undefined) =>
      gates.leasesEnded(fencedAll<EndedLease>(s.release, ids, deliveries)),
    );
    const fail = db.transaction((id: number, error: string, delivery: number | null) => {
      const now = Date.now();
      const taken = s.takeForFail.get({ queue, owner, now, id, delivery }) as (EndedLease & { data: Stored; attempt: number; priority: number }) | undefined;
      if (!taken) return false;
      s.insertFailed.run({ id, queue, data: taken.data, attempt: taken.attempt, error, now, priority: taken.priority });
      gates.leasesEnded([{ id, slot_key: taken.slot_key }]);
      return true;
    });
    const retry = db.transaction((id: number, data: Stored, runAt: number, delivery: number | null) => {
      const now = Date.now();
      const retried = s.retry.get({ queue, owner, now, id, delivery, data, runAt: storedRunAt(runAt, now) }) as EndedLease | undefined;
      if (!retried) return false;
      gates.leasesEnded([{ id, slot_key: retried.slot_key }]);
      return true;
    });
    const remove = db.transaction((id: number) => {
      const removed = s.remove.get({ queue, id, now: Date.now() }) as EndedLease | undefined;
      if (!removed) return false;
      gates.leasesEnded([{ id, slot_key: removed.slot_key }]); // a lapsed holder's slot
      return true;
    });
    const control = prepareControl(db, queue, owner, decode, (id) => remove(id));
    const reclaim = db.transaction(() => {
      const now = Date.now();
      const lapsed = s.lapsedHolders.all({ queue, now }) as EndedLease[];
      const count = s.reclaim.run({ queue, now }).changes;
      gates.leasesEnded(lapsed);
      return count;
    });
    const requeue = db.transaction((ids: string | null) => {
      if (ids === null) {
        s.requeueAll.run({ queue });
        return s.purgeAll.run({ queue }).changes;
      }
      s.requeueSome.run({ queue, ids });
      return s.purgeSome.run({ queue, ids }).changes;
    });
    const setResults = db.transaction((records: StoredResultRecord[], fences?: ReadonlyArray<{ id: number | undefined; delivery: number }>) => {
      const now = Date.now();
      s.purgeResults.run({ now, limit: 256 + 2 * records.length });
      for (const [i, { jobId, record, ttlMs }] of records.entries()) {
        const fence = fences?.[i];
        if (fence === undefined) s.setResult.run({ queue, jobId, record, expiresAt: now + ttlMs });
        else if (fence.id !== undefined)
          s.setFencedResult.run({ queue, jobId, record, expiresAt: now + ttlMs, owner, now, id: fence.id, delivery: fence.delivery });
      }
    });
    const flush = db.transaction(() => {
      s.flushMessages.run({ queue });
      s.flushFailed.run({ queue });
      s.flushSlots.run({ queue });
      s.flushResults.run({ queue });
      s.flushRates.run({ queue });
      s.flushCancels.run({ queue });
    });

    return {
      db,
      s,
      insertOne: writes.insertOne,
      insertMany: (datas, runAt, priority) => (datas.length === 0 ? [] : insertMany.immediate(datas, runAt, priority)),
      insertUnique: (key, data, ttlMs) => insertUnique.immediate(key, data, ttlMs),
      insertOnce: (key, data, runAt, priority, keyTtlMs) => insertOnce.immediate(key, data, runAt, priority, keyTtlMs),
      claim(max, delivery) {
        const rows = claim.immediate(max, delivery);
        // RETURNING gives no order guarantee.
        rows.sort(claimOrder);
        return rows.map((row) => ({ id: String(row[0]), data: decode(row[1]), attempt: row[2], delivery }));
      },
      fenced(which, ids, deliveries) {
        const groups = byDelivery(ids, deliveries);
        if (which === 'ack' && groups.reduce((n, group) => n + group.count, 0) === ids.length) {
          try {
            ackEvery.immediate(groups, ids.length);
            return ids.map(Number); // every id was canonical (counted) and acked
          } catch (error) {
            if (error !== NOT_EVERY) throw error;
          }
        }
        // One statement commits on its own; several (a batch spanning reads) commit together.
        return groups.length <= 1 ? fencedGroups<number>(s[which], groups) : (fencedMany.immediate(s[which], groups) as number[]);
      },
      ackHolders: (ids, deliveries, holders) => ackHolders.immediate(ids, deliveries, holders),
      release: (ids, deliveries) => release.immediate(ids, deliveries),
      fail: (id, error, delivery) => fail.immediate(id, error, delivery),
      retry: (id, data, runAt, delivery) => retry.immediate(id, data, runAt, delivery),
      remove: (id) => remove.immediate(id),
      reclaim: () => reclaim.immediate(),
      gates,
      control,
      requeue: (ids) => requeue.immediate(ids),
      setResults: (records, fences) => {
        if (records.length > 0) setResults.immediate(records, fences);
      },
      flush: () => flush.immediate(),
    };
  } catch (error) {
    db.close();
    throw error;
  }
}
