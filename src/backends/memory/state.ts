/**
 * The state behind MemoryQueue (how reads stay O(1) / O(log n): see
 * memory.ts), and the module-level registry that lets every instance with
 * the same store and queue name share it.
 */
import type { FailedMessage } from '../base.js';
import { MemoryControl } from './control.js';
import { MemoryGates } from './gates.js';
import { MinHeap } from './min-heap.js';

export interface Entry {
  readonly id: string;
  readonly seq: number;
  /** Higher is read first; `fresh` only ever holds priority 0 (see takeOldestSlot). */
  readonly priority: number;
  /** Replaced by retry(). */
  data: string;
  attempt: number;
  /** The delivery token of the current lease (BaseQueue.nextDelivery); -Infinity when never leased. */
  delivery: number;
  /** null while ready or delayed. */
  owner: string | null;
  deadline: number;
  /** Bumped on every lease or delay change, so stale heap records can be recognised. */
  generation: number;
  /** Removed while it sat in a ready structure: a tombstone reads skip. */
  removed: boolean;
  /** The unique key it holds (writeOnce), until it is done. */
  uniqueKey: string | null;
  /** The concurrency key whose slot it holds while leased (startGated). */
  slotKey: string | null;
  /** The concurrency key it is parked on, waiting for a slot. */
  parkedKey: string | null;
}

/**
 * Delivery tokens and deadlines are doubles (BaseQueue.nextDelivery is ms × 1000; a deadline is
 * epoch ms). Starting them at a double keeps every entry on one hidden class: starting them at
 * the small integer 0 had V8 deprecate that class at the first lease and migrate every queued
 * entry as a read touched it, about a third of a cold read's cost.
 */
const NEVER_LEASED = Number.NEGATIVE_INFINITY;

export function newEntry(id: string, seq: number, data: string, attempt: number, priority = 0): Entry {
  return {
    id,
    seq,
    priority,
    data,
    attempt,
    delivery: NEVER_LEASED,
    owner: null,
    deadline: NEVER_LEASED,
    generation: 0,
    removed: false,
    uniqueKey: null,
    slotKey: null,
    parkedKey: null,
  };
}

/** Read order: higher priority first, then oldest (lowest seq) first. */
function readBefore(a: Entry, b: Entry): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
}

interface DeadlineRecord {
  deadline: number;
  entry: Entry;
  generation: number;
}

interface DelayedRecord {
  runAt: number;
  entry: Entry;
  generation: number;
}

export interface StoredResult {
  record: string;
  expiresAt: number;
}

interface ResultExpiry {
  expiresAt: number;
  jobId: string;
  stored: StoredResult;
}

export interface FailedRecord extends FailedMessage {
  seq: number;
  priority: number;
}

export class QueueState {
  nextSeq = 1;
  readonly live = new Map<string, Entry>();
  fresh: Entry[] = [];
  freshHead = 0;
  /** Ready entries that are not plain appends of priority 0: returned ones and any other priority. */
  readonly returned = new MinHeap<Entry>(readBefore);
  readonly leased = new Map<string, Entry>();
  readonly deadlines = new MinHeap<DeadlineRecord>((a, b) => a.deadline < b.deadline);
  /** Ready entries removed while in `fresh` or `returned`, not yet skipped by a read. */
  tombstones = 0;
  readonly delayed = new Map<string, Entry>();
  readonly delayedByRunAt = new MinHeap<DelayedRecord>((a, b) => a.runAt < b.runAt || (a.runAt === b.runAt && a.entry.seq < b.entry.seq));
  readonly failed = new Map<string, FailedRecord>();
  readonly slots = new Map<string, number>();
  slotCalls = 0;
  readonly results = new Map<string, StoredResult>();
  readonly resultExpiries = new MinHeap<ResultExpiry>((a, b) => a.expiresAt < b.expiresAt);
  readonly waiters = new Set<() => void>();
  /** Unique key → the live message holding it, and when the hold lapses (Infinity: until it is done). */
  readonly uniques = new Map<string, { entry: Entry; expiresAt: number }>();
  readonly control = new MemoryControl(this.live);
  readonly gates: MemoryGates = new MemoryGates({
    unlease: (entry) => this.unlease(entry),
    delay: (entry, runAt) => this.delay(entry, runAt),
    makeReadyParked: (entry) => {
      entry.generation++;
      this.returned.push(entry);
      this.wake();
    },
    isLive: (entry) => this.live.get(entry.id) === entry,
  });

