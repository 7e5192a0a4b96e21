/**
 * Job control and queue events of PostgresQueue (backends/control.ts states
 * the rules; memory/control.ts is the reference): migration 6's tables, their
 * statements, and the calls on top of them. None of it is on the per-job
 * path: a consumer calls control() twice a second, and publishes events only
 * while a listener is registered.
 *
 * Sequence numbers are contiguous per queue because a publish takes them from
 * the queue's row in `event_seqs` with an upsert: the row lock holds later
 * publishers until the earlier one commits, so a reader never sees seq n + 1
 * before seq n exists (a gap it sees is a trim, never a publish in flight).
 */
import type pg from 'pg';
import {
  CONSUMER_TTL_MS,
  MAX_EVENTS,
  throughputSince,
  type CancelOutcome,
  type CancelRequest,
  type ConsumerRecord,
  type EventPage,
  type QueueControl,
  JOB_HEAD_CHARS,
  type FoundMessage,
  type ThroughputBucket,
  type ThroughputCount,
} from '../control.js';

type Query = <R extends pg.QueryResultRow>(what: string, text: string, values: unknown[]) => Promise<pg.QueryResult<R>>;

/** Migration 6: tables of their own; jobs is untouched. */
export function controlMigration(s: string): string[] {
  return [
    // Keyed by job row id: a mark goes with its message (control() drops marks whose row is gone).
    `CREATE TABLE ${s}.cancels (id bigint PRIMARY KEY, queue text NOT NULL, job_id text NOT NULL)`,
    `CREATE INDEX cancels_queue ON ${s}.cancels (queue)`,
    `CREATE TABLE ${s}.listeners (queue text NOT NULL, id text NOT NULL, until timestamptz NOT NULL, PRIMARY KEY (queue, id))`,
    `CREATE TABLE ${s}.event_seqs (queue text PRIMARY KEY, last bigint NOT NULL)`,
    `CREATE TABLE ${s}.events (queue text NOT NULL, seq bigint NOT NULL, data text NOT NULL, PRIMARY KEY (queue, seq))`,
    `CREATE TABLE ${s}.consumers (queue text NOT NULL, id text NOT NULL, state text NOT NULL, seen_at timestamptz NOT NULL, PRIMARY KEY (queue, id))`,
  ];
}

/** Migration 7: the throughput the consumers' heartbeats report, per queue and minute (ms since the epoch). */
export function throughputMigration(s: string): string[] {
  return [
    `CREATE TABLE ${s}.throughput (queue text NOT NULL, minute bigint NOT NULL, completed bigint NOT NULL, failed bigint NOT NULL, PRIMARY KEY (queue, minute))`,
  ];
}

