/**
 * MemoryQueue: one process, no I/O. Instances with the same store and queue
 * name share one state through a module-level registry, so a producer and a
 * consumer in one process see one queue.
 *
 * Reads cost O(1) amortised for fresh messages (an array FIFO with a moving
 * head) and O(log n) for messages that came back (released, lease expired,
 * re-queued), which sit in a min-heap by sequence so they are read before
 * younger messages. Expired leases are found through a deadline heap with
 * lazy deletion; nothing scans all messages on a read.
 */
import { ConfigError, QueueConnectionError } from '../errors.js';
import { BaseQueue, type FailedMessage, type QueueMessage, type QueueOptions, type QueueStats } from './base.js';

class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(items[l]!, items[best]!)) best = l;
        if (r < items.length && this.before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }

  clear(): void {
    this.items.length = 0;
  }

  rebuild(items: Iterable<T>): void {
    this.clear();
    for (const item of items) this.push(item);
  }
}

interface Entry {
  readonly id: string;
  readonly seq: number;
  readonly data: string;
  attempt: number;
  /** null while ready. */
  owner: string | null;
  deadline: number;
  /** Bumped on every lease change, so stale deadline-heap records can be recognised. */
  generation: number;
}

interface DeadlineRecord {
  deadline: number;
  entry: Entry;
  generation: number;
}

interface FailedRecord extends FailedMessage {
  seq: number;
}

class QueueState {
  nextSeq = 1;
  readonly live = new Map<string, Entry>();
  fresh: Entry[] = [];
  freshHead = 0;
  readonly returned = new MinHeap<Entry>((a, b) => a.seq < b.seq);
  readonly leased = new Map<string, Entry>();
  readonly deadlines = new MinHeap<DeadlineRecord>((a, b) => a.deadline < b.deadline);
  readonly failed = new Map<string, FailedRecord>();
  readonly slots = new Map<string, number>();
  slotCalls = 0;
  readonly waiters = new Set<() => void>();

  readyCount(): number {
    return this.fresh.length - this.freshHead + this.returned.size;
  }

  wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  append(data: string): string {
    const seq = this.nextSeq++;
    const entry: Entry = { id: String(seq), seq, data, attempt: 0, owner: null, deadline: 0, generation: 0 };
    this.live.set(entry.id, entry);
    this.fresh.push(entry);
    return entry.id;
  }

  /** Oldest ready message (fresh or returned), removed from the ready structures. */
  takeOldest(): Entry | undefined {
    const fresh = this.fresh[this.freshHead];
    const back = this.returned.peek();
    if (fresh === undefined && back === undefined) return undefined;
    if (fresh !== undefined && (back === undefined || fresh.seq < back.seq)) {
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

  lease(entry: Entry, owner: string, deadline: number): void {
    entry.owner = owner;
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

  /** The entry when `owner` holds a live lease on it. */
  held(id: string, owner: string, now: number): Entry | undefined {
    const entry = this.leased.get(id);
    return entry && entry.owner === owner && entry.deadline >= now ? entry : undefined;
  }

  flush(): void {
    this.live.clear();
    this.fresh = [];
    this.freshHead = 0;
    this.returned.clear();
    this.leased.clear();
    this.deadlines.clear();
    this.failed.clear();
    this.slots.clear();
  }

  purgeSlots(now: number): void {
    for (const [key, expiresAt] of this.slots) if (expiresAt <= now) this.slots.delete(key);
  }
}

const stores = new Map<string, Map<string, QueueState>>();

function stateFor(store: string, name: string): QueueState {
  let queues = stores.get(store);
  if (!queues) stores.set(store, (queues = new Map()));
  let state = queues.get(name);
  if (!state) queues.set(name, (state = new QueueState()));
  return state;
}

/** Forgets every memory store (tests). Open MemoryQueue instances keep their old state. */
export function resetMemoryStores(): void {
  stores.clear();
}

function checkData(data: unknown): string {
  if (typeof data !== 'string') throw new ConfigError(`message data must be a string, got ${typeof data}`);
  return data;
}

function checkMax(max: number): number {
  if (!Number.isInteger(max) || max < 0) throw new ConfigError(`invalid batch size ${String(max)}: must be an integer >= 0`);
  return max;
}

function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new ConfigError(`invalid slot ttlMs ${String(ttlMs)}: must be a number of milliseconds > 0`);
  return ttlMs;
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key === '') throw new ConfigError('slot key must be a non-empty string');
  return key;
}

export class MemoryQueue extends BaseQueue {
  /** waitForMessages resolves as soon as a message becomes ready in this queue. */
  override readonly blocking: boolean = true;
  readonly store: string;
  private readonly state: QueueState;
  private closed = false;
  private readonly ownWaiters = new Set<() => void>();

  constructor(store = 'default', options: QueueOptions = {}) {
    super(options);
    this.store = store;
    this.state = stateFor(store, this.name);
  }

  private live(): QueueState {
    if (this.closed) throw new QueueConnectionError(`memory queue "${this.name}" (store "${this.store}") is closed`);
    return this.state;
  }

  async write(data: string): Promise<string> {
    const state = this.live();
    const id = state.append(checkData(data));
    state.wake();
    return id;
  }

