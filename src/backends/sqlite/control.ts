/**
 * Job control and queue events of SqliteQueue (backends/control.ts states
 * the rules; memory/control.ts is the reference). Each call is one statement
 * or one BEGIN IMMEDIATE transaction, so it is atomic across every process
 * sharing the file. Its statements are prepared here, once per connection,
 * apart from the message statements of schema.ts: none of them is on the
 * per-job path.
 */
import type Database from 'better-sqlite3';
import {
  CONSUMER_TTL_MS,
  MAX_EVENTS,
  throughputSince,
  type CancelOutcome,
  type CancelRequest,
  type ConsumerRecord,
  type EventPage,
  JOB_HEAD_CHARS,
  type FoundMessage,
  type ThroughputBucket,
  type ThroughputCount,
} from '../control.js';
import type { Stored } from './connection.js';

const SQL = {
  // Leased with a live lease: somebody may be running it.
  held: 'SELECT 1 AS held FROM taskmill_messages WHERE id = @id AND +queue = @queue AND lease_until >= @now',
  mark: `INSERT INTO taskmill_cancels (id, queue, job_id) VALUES (@id, @queue, @jobId)
    ON CONFLICT (id) DO UPDATE SET job_id = excluded.job_id`,
  // Marks on this owner's live leases. A queue has few marks at a time (each lasts until its job ends).
  marks: `SELECT c.id, c.job_id, m.id AS present, m.owner, m.lease_until
    FROM taskmill_cancels c LEFT JOIN taskmill_messages m ON m.id = c.id WHERE c.queue = @queue`,
  dropMark: 'DELETE FROM taskmill_cancels WHERE id = @id',
  listen: `INSERT INTO taskmill_listeners (queue, id, until) VALUES (@queue, @id, @until)
    ON CONFLICT (queue, id) DO UPDATE SET until = excluded.until`,
  unlisten: 'DELETE FROM taskmill_listeners WHERE queue = @queue AND id = @id',
  listening: 'SELECT EXISTS (SELECT 1 FROM taskmill_listeners WHERE queue = @queue AND until > @now) AS listening',
  dropListeners: 'DELETE FROM taskmill_listeners WHERE queue = @queue AND until <= @now',
  lastSeq: 'SELECT coalesce((SELECT last FROM taskmill_event_seqs WHERE queue = @queue), 0) AS last',
  setSeq: `INSERT INTO taskmill_event_seqs (queue, last) VALUES (@queue, @last)
    ON CONFLICT (queue) DO UPDATE SET last = excluded.last`,
  event: 'INSERT INTO taskmill_events (queue, seq, data) VALUES (@queue, @seq, @data)',
  trim: 'DELETE FROM taskmill_events WHERE queue = @queue AND seq <= @upTo',
  events: 'SELECT seq, data FROM taskmill_events WHERE queue = @queue AND seq > @after ORDER BY seq LIMIT @max',
  beat: `INSERT INTO taskmill_consumers (queue, id, state, seen_at) VALUES (@queue, @id, @state, @now)
    ON CONFLICT (queue, id) DO UPDATE SET state = excluded.state, seen_at = excluded.seen_at`,
  forget: 'DELETE FROM taskmill_consumers WHERE queue = @queue AND id = @id',
  dropGone: 'DELETE FROM taskmill_consumers WHERE queue = @queue AND seen_at <= @before',
  consumers: 'SELECT id, state, seen_at AS seenAt FROM taskmill_consumers WHERE queue = @queue AND seen_at > @before ORDER BY id',
  settled: `INSERT INTO taskmill_throughput (queue, minute, completed, failed) VALUES (@queue, @minute, @completed, @failed)
    ON CONFLICT (queue, minute) DO UPDATE SET completed = completed + excluded.completed, failed = failed + excluded.failed`,
  trimSettled: 'DELETE FROM taskmill_throughput WHERE queue = @queue AND minute < @oldest',
  throughput: 'SELECT minute, completed, failed FROM taskmill_throughput WHERE queue = @queue AND minute >= @oldest ORDER BY minute',
  // The head of the queue in claim order (the ready index), then the soonest delayed (the delayed index).
  findWaiting: `SELECT id, data FROM (SELECT id, data FROM taskmill_messages WHERE queue = @queue AND lease_until IS NULL AND run_at IS NULL
    ORDER BY priority DESC, id LIMIT @limit) WHERE instr(substr(data, 1, @head), @needle) > 0 LIMIT 1`,
  findDelayed: `SELECT id, data FROM (SELECT id, data FROM taskmill_messages WHERE queue = @queue AND run_at IS NOT NULL
    ORDER BY run_at, id LIMIT @limit) WHERE instr(substr(data, 1, @head), @needle) > 0 LIMIT 1`,
} as const;