/** The statements for one schema (escaped). `$1` is always the queue name. */
function controlStatements(s: string) {
  return {
    /** $2 id, $3 job id. Marks a row with a live lease; says whether the row exists at all. */
    mark: `WITH held AS (SELECT id FROM ${s}.jobs WHERE id = $2 AND queue = $1 AND lease_until >= now()),
             marked AS (INSERT INTO ${s}.cancels (id, queue, job_id) SELECT id, $1, $3 FROM held
                        ON CONFLICT (id) DO UPDATE SET job_id = excluded.job_id RETURNING id)
           SELECT EXISTS (SELECT 1 FROM marked) AS marked, EXISTS (SELECT 1 FROM ${s}.jobs WHERE id = $2 AND queue = $1) AS present`,
    /** $2 owner. The queue's marks (few: each lasts as long as its job), and whether anyone listens. */
    control: `SELECT EXISTS (SELECT 1 FROM ${s}.listeners WHERE queue = $1 AND until > now()) AS listening,
                (SELECT coalesce(json_agg(json_build_object(
                   'id', c.id::text, 'jobId', c.job_id, 'present', j.id IS NOT NULL,
                   'mine', coalesce(j.owner = $2 AND j.lease_until >= now(), false))), '[]'::json)
                 FROM ${s}.cancels c LEFT JOIN ${s}.jobs j ON j.id = c.id WHERE c.queue = $1) AS marks`,
    /** $2 ids of marks whose row is gone. */
    dropMarks: `DELETE FROM ${s}.cancels WHERE id = ANY($2::bigint[]) AND queue = $1`,
    /** $2 listener id, $3 ttl ms. Drops lapsed listeners of the queue; answers the log's last seq. */
    listen: `WITH gone AS (DELETE FROM ${s}.listeners WHERE queue = $1 AND until <= now() AND id <> $2),
               upsert AS (INSERT INTO ${s}.listeners (queue, id, until) VALUES ($1, $2, now() + $3::double precision * interval '1 millisecond')
                          ON CONFLICT (queue, id) DO UPDATE SET until = excluded.until)
             SELECT coalesce((SELECT last FROM ${s}.event_seqs WHERE queue = $1), 0)::text AS last`,
    unlisten: `DELETE FROM ${s}.listeners WHERE queue = $1 AND id = $2`,
    /** $2 text[]. Takes the next seqs from the queue's row (its lock orders publishers), trims the log. */
    publish: `WITH seq AS (
                INSERT INTO ${s}.event_seqs AS e (queue, last) VALUES ($1, cardinality($2::text[]))
                ON CONFLICT (queue) DO UPDATE SET last = e.last + cardinality($2::text[])
                RETURNING last),
              added AS (
                INSERT INTO ${s}.events (queue, seq, data)
                SELECT $1, seq.last - cardinality($2::text[]) + d.n, d.data FROM seq, unnest($2::text[]) WITH ORDINALITY AS d(data, n))
              DELETE FROM ${s}.events WHERE queue = $1 AND seq <= (SELECT last FROM seq) - ${MAX_EVENTS}`,
    /** $2 after, $3 max. One statement, one snapshot: the page and `last` agree. */
    read: `SELECT x.last::text AS last, e.seq::text AS seq, e.data
           FROM (SELECT coalesce((SELECT last FROM ${s}.event_seqs WHERE queue = $1), 0) AS last) x
           LEFT JOIN LATERAL (SELECT seq, data FROM ${s}.events WHERE queue = $1 AND seq > $2 ORDER BY seq LIMIT $3) e ON true
           ORDER BY e.seq`,
    /** $2 consumer id, $3 state (JSON text). */
    beat: `INSERT INTO ${s}.consumers (queue, id, state, seen_at) VALUES ($1, $2, $3, now())
           ON CONFLICT (queue, id) DO UPDATE SET state = excluded.state, seen_at = excluded.seen_at`,
    /** $2 consumer id, $3 state, $4/$5/$6 minutes/completed/failed, $7 the oldest minute kept. The beat and its counts in one statement. */
    beatCounting: `WITH beat AS (INSERT INTO ${s}.consumers (queue, id, state, seen_at) VALUES ($1, $2, $3, now())
                     ON CONFLICT (queue, id) DO UPDATE SET state = excluded.state, seen_at = excluded.seen_at),
                   added AS (INSERT INTO ${s}.throughput AS t (queue, minute, completed, failed)
                     SELECT $1, m, sum(c), sum(f) FROM unnest($4::bigint[], $5::bigint[], $6::bigint[]) AS u(m, c, f) GROUP BY m
                     ON CONFLICT (queue, minute) DO UPDATE SET completed = t.completed + excluded.completed, failed = t.failed + excluded.failed)
                   DELETE FROM ${s}.throughput WHERE queue = $1 AND minute < $7`,
    /** $2 the oldest minute shown. */
    throughput: `SELECT minute::float8 AS minute, completed::float8 AS completed, failed::float8 AS failed FROM ${s}.throughput
                 WHERE queue = $1 AND minute >= $2 ORDER BY minute`,
    /** $2 needle, $3 limit, $4 head chars. The head of the queue in claim order (jobs_ready), then the soonest delayed (jobs_delayed). */
    findJob: `SELECT id::text AS id, data, state FROM (
                (SELECT id, data, 'waiting' AS state, 0 AS part FROM ${s}.jobs WHERE queue = $1 AND owner IS NULL AND run_at IS NULL
                 ORDER BY priority DESC, (id + 0) LIMIT $3)
                UNION ALL
                (SELECT id, data, 'delayed', 1 FROM ${s}.jobs WHERE queue = $1 AND run_at IS NOT NULL ORDER BY run_at LIMIT $3)) AS head
              WHERE strpos(left(data, $4), $2) > 0 ORDER BY part LIMIT 1`,
    forget: `DELETE FROM ${s}.consumers WHERE queue = $1 AND id = $2`,
    /** $2 ttl ms. Drops the ones gone, answers the live ones. */
    consumers: `WITH gone AS (DELETE FROM ${s}.consumers WHERE queue = $1 AND seen_at <= now() - $2::double precision * interval '1 millisecond')
                SELECT id, state, (extract(epoch FROM seen_at) * 1000)::float8 AS seen_at FROM ${s}.consumers
                WHERE queue = $1 AND seen_at > now() - $2::double precision * interval '1 millisecond' ORDER BY id`,
  };
}

