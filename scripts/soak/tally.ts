/**
 * Counts a soak run from outside the queue: the producer's log (which enqueue
 * calls were acknowledged), the consumers' record file (which messages ran,
 * by whom), and what the queue still holds (failed store, left over).
 *
 * A message is identified by (job, try): a rejected enqueue is retried under
 * the next try number, so a rejected write that was in fact written (its reply
 * was lost) shows up as a run of an unacknowledged try — counted apart as
 * "maybe written", never as a duplicate.
 */
import { existsSync, readFileSync } from 'node:fs';

export interface Leftovers {
  /** `job try` keys of messages in the failed store, with the reason of each. */
  failed: Map<string, string>;
  /** `job try` keys of messages still ready or leased at the end. */
  queued: Set<string>;
}

/** A server outage: from the moment the stop began to the moment the server answered again (ms). */
export interface Outage {
  from: number;
  to: number;
}

export interface Tally {
  enqueued: number;
  completed: number;
  duplicated: number;
  duplicatedAfterKill9: number;
  /**
   * Duplicates whose first run was near a server outage: its ack could not
   * reach the server before the lease ran out, so the job ran again (at least once).
   */
  duplicatedAfterOutage: number;
  /** Up to five duplicated messages explained by neither: `job try by pid+pid`. */
  otherDuplicates: string[];
  lost: string[];
  failedStore: number;
  failedReasons: Map<string, number>;
  leftQueued: number;
  rejectedEnqueues: number;
  /** Rejected enqueue calls whose message ran anyway (the write happened; its reply was lost). */
  maybeWrittenRan: number;
  runs: number;
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

export function tally(
  producerLog: string,
  recordFile: string,
  leftovers: Leftovers,
  killedPids: ReadonlySet<number>,
  outages: readonly Outage[],
  leaseMs: number,
): Tally {
  const acknowledged = new Set<string>();
  const rejected = new Set<string>();
  for (const line of lines(producerLog)) {
    const [status, job, enqueueTry] = line.split(' ');
    (status === 'ok' ? acknowledged : rejected).add(`${job} ${enqueueTry}`);
  }

  const runsOf = new Map<string, Array<{ pid: number; at: number }>>();
  const records = lines(recordFile);
  for (const line of records) {
    const [job, enqueueTry, , pid, at] = line.split(' ');
    const key = `${job} ${enqueueTry}`;
    const runs = runsOf.get(key) ?? [];
    runs.push({ pid: Number(pid), at: Number(at) });
    runsOf.set(key, runs);
  }
  // A run this close to an outage may have had its ack (or lease extension) refused for it.
  const nearOutage = (at: number) => outages.some((o) => at >= o.from - 2 * leaseMs && at <= o.to + 2 * leaseMs);

  let completed = 0;
  let duplicated = 0;
  let duplicatedAfterKill9 = 0;
  let duplicatedAfterOutage = 0;
  const otherDuplicates: string[] = [];
  const lost: string[] = [];
  for (const key of acknowledged) {
    const runs = runsOf.get(key);
    if (!runs) {
      if (!leftovers.failed.has(key) && !leftovers.queued.has(key)) lost.push(key);
      continue;
    }
    completed++;
    if (runs.length > 1) {
      duplicated++;
      const earlier = runs.slice(0, -1);
      // Every run but the last was by a consumer that was then killed: at least once, as promised.
      if (earlier.every((run) => killedPids.has(run.pid))) duplicatedAfterKill9++;
      else if (earlier.every((run) => killedPids.has(run.pid) || nearOutage(run.at))) duplicatedAfterOutage++;
      else if (otherDuplicates.length < 5) otherDuplicates.push(`${key} by ${runs.map((run) => run.pid).join('+')}`);
    }
  }

  let maybeWrittenRan = 0;
  for (const key of rejected) if (runsOf.has(key) || leftovers.failed.has(key) || leftovers.queued.has(key)) maybeWrittenRan++;

  const failedReasons = new Map<string, number>();
  for (const reason of leftovers.failed.values()) {
    const short = reason.split('\n')[0]!.slice(0, 80);
    failedReasons.set(short, (failedReasons.get(short) ?? 0) + 1);
  }

  return {
    enqueued: acknowledged.size,
    completed,
    duplicated,
    duplicatedAfterKill9,
    duplicatedAfterOutage,
    otherDuplicates,
    lost,
    failedStore: leftovers.failed.size,
    failedReasons,
    leftQueued: leftovers.queued.size,
    rejectedEnqueues: rejected.size,
    maybeWrittenRan,
    runs: records.length,
  };
}