export interface SqliteControl {
  /** Revokes `id` (the connection's remove, in this transaction) or marks it if a live lease holds it. */
  cancel(id: number, jobId: Stored): CancelOutcome;
  cancelsFor(now: number): CancelRequest[];
  listening(now: number): boolean;
  listen(listenerId: string, until: number): number;
  unlisten(listenerId: string): void;
  publish(datas: readonly string[]): void;
  read(after: number, max: number): EventPage;
  heartbeat(id: string, state: string, counts: readonly ThroughputCount[], now: number): void;
  forgetConsumer(id: string): void;
  consumers(now: number): ConsumerRecord[];
  throughput(now: number): ThroughputBucket[];
  findJob(needle: string, limit: number): FoundMessage | null;
}

/** Prepares the control statements on `db`; `remove` is the connection's revoke transaction (nested here as a savepoint). */
export function prepareControl(
  db: Database.Database,
  queue: string,
  owner: string,
  decode: (stored: Stored) => string,
  remove: (id: number) => boolean,
): SqliteControl {
  const s = Object.fromEntries(Object.entries(SQL).map(([key, sql]) => [key, db.prepare(sql)])) as { [K in keyof typeof SQL]: Database.Statement };
  const mark = (id: number, jobId: Stored): boolean => {
    if (!s.held.get({ id, queue, now: Date.now() })) return false;
    s.mark.run({ id, queue, jobId });
    return true;
  };
  // Revoke or mark in one transaction, so no consumer takes the message between the two.
  const cancel = db.transaction((id: number, jobId: Stored): CancelOutcome => {
    if (remove(id)) return 'revoked';
    return mark(id, jobId) ? 'signalled' : false;
  });
  // One snapshot: the events and `last` must agree, or a publish between them would look like a trimmed gap.
  const read = db.transaction((after: number, max: number): EventPage => {
    const events = s.events.all({ queue, after, max }) as Array<{ seq: number; data: string }>;
    return { events, last: (s.lastSeq.get({ queue }) as { last: number }).last };
  });
  const publish = db.transaction((datas: readonly string[]) => {
    let last = (s.lastSeq.get({ queue }) as { last: number }).last;
    for (const data of datas) s.event.run({ queue, seq: ++last, data });
    s.setSeq.run({ queue, last });
    s.trim.run({ queue, upTo: last - MAX_EVENTS });
  });
  // The state and the counts in one transaction: one write per heartbeat, as on every backend.
  const beat = db.transaction((id: string, state: string, counts: readonly ThroughputCount[], now: number) => {
    s.beat.run({ queue, id, state, now });
    if (counts.length === 0) return;
    for (const { minute, completed, failed } of counts) s.settled.run({ queue, minute, completed, failed });
    s.trimSettled.run({ queue, oldest: throughputSince(now) });
  });
  return {
    cancel: (id, jobId) => cancel.immediate(id, jobId),
    cancelsFor(now) {
      const found: CancelRequest[] = [];
      const rows = s.marks.all({ queue }) as Array<{ id: number; job_id: Stored; present: number | null; owner: string | null; lease_until: number | null }>;
      for (const row of rows) {
        // A message gone (acked, failed, removed) takes its mark with it; a waiting one keeps it for its next holder.
        if (row.present === null) s.dropMark.run({ id: row.id });
        else if (row.owner === owner && row.lease_until !== null && row.lease_until >= now) found.push({ id: String(row.id), jobId: decode(row.job_id) });
      }
      return found;
    },
    listening(now) {
      return (s.listening.get({ queue, now }) as { listening: number }).listening === 1;
    },
    listen(listenerId, until) {
      s.dropListeners.run({ queue, now: Date.now() });
      s.listen.run({ queue, id: listenerId, until });
      return (s.lastSeq.get({ queue }) as { last: number }).last;
    },
    unlisten(listenerId) {
      s.unlisten.run({ queue, id: listenerId });
    },
    publish(datas) {
      if (datas.length > 0) publish.immediate(datas);
    },
    read: (after, max) => read(after, max),
    heartbeat(id, state, counts, now) {
      beat.immediate(id, state, counts, now);
    },
    forgetConsumer(id) {
      s.forget.run({ queue, id });
    },
    consumers(now) {
      const before = now - CONSUMER_TTL_MS;
      s.dropGone.run({ queue, before });
      return s.consumers.all({ queue, before }) as ConsumerRecord[];
    },
    throughput(now) {
      return s.throughput.all({ queue, oldest: throughputSince(now) }) as ThroughputBucket[];
    },
    findJob(needle, limit) {
      for (const state of ['waiting', 'delayed'] as const) {
        const row = (state === 'waiting' ? s.findWaiting : s.findDelayed).get({ queue, limit, needle, head: JOB_HEAD_CHARS }) as
          { id: number; data: Stored } | undefined;
        if (row) return { id: String(row.id), data: decode(row.data), state };
      }
      return null;
    },
  };
}