  /** Appends several messages at once; resolves with their ids in order. */
  async writeBatch(datas: readonly string[]): Promise<string[]> {
    const state = this.live();
    for (const data of datas) checkData(data);
    const ids = datas.map((data) => state.append(data));
    if (ids.length > 0) state.wake();
    return ids;
  }

  async readBatch(max: number): Promise<QueueMessage[]> {
    const state = this.live();
    checkMax(max);
    const now = Date.now();
    state.expire(now);
    const out: QueueMessage[] = [];
    const deadline = now + this.leaseMs;
    while (out.length < max) {
      const entry = state.takeOldest();
      if (!entry) break;
      state.lease(entry, this.owner, deadline);
      out.push({ id: entry.id, data: entry.data, attempt: entry.attempt });
    }
    return out;
  }

  async ackBatch(ids: readonly string[]): Promise<string[]> {
    const state = this.live();
    const now = Date.now();
    const refused: string[] = [];
    for (const id of ids) {
      const entry = state.held(id, this.owner, now);
      if (!entry) {
        refused.push(id);
        continue;
      }
      state.unlease(entry);
      state.live.delete(id);
    }
    return refused;
  }

  async release(ids: readonly string[]): Promise<void> {
    const state = this.live();
    const now = Date.now();
    let released = 0;
    for (const id of ids) {
      const entry = state.held(id, this.owner, now);
      if (!entry) continue;
      entry.attempt = Math.max(0, entry.attempt - 1);
      state.makeReady(entry);
      released++;
    }
    if (released > 0) state.wake();
  }

  async extend(ids: readonly string[]): Promise<string[]> {
    const state = this.live();
    const now = Date.now();
    const refused: string[] = [];
    for (const id of ids) {
      const entry = state.held(id, this.owner, now);
      if (!entry) {
        refused.push(id);
        continue;
      }
      entry.deadline = now + this.leaseMs;
      entry.generation++;
      state.trackDeadline(entry);
    }
    return refused;
  }

  async fail(id: string, error: string): Promise<boolean> {
    const state = this.live();
    const entry = state.held(id, this.owner, Date.now());
    if (!entry) return false;
    state.unlease(entry);
    state.live.delete(id);
    state.failed.set(id, { id, seq: entry.seq, data: entry.data, attempt: entry.attempt, error: String(error), failedAt: new Date() });
    return true;
  }

  async reclaim(): Promise<number> {
    const state = this.live();
    const count = state.expire(Date.now());
    if (count > 0) state.wake();
    return count;
  }

  async failed(limit = 100): Promise<FailedMessage[]> {
    const state = this.live();
    checkMax(limit);
    const out: FailedMessage[] = [];
    for (const record of state.failed.values()) {
      if (out.length >= limit) break;
      out.push({ id: record.id, data: record.data, attempt: record.attempt, error: record.error, failedAt: new Date(record.failedAt) });
    }
    return out;
  }

  async requeueFailed(ids?: readonly string[]): Promise<number> {
    const state = this.live();
    const chosen = ids ?? [...state.failed.keys()];
    let count = 0;
    for (const id of chosen) {
      const record = state.failed.get(id);
      if (!record) continue;
      state.failed.delete(id);
      const entry: Entry = { id, seq: record.seq, data: record.data, attempt: 0, owner: null, deadline: 0, generation: 0 };
      state.live.set(id, entry);
      state.returned.push(entry);
      count++;
    }
    if (count > 0) state.wake();
    return count;
  }

  async purgeFailed(ids?: readonly string[]): Promise<number> {
    const state = this.live();
    if (!ids) {
      const count = state.failed.size;
      state.failed.clear();
      return count;
    }
    let count = 0;
    for (const id of ids) if (state.failed.delete(id)) count++;
    return count;
  }

  async stats(): Promise<QueueStats> {
    const state = this.live();
    return { ready: state.readyCount(), leased: state.leased.size, failed: state.failed.size };
  }

  async writeUnique(key: string, data: string, ttlMs: number): Promise<string | null> {
    const state = this.live();
    checkKey(key);
    checkData(data);
    checkTtl(ttlMs);
    const now = Date.now();
    if (++state.slotCalls % 256 === 0) state.purgeSlots(now);
    const claimedUntil = state.slots.get(key);
    if (claimedUntil !== undefined && claimedUntil > now) return null;
    state.slots.set(key, now + ttlMs);
    const id = state.append(data);
    state.wake();
    return id;
  }

  async flush(): Promise<void> {
    this.live().flush();
  }

  async length(): Promise<number> {
    return this.live().readyCount();
  }

  override async open(): Promise<void> {
    this.live();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of [...this.ownWaiters]) waiter();
  }

  override waitForMessages(timeoutMs: number, signal: AbortSignal): Promise<void> {
    const state = this.state;
    if (this.closed || signal.aborted) return Promise.resolve();
    state.expire(Date.now());
    if (state.readyCount() > 0) return Promise.resolve();
    // An expiring lease makes a message ready without any write: wake for it too.
    const nextDeadline = state.nextDeadline();
    const wait = nextDeadline === undefined ? timeoutMs : Math.min(timeoutMs, Math.max(0, nextDeadline - Date.now() + 1));
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        state.waiters.delete(done);
        this.ownWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, wait));
      signal.addEventListener('abort', done, { once: true });
      state.waiters.add(done);
      this.ownWaiters.add(done);
    });
  }
}