/** The control calls of one PostgresQueue; `remove` is its revoke. */
export class PostgresControl {
  readonly #sql: ReturnType<typeof controlStatements>;

  constructor(
    schema: string,
    private readonly queue: string,
    private readonly owner: string,
    private readonly query: Query,
    private readonly remove: (id: string) => Promise<boolean>,
  ) {
    this.#sql = controlStatements(schema);
  }

  async cancel(id: string, jobId: string): Promise<CancelOutcome> {
    // Revoke or mark; a lease lapsing (or a claim) between the two is seen and tried again.
    for (let turn = 0; turn < 5; turn++) {
      if (await this.remove(id)) return 'revoked';
      const { rows } = await this.query<{ marked: boolean; present: boolean }>('cancel', this.#sql.mark, [this.queue, id, jobId]);
      if (rows[0]!.marked) return 'signalled';
      if (!rows[0]!.present) return false;
    }
    return false;
  }

  async control(): Promise<QueueControl> {
    const { rows } = await this.query<{ listening: boolean; marks: Array<{ id: string; jobId: string; present: boolean; mine: boolean }> }>(
      'control',
      this.#sql.control,
      [this.queue, this.owner],
    );
    const { listening, marks } = rows[0]!;
    const cancels: CancelRequest[] = [];
    const gone: string[] = [];
    for (const mark of marks) {
      if (!mark.present) gone.push(mark.id);
      else if (mark.mine) cancels.push({ id: mark.id, jobId: mark.jobId });
    }
    if (gone.length > 0) await this.query('control', this.#sql.dropMarks, [this.queue, gone]);
    return { cancels, listening };
  }

  async listen(listenerId: string, ttlMs: number): Promise<number> {
    const { rows } = await this.query<{ last: string }>('registerListener', this.#sql.listen, [this.queue, listenerId, ttlMs]);
    return Number(rows[0]!.last);
  }

  async unlisten(listenerId: string): Promise<void> {
    await this.query('unregisterListener', this.#sql.unlisten, [this.queue, listenerId]);
  }

  async publish(events: readonly string[]): Promise<void> {
    if (events.length > 0) await this.query('publishEvents', this.#sql.publish, [this.queue, events]);
  }

  async heartbeat(id: string, state: string, counts: readonly ThroughputCount[]): Promise<void> {
    if (counts.length === 0) {
      await this.query('heartbeat', this.#sql.beat, [this.queue, id, state]);
      return;
    }
    const minutes = counts.map((c) => c.minute);
    const completed = counts.map((c) => c.completed);
    const failed = counts.map((c) => c.failed);
    await this.query('heartbeat', this.#sql.beatCounting, [this.queue, id, state, minutes, completed, failed, throughputSince(Date.now())]);
  }

  async findJob(needle: string, limit: number): Promise<FoundMessage | null> {
    const { rows } = await this.query<FoundMessage>('findJob', this.#sql.findJob, [this.queue, needle, limit, JOB_HEAD_CHARS]);
    return rows[0] ?? null;
  }

  async throughput(): Promise<ThroughputBucket[]> {
    const { rows } = await this.query<ThroughputBucket>('throughput', this.#sql.throughput, [this.queue, throughputSince(Date.now())]);
    return rows;
  }

  async forgetConsumer(id: string): Promise<void> {
    await this.query('forgetConsumer', this.#sql.forget, [this.queue, id]);
  }

  async consumers(): Promise<ConsumerRecord[]> {
    const { rows } = await this.query<{ id: string; state: string; seen_at: number }>('consumers', this.#sql.consumers, [this.queue, CONSUMER_TTL_MS]);
    return rows.map((r) => ({ id: r.id, state: r.state, seenAt: Math.round(r.seen_at) }));
  }

  async read(after: number, max: number): Promise<EventPage> {
    const { rows } = await this.query<{ last: string; seq: string | null; data: string | null }>('readEvents', this.#sql.read, [this.queue, after, max]);
    const events = rows.filter((r) => r.seq !== null).map((r) => ({ seq: Number(r.seq), data: r.data! }));
    return { events, last: Number(rows[0]?.last ?? 0) };
  }
}
