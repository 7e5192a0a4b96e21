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
 *
 * Delayed messages wait in a (runAt, seq) min-heap until promoteDue() moves
 * the due ones into the sequence heap, so they are read in id order. Removed
 * ready messages stay in the ready structures as tombstones that reads skip.
 * Result records live in a Map with an expiry heap that setResults() drains.
 */
import { ConfigError, QueueConnectionError } from '../../shared/errors.js';
import {
  BaseQueue,
  checkKeyTtl,
  checkPriority,
  checkUniqueKey,
  checkResultList,
  checkResultRecord,
  checkRetryRunAt,
  checkSlotTtl,
  checkStartGates,
  checkWriteRunAt,
  type WriteOnceOptions,
  type WriteOnceResult,
  type FailedMessage,
  type QueueMessage,
  type QueueOptions,
  type QueueStats,
  type ResultRecord,
  type StartOutcome,
  type StartGates,
  type WriteOptions,
} from '../base.js';
import { newEntry, stateFor, type QueueState } from './state.js';
import {
  LISTENER_TTL_MS,
  checkCancel,
  checkEventRead,
  checkHeartbeat,
  checkFindJob,
  jobNeedle,
  JOB_HEAD_CHARS,
  checkListenerId,
  type CancelOutcome,
  type ConsumerRecord,
  type FoundMessage,
  type ThroughputBucket,
  type ThroughputCount,
  type EventPage,
  type QueueControl,
} from '../control.js';

export { resetMemoryStores } from './state.js';

const LOST: StartOutcome = Object.freeze({ decision: 'lost' });

function checkData(data: unknown): string {
  if (typeof data !== 'string') throw new ConfigError(`message data must be a string, got ${typeof data}`);
  return data;
}