  /** The message done for good (acked, failed, removed): gone from the live set, its unique key free. */
  forget(entry: Entry): void {
    this.live.delete(entry.id);
    if (entry.uniqueKey !== null) {
      if (this.uniques.get(entry.uniqueKey)?.entry === entry) this.uniques.delete(entry.uniqueKey);
      entry.uniqueKey = null;
    }
  }

  /** The live message holding `key` now, if any. */
  holder(key: string, now: number): Entry | undefined {
    const hold = this.uniques.get(key);
    if (!hold) return undefined;
    if (hold.expiresAt > now && this.live.get(hold.entry.id) === hold.entry) return hold.entry;
    this.uniques.delete(key);
    return undefined;
  }

  readyCount(): number {
    return this.fresh.length - this.freshHead + this.returned.size - this.tombstones;
  }

  wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Appends a message, delayed when `runAt` is after `now`. */
  append(data: string, runAt: number | undefined, now: number, priority = 0): string {
    const seq = this.nextSeq++;
    const entry = newEntry(String(seq), seq, data, 0, priority);
    this.live.set(entry.id, entry);
    if (runAt !== undefined && runAt > now) this.delay(entry, runAt);
    // Appends of priority 0 arrive in seq order, so a plain array keeps them in read order (O(1));
    // any other priority goes through the heap.
    else if (priority === 0) this.fresh.push(entry);
    else this.returned.push(entry);
    return entry.id;
  }

  delay(entry: Entry, runAt: number): void {
    entry.generation++;
    this.delayed.set(entry.id, entry);
    this.delayedByRunAt.push({ runAt, entry, generation: entry.generation });
    // Removed delayed entries leave stale records behind; rebuild before they pile up.
    if (this.delayedByRunAt.size > 2 * this.delayed.size + 1024) {
      const current = (record: DelayedRecord) => this.delayed.get(record.entry.id) === record.entry && record.entry.generation === record.generation;
      this.delayedByRunAt.rebuild(this.delayedByRunAt.drain().filter(current));
    }
  }

  /** Makes every delayed entry with runAt ≤ now ready (in seq order among the ready ones); returns how many. */
  promote(now: number): number {
    let count = 0;
    for (let top = this.delayedByRunAt.peek(); top !== undefined && top.runAt <= now; top = this.delayedByRunAt.peek()) {
      this.delayedByRunAt.pop();
      const { entry, generation } = top;
      if (this.delayed.get(entry.id) !== entry || entry.generation !== generation) continue;
      this.delayed.delete(entry.id);
      entry.generation++;
      this.returned.push(entry);
      count++;
    }
    return count;
  }

  /** The next ready message in read order (highest priority, then oldest), removed from the ready structures. */
  takeOldest(): Entry | undefined {
    for (;;) {
      const entry = this.takeOldestSlot();
      if (!entry?.removed) return entry;
      this.tombstones--;
    }
  }

  private takeOldestSlot(): Entry | undefined {
    const fresh = this.fresh[this.freshHead];
    const back = this.returned.peek();
    if (fresh === undefined && back === undefined) return undefined;
    if (fresh !== undefined && (back === undefined || readBefore(fresh, back))) {
      this.fresh[this.freshHead++] = undefined as unknown as Entry;
      // Compact once the consumed prefix dominates, keeping reads O(1) amortised.
      if (this.freshHead > 1024 && this.freshHead * 2 > this.fresh.length) {
        this.fresh = this.fresh.slice(this.freshHead);
        this.freshHead = 0;
      }
      return fresh;
    }
    return this.returned.pop();
  }

  lease(entry: Entry, owner: string, deadline: number, delivery: number): void {
    entry.owner = owner;
    entry.delivery = delivery;
    entry.deadline = deadline;
    entry.generation++;
    entry.attempt++;
    this.leased.set(entry.id, entry);
    this.trackDeadline(entry);
  }

  trackDeadline(entry: Entry): void {
    this.deadlines.push({ deadline: entry.deadline, entry, generation: entry.generation });
    // Acked/extended leases leave stale records behind; rebuild before they pile up.
    if (this.deadlines.size > 2 * this.leased.size + 1024) {
      this.deadlines.rebuild([...this.leased.values()].map((e) => ({ deadline: e.deadline, entry: e, generation: e.generation })));
    }
  }

