/**
 * Several named queues of one server, read as one in strict order: a read
 * takes from the first queue that has anything ready, and fills the rest of
 * `max` from the next ones only when the earlier ones have nothing more. So a
 * consumer of `['critical', 'default']` starts a `default` job only while
 * `critical` has none ready.
 *
 * Why a BaseQueue and not a change to the machines: the reader, the workers
 * and the queue adapter stay exactly as they are (one queue, one adapter);
 * only this module knows there are several. A message id is prefixed with the
 * index of its queue (`1:42`), because ids of different queues may collide
 * (Redis and memory count per queue); every call that takes ids routes each
 * to its own queue. Result records go where their message came from (the
 * adapter passes the message ids to setResults). Periodic slots and anything
 * written through this object go to the first queue.
 */
import {
  BaseQueue,
  type FailedMessage,
  type QueueMessage,
  type QueueStats,
  type ResultRecord,
  type StartGates,
  type StartOutcome,
  type WriteOnceOptions,
  type WriteOnceResult,
  type WriteOptions,
} from '../backends/base.js';
import { ConfigError, describeValue } from '../shared/errors.js';
import {
  checkCancel,
  type CancelOutcome,
  type CancelRequest,
  type ConsumerRecord,
  type EventPage,
  type FoundMessage,
  type QueueControl,
  type ThroughputBucket,
  type ThroughputCount,
} from '../backends/control.js';

export class OrderedQueues extends BaseQueue {
  override readonly blocking: boolean;
  readonly members: readonly BaseQueue[];
  /** Names in read order, for logs: `critical,default`. */
  readonly names: string;

  constructor(members: readonly BaseQueue[]) {
    const first = members[0];
    if (!first) throw new ConfigError('queues: give at least one queue name');
    super({ name: first.name, owner: first.owner, leaseMs: first.leaseMs });
    const seen = new Set<string>();
    for (const member of members) {
      if (seen.has(member.name)) throw new ConfigError(`queues: ${JSON.stringify(member.name)} is listed twice`);
      seen.add(member.name);
    }
    this.members = members;
    this.names = members.map((m) => m.name).join(',');
    // Waiting blocks on the server only if every member can; one polling member makes the whole set poll.
    this.blocking = members.every((m) => m.blocking);
  }

  // ── ids ───────────────────────────────────────────────────────────────

