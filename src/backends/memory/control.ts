/**
 * Cancel marks, events listeners and the events log of one memory queue
 * (./control.ts in backends/ states the rules). Everything runs inside one
 * synchronous call, so each step is atomic for every instance sharing it.
 */
import {
  addThroughput,
  CONSUMER_TTL_MS,
  MAX_EVENTS,
  throughputSince,
  type CancelRequest,
  type ConsumerRecord,
  type EventPage,
  type LoggedEvent,
  type ThroughputBucket,
  type ThroughputCount,
} from '../control.js';
import type { Entry } from './state.js';

export class MemoryControl {
  /** Message id → the job id its cancel mark is for. */
  private readonly marks = new Map<string, string>();
  /** Listener id → when its registration lapses. */
  private readonly listeners = new Map<string, number>();
  /** The log: contiguous sequence numbers, oldest first. */
  private events: LoggedEvent[] = [];
  private lastSeq = 0;
  /** Consumer id → its last heartbeat. */
  private readonly beats = new Map<string, { state: string; seenAt: number }>();
  /** Minute → the jobs settled in it, as the heartbeats reported them. */
  private readonly settled = new Map<number, ThroughputBucket>();

  constructor(private readonly live: ReadonlyMap<string, Entry>) {}

  /** A mark on a message a consumer holds (the caller removed it already if it had not started). */
  mark(id: string, jobId: string, now: number): boolean {
    const entry = this.live.get(id);
    if (!entry || entry.owner === null || entry.deadline < now) return false;
    this.marks.set(id, jobId);
    return true;
  }

  /** The marks on `owner`'s live leases; marks whose message is gone are dropped. */
  cancelsFor(owner: string, now: number): CancelRequest[] {
    const found: CancelRequest[] = [];
    for (const [id, jobId] of this.marks) {
      const entry = this.live.get(id);
      if (!entry) this.marks.delete(id);
      else if (entry.owner === owner && entry.deadline >= now) found.push({ id, jobId });
    }
    return found;
  }

  listen(listenerId: string, until: number): number {
    this.listeners.set(listenerId, until);
    return this.lastSeq;
  }

  unlisten(listenerId: string): void {
    this.listeners.delete(listenerId);
  }

  listening(now: number): boolean {
    for (const [id, until] of this.listeners) {
      if (until > now) return true;
      this.listeners.delete(id);
    }
    return false;
  }

  publish(datas: readonly string[]): void {
    for (const data of datas) this.events.push({ seq: ++this.lastSeq, data });
    // Trimmed in steps of a tenth, so a steady stream does not copy the log on every publish.
    if (this.events.length > MAX_EVENTS + MAX_EVENTS / 10) this.events = this.events.slice(this.events.length - MAX_EVENTS);
  }

  read(after: number, max: number): EventPage {
    const first = this.events[0]?.seq ?? this.lastSeq + 1;
    const from = Math.max(0, Math.floor(after) + 1 - first);
    return { events: this.events.slice(from, from + max), last: this.lastSeq };
  }

  heartbeat(id: string, state: string, counts: readonly ThroughputCount[], now: number): void {
    this.beats.set(id, { state, seenAt: now });
    if (counts.length > 0) addThroughput(this.settled, counts, now);
  }

  throughput(now: number): ThroughputBucket[] {
    const oldest = throughputSince(now);
    return [...this.settled.values()]
      .filter((b) => b.minute >= oldest)
      .map((b) => ({ ...b }))
      .sort((a, b) => a.minute - b.minute);
  }

  forgetConsumer(id: string): void {
    this.beats.delete(id);
  }

  consumers(now: number): ConsumerRecord[] {
    const live: ConsumerRecord[] = [];
    for (const [id, beat] of this.beats) {
      if (beat.seenAt + CONSUMER_TTL_MS <= now) this.beats.delete(id);
      else live.push({ id, state: beat.state, seenAt: beat.seenAt });
    }
    return live.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  clearMarks(): void {
    this.marks.clear();
  }
}