  /** Ends a lease without making the message ready (ack / fail). */
  unlease(entry: Entry): void {
    entry.owner = null;
    entry.generation++;
    this.leased.delete(entry.id);
    if (entry.slotKey !== null) this.gates.leaseEnded(entry);
  }

  makeReady(entry: Entry): void {
    this.unlease(entry);
    this.returned.push(entry);
  }

  /** Moves every lease whose deadline has passed back to ready; returns how many. */
  expire(now: number): number {
    let count = 0;
    for (let top = this.deadlines.peek(); top !== undefined && top.deadline < now; top = this.deadlines.peek()) {
      this.deadlines.pop();
      const { entry, generation } = top;
      if (entry.generation !== generation || entry.owner === null) continue;
      this.makeReady(entry);
      count++;
    }
    return count;
  }

  /** The earliest deadline of a live lease, dropping stale records on the way (so waits do not wake for acked leases). */
  nextDeadline(): number | undefined {
    for (let top = this.deadlines.peek(); top !== undefined; top = this.deadlines.peek()) {
      if (top.entry.generation === top.generation && top.entry.owner !== null) return top.deadline;
      this.deadlines.pop();
    }
    return undefined;
  }

  /** The entry when `owner` holds a live lease on it (under `delivery`, when given). */
  held(id: string, owner: string, now: number, delivery?: number): Entry | undefined {
    const entry = this.leased.get(id);
    return entry && entry.owner === owner && entry.deadline >= now && (delivery === undefined || entry.delivery === delivery) ? entry : undefined;
  }

  /** Deletes a ready, delayed or lease-expired message; false for a live lease, a failed or an unknown one. */
  remove(id: string, now: number): boolean {
    const entry = this.live.get(id);
    if (!entry) return false;
    if (this.delayed.delete(id)) {
      entry.generation++;
    } else if (this.gates.unpark(entry)) {
      entry.generation++;
    } else if (entry.owner !== null) {
      if (entry.deadline >= now) return false;
      this.unlease(entry);
    } else {
      entry.removed = true;
      this.tombstones++;
    }
    this.forget(entry);
    return true;
  }

  setResult(jobId: string, record: string, expiresAt: number): void {
    const stored: StoredResult = { record, expiresAt };
    this.results.set(jobId, stored);
    this.resultExpiries.push({ expiresAt, jobId, stored });
    // Overwritten records leave stale expiry records behind; rebuild before they pile up.
    if (this.resultExpiries.size > 2 * this.results.size + 1024) {
      this.resultExpiries.rebuild([...this.results].map(([key, value]) => ({ expiresAt: value.expiresAt, jobId: key, stored: value })));
    }
  }

  /** Drops every result record that has expired: a pop per expired record, nothing when none has. */
  purgeResults(now: number): void {
    for (let top = this.resultExpiries.peek(); top !== undefined && top.expiresAt <= now; top = this.resultExpiries.peek()) {
      this.resultExpiries.pop();
      if (this.results.get(top.jobId) === top.stored) this.results.delete(top.jobId);
    }
  }

  flush(): void {
    this.live.clear();
    this.control.clearMarks();
    this.uniques.clear();
    this.gates.clear();
    this.fresh = [];
    this.freshHead = 0;
    this.returned.clear();
    this.tombstones = 0;
    this.leased.clear();
    this.deadlines.clear();
    this.delayed.clear();
    this.delayedByRunAt.clear();
    this.failed.clear();
    this.slots.clear();
    this.results.clear();
    this.resultExpiries.clear();
  }

  purgeSlots(now: number): void {
    for (const [key, expiresAt] of this.slots) if (expiresAt <= now) this.slots.delete(key);
  }
}

const stores = new Map<string, Map<string, QueueState>>();

export function stateFor(store: string, name: string): QueueState {
  let queues = stores.get(store);
  if (!queues) stores.set(store, (queues = new Map<string, QueueState>()));
  let state = queues.get(name);
  if (!state) queues.set(name, (state = new QueueState()));
  return state;
}

/** Forgets every memory store (tests). Open MemoryQueue instances keep their old state. */
export function resetMemoryStores(): void {
  stores.clear();
}