  /** The member index and own id of a prefixed id (`1:42` → 1, `42`); index -1 when it is nobody's. */
  #split(id: string): [number, string] {
    const colon = id.indexOf(':');
    const index = colon > 0 ? Number(id.slice(0, colon)) : Number.NaN;
    return this.members[index] ? [index, id.slice(colon + 1)] : [-1, id];
  }

  /** Splits prefixed ids (and their deliveries) by member; an id without a known prefix is nobody's (refused / ignored). */
  #route(ids: readonly string[], deliveries?: readonly number[]): { perMember: string[][]; tokens: number[][] | undefined; unknown: string[] } {
    const perMember: string[][] = this.members.map(() => []);
    const tokens: number[][] | undefined = deliveries && this.members.map(() => []);
    const unknown: string[] = [];
    for (const [i, id] of ids.entries()) {
      const [index, own] = this.#split(id);
      if (index === -1) unknown.push(id);
      else {
        perMember[index]!.push(own);
        tokens?.[index]!.push(deliveries![i]!);
      }
    }
    return { perMember, tokens, unknown };
  }

  #one(id: string): { member: BaseQueue; id: string; index: number } | undefined {
    const [index, own] = this.#split(id);
    return index === -1 ? undefined : { member: this.members[index]!, id: own, index };
  }

  /** The member queue a message (by its prefixed id) came from; the first one for an id that is nobody's. */
  queueOf(id: string): BaseQueue {
    return this.#one(id)?.member ?? this.members[0]!;
  }

  /** Runs `call` on every member with ids, in parallel; the prefixed ids it gave back. */
  async #perMember(
    ids: readonly string[],
    deliveries: readonly number[] | undefined,
    call: (member: BaseQueue, ids: string[], deliveries: number[] | undefined) => Promise<string[] | void>,
  ): Promise<string[]> {
    const { perMember, tokens, unknown } = this.#route(ids, deliveries);
    const replies = await Promise.all(perMember.map((own, i) => (own.length > 0 ? call(this.members[i]!, own, tokens?.[i]) : Promise.resolve(undefined))));
    const back = [...unknown];
    replies.forEach((reply, i) => {
      if (reply) for (const id of reply) back.push(`${i}:${id}`);
    });
    return back;
  }

  // ── reading, in order ─────────────────────────────────────────────────

  async readBatch(max: number): Promise<QueueMessage[]> {
    // A bad max gets the member's own error.
    if (!Number.isInteger(max) || max <= 0) return this.members[0]!.readBatch(max);
    const out: QueueMessage[] = [];
    for (let i = 0; i < this.members.length && out.length < max; i++) {
      for (const m of await this.members[i]!.readBatch(max - out.length))
        out.push({ id: `${i}:${m.id}`, data: m.data, attempt: m.attempt, delivery: m.delivery });
    }
    return out;
  }

  /** Wakes when any member may have a message (or the timeout / signal ends the wait). */
  override async waitForMessages(timeoutMs: number, signal: AbortSignal): Promise<void> {
    const done = new AbortController();
    const abort = () => done.abort();
    signal.addEventListener('abort', abort, { once: true });
    try {
      await Promise.race(this.members.map((m) => m.waitForMessages(timeoutMs, done.signal)));
    } finally {
      signal.removeEventListener('abort', abort);
      done.abort();
    }
  }

  ackBatch(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
    return this.#perMember(ids, deliveries, (m, own, tokens) => m.ackBatch(own, tokens));
  }

  async release(ids: readonly string[], deliveries?: readonly number[]): Promise<void> {
    await this.#perMember(ids, deliveries, (m, own, tokens) => m.release(own, tokens));
  }

  extend(ids: readonly string[], deliveries?: readonly number[]): Promise<string[]> {
    return this.#perMember(ids, deliveries, (m, own, tokens) => m.extend(own, tokens));
  }

  async fail(id: string, error: string, delivery?: number): Promise<boolean> {
    const target = this.#one(id);
    return target ? target.member.fail(target.id, error, delivery) : false;
  }

  /** Gate state belongs to the member the message came from: commands on different queues never share a window or a slot. */
  override async startGated(id: string, gates: StartGates, delivery?: number): Promise<StartOutcome> {
    const target = this.#one(id);
    return target ? target.member.startGated(target.id, gates, delivery) : { decision: 'lost' };
  }

  override async retry(id: string, data: string, runAt: number, delivery?: number): Promise<boolean> {
    const target = this.#one(id);
    return target ? target.member.retry(target.id, data, runAt, delivery) : false;
  }

  override async remove(id: string): Promise<boolean> {
    const target = this.#one(id);
    return target ? target.member.remove(target.id) : false;
  }

  override async setResults(records: readonly ResultRecord[], messageIds?: readonly string[], deliveries?: readonly number[]): Promise<void> {
    if (!messageIds) return this.members[0]!.setResults(records);
    const perMember: ResultRecord[][] = this.members.map(() => []);
    // Fenced: each record with its message's own id and delivery in that member.
    const ownIds: string[][] = this.members.map(() => []);
    const tokens: number[][] = this.members.map(() => []);
    records.forEach((record, i) => {
      const target = this.#one(messageIds[i] ?? '');
      perMember[target?.index ?? 0]!.push(record);
      if (deliveries) {
        // A record of a message that is nobody's is held by no lease: '' fences it out.
        ownIds[target?.index ?? 0]!.push(target?.id ?? '');
        tokens[target?.index ?? 0]!.push(deliveries[i]!);
      }
    });
    await Promise.all(
      perMember.map((own, i) =>
        own.length === 0 ? Promise.resolve() : deliveries ? this.members[i]!.setResults(own, ownIds[i], tokens[i]) : this.members[i]!.setResults(own),
      ),
    );
  }

  override async cancel(id: string, jobId: string): Promise<CancelOutcome> {
    checkCancel(id, jobId, this.names);
    const target = this.#one(id);
    return target ? target.member.cancel(target.id, jobId) : false;
  }

  /** Every member's marks (ids prefixed), and listening when any member has a listener. */
  override async control(): Promise<QueueControl> {
    const replies = await Promise.all(this.members.map((m) => m.control()));
    const cancels: CancelRequest[] = [];
    replies.forEach((reply, i) => {
      for (const c of reply.cancels) cancels.push({ id: `${i}:${c.id}`, jobId: c.jobId });
    });
    return { cancels, listening: replies.some((r) => r.listening) };
  }

  /** Each event goes to the log of the queue its message came from, as result records do. */
  override async publishEvents(events: readonly string[], messageIds?: readonly string[]): Promise<void> {
    if (!messageIds) return this.members[0]!.publishEvents(events);
    const perMember: string[][] = this.members.map(() => []);
    events.forEach((event, i) => perMember[this.#one(messageIds[i] ?? '')?.index ?? 0]!.push(event));
    await Promise.all(perMember.map((own, i) => (own.length > 0 ? this.members[i]!.publishEvents(own) : Promise.resolve())));
  }

  /** A consumer of several queues beats on each, so each queue's dashboard shows it; each gets its own counts. */
  override async heartbeat(consumerId: string, state: string, counts: readonly ThroughputCount[] = []): Promise<void> {
    if (!Array.isArray(counts) || counts.length === 0) {
      await Promise.all(this.members.map((m) => m.heartbeat(consumerId, state, counts)));
      return;
    }
    for (const [i, count] of counts.entries()) {
      if (!this.members.some((m) => m.name === (count as Partial<ThroughputCount> | null)?.queue)) {
        throw new ConfigError(`heartbeat on queues ${this.names}: invalid counts[${i}] ${describeValue(count)}: its queue is none of them`);
      }
    }
    await Promise.all(
      this.members.map((m) =>
        m.heartbeat(
          consumerId,
          state,
          (counts as readonly ThroughputCount[]).filter((c) => c.queue === m.name),
        ),
      ),
    );
  }

  override async forgetConsumer(consumerId: string): Promise<void> {
    await Promise.all(this.members.map((m) => m.forgetConsumer(consumerId)));
  }

  override consumers(): Promise<ConsumerRecord[]> {
    return this.members[0]!.consumers();
  }

  /** Each queue in read order; the id carries its queue's prefix. */
  override async findJob(jobId: string, limit: number): Promise<FoundMessage | null> {
    for (const [index, member] of this.members.entries()) {
      const found = await member.findJob(jobId, limit);
      if (found) return { ...found, id: `${index}:${found.id}` };
    }
    return null;
  }

  override throughput(): Promise<ThroughputBucket[]> {
    return this.members[0]!.throughput();
  }

  /** The index of the member a prefixed id (`1:42`) came from, read without slicing it (it runs per settled job); -1 when it is nobody's. */
  memberIndex(id: string): number {
    let index = 0;
    for (let i = 0; i < id.length; i++) {
      const code = id.charCodeAt(i);
      if (code === 58) return i > 0 && index < this.members.length ? index : -1;
      if (code < 48 || code > 57) return -1;
      index = index * 10 + code - 48;
    }
    return -1;
  }

  /** A listener through this object listens on the first queue, where its writes go. */
  override registerListener(listenerId: string): Promise<number> {
    return this.members[0]!.registerListener(listenerId);
  }

  override unregisterListener(listenerId: string): Promise<void> {
    return this.members[0]!.unregisterListener(listenerId);
  }

  override readEvents(after: number, max: number): Promise<EventPage> {
    return this.members[0]!.readEvents(after, max);
  }

  /** The first member that has a record for `jobId`. */
  override async getResult(jobId: string): Promise<string | null> {
    for (const member of this.members) {
      const record = await member.getResult(jobId);
      if (record !== null) return record;
    }
    return null;
  }

  // ── every member ──────────────────────────────────────────────────────

  async reclaim(): Promise<number> {
    return sum(await Promise.all(this.members.map((m) => m.reclaim())));
  }

  override async promoteDue(): Promise<number> {
    return sum(await Promise.all(this.members.map((m) => m.promoteDue())));
  }

  async failed(limit = 100): Promise<FailedMessage[]> {
    const out: FailedMessage[] = [];
    for (let i = 0; i < this.members.length && out.length < limit; i++) {
      for (const f of await this.members[i]!.failed(limit - out.length)) out.push({ ...f, id: `${i}:${f.id}` });
    }
    return out;
  }

  async requeueFailed(ids?: readonly string[]): Promise<number> {
    if (!ids) return sum(await Promise.all(this.members.map((m) => m.requeueFailed())));
    const { perMember } = this.#route(ids);
    return sum(await Promise.all(perMember.map((own, i) => (own.length > 0 ? this.members[i]!.requeueFailed(own) : Promise.resolve(0)))));
  }

  async purgeFailed(ids?: readonly string[]): Promise<number> {
    if (!ids) return sum(await Promise.all(this.members.map((m) => m.purgeFailed())));
    const { perMember } = this.#route(ids);
    return sum(await Promise.all(perMember.map((own, i) => (own.length > 0 ? this.members[i]!.purgeFailed(own) : Promise.resolve(0)))));
  }

  async stats(): Promise<QueueStats> {
    const all = await Promise.all(this.members.map((m) => m.stats()));
    return all.reduce((a, b) => ({ ready: a.ready + b.ready, leased: a.leased + b.leased, failed: a.failed + b.failed, delayed: a.delayed + b.delayed }));
  }

  async length(): Promise<number> {
    return sum(await Promise.all(this.members.map((m) => m.length())));
  }

  async flush(): Promise<void> {
    await Promise.all(this.members.map((m) => m.flush()));
  }

  override async open(): Promise<void> {
    await Promise.all(this.members.map((m) => m.open()));
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.close()));
  }

  // ── writes: the first queue ───────────────────────────────────────────

  async write(data: string, options?: WriteOptions): Promise<string> {
    return `0:${await this.members[0]!.write(data, options)}`;
  }

  async writeBatch(datas: readonly string[], options?: WriteOptions): Promise<string[]> {
    return (await this.members[0]!.writeBatch(datas, options)).map((id) => `0:${id}`);
  }

  override async writeOnce(key: string, data: string, options?: WriteOnceOptions): Promise<WriteOnceResult> {
    const result = await this.members[0]!.writeOnce(key, data, options);
    return { ...result, id: `0:${result.id}` };
  }

  async writeUnique(key: string, data: string, ttlMs: number): Promise<string | null> {
    const id = await this.members[0]!.writeUnique(key, data, ttlMs);
    return id === null ? null : `0:${id}`;
  }
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}
