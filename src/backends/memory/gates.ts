/**
 * Rate windows and concurrency slots of one memory queue (BaseQueue.startGated
 * states the rules). Everything here runs inside one synchronous call, so each
 * decision is atomic for every instance sharing the state.
 */
import { reserveAt, type StartGates, type StartOutcome } from '../base.js';
import { MinHeap } from './min-heap.js';
import type { Entry } from './state.js';

/** One recorded start, or a start booked for a deferred message (`reservedFor`). */
interface Start {
  at: number;
  reservedFor: string | null;
}

/** What the gates need of the queue: how an entry leaves the lease and where it waits. */
export interface GateHost {
  unlease(entry: Entry): void;
  delay(entry: Entry, runAt: number): void;
  makeReadyParked(entry: Entry): void;
  isLive(entry: Entry): boolean;
}

const STARTED: StartOutcome = Object.freeze({ decision: 'started' });
const DEFERRED: StartOutcome = Object.freeze({ decision: 'deferred' });

const readBefore = (a: Entry, b: Entry) => a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);

export class MemoryGates {
  /** Per rate key: its starts, sorted by time. */
  private readonly logs = new Map<string, Start[]>();
  /** Per concurrency key: the entries that took a slot (some may have lapsed since). */
  private readonly holders = new Map<string, Set<Entry>>();
  /** Per concurrency key: parked entries, read order. */
  private readonly parked = new Map<string, MinHeap<Entry>>();
  parkedCount = 0;

  constructor(private readonly host: GateHost) {}

  start(entry: Entry, gates: StartGates, now: number): StartOutcome {
    const { rate, concurrency } = gates;
    const booked = { had: false };
    const log = rate ? this.window(rate.key, rate.perMs, now, entry.id, booked) : undefined;
    if (concurrency) {
      const held = this.held(concurrency.key, entry, now);
      if (held >= concurrency.limit) {
        if (rate && log?.length === 0) this.logs.delete(rate.key);
        this.park(entry, concurrency.key);
        return DEFERRED;
      }
    }
    if (rate && log) {
      let due = 0;
      while (due < log.length && log[due]!.at <= now) due++;
      if (due >= rate.limit) {
        const at = reserveAt(
          log.map((s) => s.at),
          rate.limit,
          rate.perMs,
          now,
          booked.had,
        );
        let i = log.length;
        while (i > 0 && log[i - 1]!.at > at) i--;
        log.splice(i, 0, { at, reservedFor: entry.id });
        this.host.unlease(entry);
        entry.attempt = Math.max(0, entry.attempt - 1);
        this.host.delay(entry, at);
        return { decision: 'deferred', runAt: at };
      }
      log.splice(due, 0, { at: now, reservedFor: null });
    }
    if (concurrency) {
      const key = concurrency.key;
      let set = this.holders.get(key);
      if (!set) this.holders.set(key, (set = new Set()));
      set.add(entry);
      entry.slotKey = key;
      // Spare slots with jobs parked (a limit raised since they parked): wake them now.
      const spare = concurrency.limit - this.held(key, null, now);
      if (spare > 0) this.wake(key, spare);
    }
    return STARTED;
  }

  /** The entry's lease ends (ack, fail, retry, release, expiry, park): a slot it held is free. */
  leaseEnded(entry: Entry): void {
    const key = entry.slotKey;
    if (key === null) return;
    entry.slotKey = null;
    this.holders.get(key)?.delete(entry);
    this.wake(key, 1);
  }

  /** A parked entry removed (revoke): it no longer counts. */
  unpark(entry: Entry): boolean {
    if (entry.parkedKey === null) return false;
    entry.parkedKey = null; // the heap drops it lazily
    this.parkedCount--;
    return true;
  }

  clear(): void {
    this.logs.clear();
    this.holders.clear();
    this.parked.clear();
    this.parkedCount = 0;
  }

  /** The key's log with starts that left the window dropped, and `id`'s own reservation taken out. */
  private window(key: string, perMs: number, now: number, id: string, booked: { had: boolean }): Start[] {
    let log = this.logs.get(key);
    if (!log) this.logs.set(key, (log = []));
    let old = 0;
    while (old < log.length && log[old]!.at <= now - perMs) old++;
    if (old > 0) log.splice(0, old);
    const own = log.findIndex((s) => s.reservedFor === id);
    if (own >= 0) {
      log.splice(own, 1);
      booked.had = true;
    }
    return log;
  }

  /** Slots of `key` held by live leases, `self` not counted; lapsed holders are dropped. */
  private held(key: string, self: Entry | null, now: number): number {
    const set = this.holders.get(key);
    if (!set) return 0;
    let count = 0;
    for (const holder of set) {
      if (holder.slotKey !== key || holder.owner === null || holder.deadline < now || !this.host.isLive(holder)) {
        set.delete(holder);
        continue;
      }
      if (holder !== self) count++;
    }
    return count;
  }

  private park(entry: Entry, key: string): void {
    this.host.unlease(entry);
    entry.attempt = Math.max(0, entry.attempt - 1);
    entry.parkedKey = key;
    this.parkedCount++;
    let heap = this.parked.get(key);
    if (!heap) this.parked.set(key, (heap = new MinHeap<Entry>(readBefore)));
    heap.push(entry);
  }

  private wake(key: string, count: number): void {
    const heap = this.parked.get(key);
    if (!heap) return;
    let woken = 0;
    while (woken < count) {
      const entry = heap.pop();
      if (!entry) break;
      if (entry.parkedKey !== key || !this.host.isLive(entry)) continue;
      entry.parkedKey = null;
      this.parkedCount--;
      this.host.makeReadyParked(entry);
      woken++;
    }
    if (heap.size === 0) this.parked.delete(key);
  }
}
