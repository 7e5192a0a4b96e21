/**
 * The jobs this consumer settled, per queue and minute, until its next
 * heartbeat carries them to the backend (BaseQueue.heartbeat's counts): the
 * dashboard's throughput history, at the cost of one counter increment per
 * job and no write of its own. A heartbeat that fails gives its counts back,
 * so an outage delays them rather than losing them (up to the backend's
 * window; older minutes would be trimmed anyway).
 */
import { THROUGHPUT_BUCKET_MS, throughputSince, type ThroughputCount } from '../backends/control.js';

export class ThroughputTally {
  /** Per queue (member index): the minute being counted, mutated in place per job. */
  readonly #current: ThroughputCount[];
  /** Minutes closed, or given back by a failed heartbeat, not yet sent. */
  #pending: ThroughputCount[] = [];

  /** `names`: the queues by member index; `memberOf`: which of them a message id came from (-1: the first). */
  constructor(
    private readonly names: readonly string[],
    private readonly memberOf: (id: string) => number = () => 0,
  ) {
    this.#current = names.map((queue) => ({ queue, minute: 0, completed: 0, failed: 0 }));
  }

  /** Message `id` was settled: acked (completed) or moved to the failed store. */
  settled(id: string, failed: boolean): void {
    const now = Date.now();
    const minute = now - (now % THROUGHPUT_BUCKET_MS);
    const index = this.names.length === 1 ? 0 : Math.max(0, this.memberOf(id));
    let count = this.#current[index]!;
    if (count.minute !== minute) {
      if (count.completed + count.failed > 0) this.#pending.push(count);
      count = this.#current[index] = { queue: count.queue, minute, completed: 0, failed: 0 };
    }
    if (failed) count.failed++;
    else count.completed++;
  }

  /** The counts not yet sent, each (queue, minute) once; the tally starts from zero. */
  take(): ThroughputCount[] {
    const all = this.#pending;
    this.#pending = [];
    for (const count of this.#current) {
      if (count.completed + count.failed === 0) continue;
      all.push({ ...count });
      count.completed = 0;
      count.failed = 0;
    }
    return all.length === 0 ? all : merge(all, Date.now());
  }

  /** Counts a heartbeat could not deliver: sent again with the next one. */
  giveBack(counts: readonly ThroughputCount[]): void {
    this.#pending.push(...counts);
  }

  get empty(): boolean {
    return this.#pending.length === 0 && this.#current.every((c) => c.completed + c.failed === 0);
  }
}

/** One count per (queue, minute), summed, without the minutes the backend's window no longer holds. */
function merge(counts: readonly ThroughputCount[], now: number): ThroughputCount[] {
  const oldest = throughputSince(now);
  const byKey = new Map<string, ThroughputCount>();
  for (const c of counts) {
    if (c.minute < oldest) continue;
    const key = `${c.queue}\u0000${c.minute}`;
    const seen = byKey.get(key);
    if (seen) {
      seen.completed += c.completed;
      seen.failed += c.failed;
    } else byKey.set(key, { ...c });
  }
  return [...byKey.values()];
}