function checkMax(max: number): number {
  if (!Number.isInteger(max) || max < 0) throw new ConfigError(`invalid batch size ${String(max)}: must be an integer >= 0`);
  return max;
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

  async write(data: string, options: WriteOptions = {}): Promise<string> {
    const state = this.live();
    checkData(data);
    const runAt = checkWriteRunAt(options.runAt, this, 'write');
    const priority = checkPriority(options.priority);
    const now = Date.now();
    const id = state.append(data, runAt, now, priority);
    if (!state.delayed.has(id)) state.wake();
    return id;
  }

  /** Appends several messages at once (all delayed until `options.runAt` if it is in the future); resolves with their ids in order. */
  override async writeBatch(datas: readonly string[], options: WriteOptions = {}): Promise<string[]> {
    const state = this.live();
    for (const data of datas) checkData(data);
    const runAt = checkWriteRunAt(options.runAt, this, 'writeBatch');
    const priority = checkPriority(options.priority);
    const now = Date.now();
    const ids = datas.map((data) => state.append(data, runAt, now, priority));
    if (ids.length > 0 && !(runAt !== undefined && runAt > now)) state.wake();
    return ids;
  }

  override async writeOnce(key: string, data: string, options: WriteOnceOptions = {}): Promise<WriteOnceResult> {
    const state = this.live();
    checkUniqueKey(key);
    checkData(data);
    const runAt = checkWriteRunAt(options.runAt, this, 'writeOnce');
    const priority = checkPriority(options.priority);
    const ttl = checkKeyTtl(options.keyTtlMs);
    const now = Date.now();
    const holder = state.holder(key, now);
    if (holder) return { id: holder.id, duplicate: true, data: holder.data };
    const id = state.append(data, runAt, now, priority);
    const entry = state.live.get(id)!;
    entry.uniqueKey = key;
    state.uniques.set(key, { entry, expiresAt: ttl === undefined ? Number.POSITIVE_INFINITY : now + ttl });
    if (!state.delayed.has(id)) state.wake();
    return { id, duplicate: false };
  }

  async readBatch(max: number): Promise<QueueMessage[]> {
    const state = this.live();
    checkMax(max);
    const now = Date.now();
    state.expire(now);
    const out: QueueMessage[] = [];
    const deadline = now + this.leaseMs;
    const delivery = this.nextDelivery();
    while (out.length < max) {
      const entry = state.takeOldest();
      if (!entry) break;
      state.lease(entry, this.owner, deadline, delivery);
      out.push({ id: entry.id, data: entry.data, attempt: entry.attempt, delivery });
    }
    return out;
  }

  async ackBatch(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
    const state = this.live();
    const now = Date.now();
    const refused: string[] = [];
    for (const [i, id] of ids.entries()) {
      const entry = state.held(id, this.owner, now, deliveries?.[i]);
      if (!entry) {
        refused.push(id);
        continue;
      }
      state.unlease(entry);
      state.forget(entry);
    }
    return refused;
  }

  async release(ids: readonly string[], deliveries?: readonly number[]): Promise<void> {
    const state = this.live();
    const now = Date.now();
    let released = 0;
    for (const [i, id] of ids.entries()) {
      const entry = state.held(id, this.owner, now, deliveries?.[i]);
      if (!entry) continue;
      entry.attempt = Math.max(0, entry.attempt - 1);
      state.makeReady(entry);
      released++;
    }
    if (released > 0) state.wake();
  }

  async extend(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
    const state = this.live();
    const now = Date.now();
    const refused: string[] = [];
    for (const [i, id] of ids.entries()) {
      const entry = state.held(id, this.owner, now, deliveries?.[i]);
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

  async fail(id: string, error: string, delivery?: number): Promise<boolean> {
    const state = this.live();
    const entry = state.held(id, this.owner, Date.now(), delivery);
    if (!entry) return false;
    state.unlease(entry);
    state.forget(entry);
    state.failed.set(id, {
      id,
      seq: entry.seq,
      priority: entry.priority,
      data: entry.data,
      attempt: entry.attempt,
      error: String(error),
      failedAt: new Date(),
    });
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
      const entry = newEntry(id, record.seq, record.data, 0, record.priority);
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
    return { ready: state.readyCount(), leased: state.leased.size, failed: state.failed.size, delayed: state.delayed.size + state.gates.parkedCount };
  }

  override async retry(id: string, data: string, runAt: number, delivery?: number): Promise<boolean> {
    const state = this.live();
    checkData(data);
    const until = checkRetryRunAt(runAt, this);
    const now = Date.now();
    const entry = state.held(id, this.owner, now, delivery);
    if (!entry) return false;
    state.unlease(entry);
    entry.data = data;
    entry.attempt = 0;
    if (until > now) {
      state.delay(entry, until);
    } else {
      state.returned.push(entry);
      state.wake();
    }
    return true;
  }

  override async startGated(id: string, gates: StartGates, delivery?: number): Promise<StartOutcome> {
    const state = this.live();
    checkStartGates(gates);
    const now = Date.now();
    const entry = state.held(id, this.owner, now, delivery);
    if (!entry) return LOST;
    return state.gates.start(entry, gates, now);
  }

  override async promoteDue(): Promise<number> {
    const state = this.live();
    const count = state.promote(Date.now());
    if (count > 0) state.wake();
    return count;
  }

  override async remove(id: string): Promise<boolean> {
    return this.live().remove(id, Date.now());
  }

  override async cancel(id: string, jobId: string): Promise<CancelOutcome> {
    const state = this.live();
    checkCancel(id, jobId, this.name);
    const now = Date.now();
    if (state.remove(id, now)) return 'revoked';
    return state.control.mark(id, jobId, now) ? 'signalled' : false;
  }

  override async control(): Promise<QueueControl> {
    const state = this.live();
    const now = Date.now();
    return { cancels: state.control.cancelsFor(this.owner, now), listening: state.control.listening(now) };
  }

  override async registerListener(listenerId: string): Promise<number> {
    const state = this.live();
    checkListenerId(listenerId, this.name);
    return state.control.listen(listenerId, Date.now() + LISTENER_TTL_MS);
  }

  override async unregisterListener(listenerId: string): Promise<void> {
    this.live().control.unlisten(listenerId);
  }

  override async publishEvents(events: readonly string[]): Promise<void> {
    this.live().control.publish(events);
  }

  override async readEvents(after: number, max: number): Promise<EventPage> {
    const state = this.live();
    checkEventRead(after, max, this.name);
    return state.control.read(after, max);
  }

  override async heartbeat(consumerId: string, state: string, counts: readonly ThroughputCount[] = []): Promise<void> {
    const live = this.live();
    checkHeartbeat(consumerId, state, counts, this.name);
    live.control.heartbeat(consumerId, state, counts, Date.now());
  }

  override async forgetConsumer(consumerId: string): Promise<void> {
    this.live().control.forgetConsumer(consumerId);
  }

  override async consumers(): Promise<ConsumerRecord[]> {
    return this.live().control.consumers(Date.now());
  }

  override async findJob(jobId: string, limit: number): Promise<FoundMessage | null> {
    const state = this.live();
    checkFindJob(jobId, limit, this.name);
    const needle = jobNeedle(jobId);
    let waiting = 0;
    let delayed = 0;
    for (const entry of state.live.values()) {
      if (entry.owner !== null) continue;
      const isDelayed = state.delayed.has(entry.id) || entry.parkedKey !== null;
      if (isDelayed ? ++delayed > limit : ++waiting > limit) continue;
      if (entry.data.slice(0, JOB_HEAD_CHARS).includes(needle)) return { id: entry.id, data: entry.data, state: isDelayed ? 'delayed' : 'waiting' };
    }
    return null;
  }

  override async throughput(): Promise<ThroughputBucket[]> {
    return this.live().control.throughput(Date.now());
  }

  override async setResults(records: readonly ResultRecord[], messageIds?: readonly string[], deliveries?: readonly number[]): Promise<void> {
    const state = this.live();
    checkResultList(records, this);
    for (const [i, record] of records.entries()) checkResultRecord(record, i, this);
    const now = Date.now();
    state.purgeResults(now);
    for (const [i, { jobId, record, ttlMs }] of records.entries()) {
      if (deliveries && messageIds && !state.held(messageIds[i]!, this.owner, now, deliveries[i])) continue;
      state.setResult(jobId, record, now + ttlMs);
    }
  }

  override async getResult(jobId: string): Promise<string | null> {
    const state = this.live();
    const stored = state.results.get(jobId);
    if (!stored) return null;
    if (stored.expiresAt <= Date.now()) {
      state.results.delete(jobId);
      return null;
    }
    return stored.record;
  }

  async writeUnique(key: string, data: string, ttlMs: number): Promise<string | null> {
    const state = this.live();
    checkKey(key);
    checkData(data);
    checkSlotTtl(ttlMs, this);
    const now = Date.now();
    if (++state.slotCalls % 256 === 0) state.purgeSlots(now);
    const claimedUntil = state.slots.get(key);
    if (claimedUntil !== undefined && claimedUntil > now) return null;
    state.slots.set(key, now + ttlMs);
    const id = state.append(data, undefined, now);
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
    // An expiring lease makes a message ready without any write: wake for it too. A lease expires
    // once Date.now() passes its deadline, and a timer may fire up to 1 ms early by that clock
    // (libuv's loop time is truncated): +2 wakes when the lease has expired, not just before.
    const nextDeadline = state.nextDeadline();
    const wait = nextDeadline === undefined ? timeoutMs : Math.min(timeoutMs, Math.max(0, nextDeadline - Date.now() + 2));
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
