/**
 * The queue adapter: the one actor that owns a BaseQueue. Every backend call
 * the consumer makes is an event here and every answer is an event back, so
 * the machines never touch I/O and can be tested against a fake adapter.
 *
 * What it does beyond translating:
 * - batches ACKs (one ackBatch per turn of the event loop, not per job;
 *   ./ack-batcher.ts); the runners settle their jobs through ./settlements.ts,
 *   a direct call into the same handlers as the ACK/FAIL/DEFERRED/RELEASE
 *   events, with no event per job;
 * - stores a result record before the ack, fail or retry that ends its
 *   attempt, so a job's records are stored in attempt order (the last one
 *   stays); every record, ack, fail, retry, release, extend and gated start
 *   carries its message's delivery, so the backend refuses what comes from a
 *   delivery that no longer holds the lease (a late run's result included);
 * - keeps the set of messages it leased and not yet settled, and extends
 *   their leases on a heartbeat so long commands keep them
 *   (./lease-heartbeat.ts);
 * - opens the queue, retrying a backend that is not up yet
 *   (./open-with-retry.ts);
 * - stores the progress running jobs report, coalesced: one write in flight,
 *   the latest value of each job in it (./progress-writer.ts);
 * - asks the queue whether a gated job may start and answers its runner; when
 *   a rate limit books a start for later, promotes at that time and nudges a
 *   polling reader, so the consumer sleeps until then instead of polling;
 * - polls the queue twice a second for cancels of jobs it holds (to the
 *   supervisor as CANCEL_REQUESTED) and for events listeners, and publishes
 *   the runners' queue events while there are some (./event-feed.ts);
 * - turns connection loss into READ_FAILED events (the reader backs off) and
 *   logs an outage once, not once per retry;
 * - writes what follows a composed job (a pipeline's next step, a group's
 *   callback) before its ack or fail (./continuations.ts);
 * - on CLOSE flushes pending ACKs and releases unsettled leases.
 */
import { fromCallback, type CallbackActorLogic } from 'xstate';
import type { Logger } from 'pino';
import type { BaseQueue } from '../backends/base.js';
import { toError } from '../shared/errors.js';
import { SYSTEM_IDS, systemActor, type JobResult, type LeasedMessage, type QueueAdapterEvent, type QueueReplyEvent } from '../machines/protocol.js';
import { AckBatcher } from './ack-batcher.js';
import { settleComposed } from './continuations.js';
import { LeaseHeartbeat } from './lease-heartbeat.js';
import { OpenWithRetry } from './open-with-retry.js';
import { ProgressWriter } from './progress-writer.js';
import { EventFeed } from './event-feed.js';
import { ThroughputTally } from './throughput-tally.js';
import { OrderedQueues } from '../consumer/ordered-queues.js';
import { Settlements, type JobSettler } from './settlements.js';
import { CONSUMER_HEARTBEAT_MS, DEFAULT_CONTROL_POLL_MS } from '../backends/control.js';

export interface QueueAdapterDeps {
  queue: BaseQueue;
  logger: Logger;
  /** Most ids in one ackBatch call. Default 500. */
  maxAckBatch?: number;
  /** How long to keep retrying queue.open() before QUEUE_FAILED. Default 30 000 ms. */
  openTimeoutMs?: number;
  /** Where the runners' queue events wait to be published (shared with them). Default: a feed of its own. */
  events?: EventFeed;
  /** How often to ask the queue for cancels and listeners (queue.control()). Default 500 ms. */
  controlPollMs?: number;
  /** This consumer in the queue's consumer registry: its id and its state now (JSON text), beaten every CONSUMER_HEARTBEAT_MS. */
  heartbeat?: { id: string; state: () => string };
  /** Where the runners settle their jobs (shared with them). Default: one nobody calls. */
  settlements?: Settlements;
}

export type QueueAdapterLogic = CallbackActorLogic<QueueAdapterEvent>;

/** How long a closing adapter waits to leave the consumer registry. */
const FORGET_TIMEOUT_MS = 1_000;

/** The most booked start times the adapter keeps timers for. */
const MAX_BOOKED = 10_000;

export function createQueueAdapter({
  queue,
  logger,
  maxAckBatch = 500,
  openTimeoutMs = 30_000,
  events = new EventFeed(),
  controlPollMs = DEFAULT_CONTROL_POLL_MS,
  heartbeat,
  settlements = new Settlements(),
}: QueueAdapterDeps): QueueAdapterLogic {
  return fromCallback<QueueAdapterEvent>(({ system, sendBack, receive }) => {
    const log = logger.child({ queue: queue.name });
    const inflight = new Set<Promise<unknown>>();
    let closed = false;
    let outage = false;
    let waitAbort: AbortController | null = null;
    // Booked starts of deferred jobs, ascending and distinct, with one timer for the earliest.
    // Bounded: past the bound the scheduler's 1-second promote tick still brings them in.
    const booked: number[] = [];
    let promoteTimer: NodeJS.Timeout | undefined;

    const reply = (systemId: string, event: QueueReplyEvent): void => systemActor(system, systemId)?.send(event);
    const track = <T>(promise: Promise<T>): Promise<T> => {
      inflight.add(promise);
      const untrack = () => inflight.delete(promise);
      promise.then(untrack, untrack);
      return promise;
    };
    const noteOutage = (what: string, error: unknown) => {
      if (outage) return;
      outage = true;
      log.warn({ err: toError(error) }, `queue unreachable (${what}); retrying with backoff`);
    };
    const noteHealthy = () => {
      if (!outage) return;
      outage = false;
      log.info('queue reachable again');
    };

    const acks = new AckBatcher({
      queue,
      maxAckBatch,
      track,
      onRefused: (ids) => log.warn({ ids }, 'ack refused: lease lost, the job may run again'),
      onFailed: (error, ids, isClosed) => {
        noteOutage('ack', error);
        if (isClosed) log.error({ ids, err: toError(error) }, 'acks could not be written before close; those jobs will run again');
      },
    });
    // Keeps leases of long-running and prefetched jobs alive.
    const leases = new LeaseHeartbeat({
      queue,
      track,
      onRefused: (ids) => log.warn({ ids }, 'lease lost while running; the job may run twice'),
      onError: (error) => noteOutage('extend', error),
    });
    // Progress is best effort: a failed write is retried later, and a lost one is overwritten by the next report.
    const progress = new ProgressWriter({
      queue,
      track,
      onFailed: (error, count, isClosed) => {
        noteOutage('progress', error);
        if (isClosed) log.warn({ count, err: toError(error) }, 'job progress could not be stored before close');
      },
    });
    events.attach({
      publish: (texts, ids) => queue.publishEvents(texts, ids),
      track,
      warn: (message, count, error) => log.warn({ count, ...(error === undefined ? {} : { err: toError(error) }) }, message),
    });
    // Cancels asked for in other processes, and whether anyone listens for events: one call, twice a second.
    let controlTimer: NodeJS.Timeout | undefined;
    let polling = false;
    const pollControl = (): void => {
      if (polling || closed) return;
      polling = true;
      track(queue.control()).then(
        ({ cancels, listening }) => {
          polling = false;
          events.listening = listening && !closed;
          if (cancels.length > 0 && !closed) sendBack({ type: 'CANCEL_REQUESTED', cancels });
        },
        (error) => {
          polling = false;
          noteOutage('control', error);
        },
      );
    };
    // The registry a dashboard reads: who is consuming, and what each worker is doing.
    // It carries the jobs settled since the last beat (the throughput history), so no job writes for it.
    let beatTimer: NodeJS.Timeout | undefined;
    let beaten = false;
    const tally = heartbeat
      ? queue instanceof OrderedQueues
        ? new ThroughputTally(
            queue.members.map((m) => m.name),
            (id) => queue.memberIndex(id),
          )
        : new ThroughputTally([queue.name])
      : undefined;
    const sendBeat = (id: string, state: string): Promise<void> => {
      const counts = tally!.take();
      return queue.heartbeat(id, state, counts).catch((error: unknown) => {
        tally!.giveBack(counts);
        throw error;
      });
    };
    const beat = (): void => {
      if (!heartbeat || closed) return;
      beaten = true;
      track(sendBeat(heartbeat.id, heartbeat.state())).catch((error: unknown) => noteOutage('heartbeat', error));
    };
    const opener = new OpenWithRetry({
      queue,
      timeoutMs: openTimeoutMs,
      track,
      onOpen: () => {
        noteHealthy();
        if (closed) return;
        sendBack({ type: 'QUEUE_READY' });
        pollControl();
        controlTimer = setInterval(pollControl, controlPollMs);
        controlTimer.unref();
        if (heartbeat) {
          beat();
          beatTimer = setInterval(beat, CONSUMER_HEARTBEAT_MS);
          beatTimer.unref();
        }
      },
      onFailed: (error) => sendBack({ type: 'QUEUE_FAILED', error: toError(error) }),
      onRetry: (error) => noteOutage('open', error),
    });
    opener.start();
    const promote = (nudgeReader: boolean): void => {
      track(queue.promoteDue()).then(
        (count) => {
          if (count > 0 && log.isLevelEnabled('debug')) log.debug({ count }, 'delayed jobs due');
          // A blocking queue wakes its readers itself; a polling reader may be asleep for seconds.
          if (count > 0 && nudgeReader && !queue.blocking && !closed) reply(SYSTEM_IDS.reader, { type: 'WAKE' });
        },
        (error) => noteOutage('promote', error),
      );
    };
    const armPromote = (): void => {
      clearTimeout(promoteTimer);
      promoteTimer = undefined;
      if (booked.length === 0 || closed) return;
      promoteTimer = setTimeout(
        () => {
          promoteTimer = undefined;
          const now = Date.now();
          let due = 0;
          while (due < booked.length && booked[due]! <= now) due++;
          booked.splice(0, Math.max(due, 1));
          promote(true);
          armPromote();
        },
        Math.max(0, booked[0]! - Date.now()) + 1,
      );
    };
    const promoteBy = (runAt: number): void => {
      if (closed) return;
      let i = booked.length;
      while (i > 0 && booked[i - 1]! > runAt) i--;
      if (booked[i - 1] === runAt || i >= MAX_BOOKED) return;
      booked.splice(i, 0, runAt);
      if (booked.length > MAX_BOOKED) booked.pop();
      if (i === 0) armPromote();
    };
    /** A composed job's record and continuation are written, then `settle` acks or fails it; on an error it stays leased and runs again. */
    const composedThen = (id: string, delivery: number, result: JobResult, settle: () => unknown): void => {
      track(settleComposed(queue, id, delivery, result).then(settle)).catch((error: unknown) =>
        log.error({ messageId: id, err: toError(error) }, 'could not write what follows a composed job; it will run again when its lease expires'),
      );
    };
    const ackJob = (id: string, delivery: number, result: JobResult | undefined): void => {
      leases.settle(id, delivery);
      tally?.settled(id, false);
      if (result?.continuation) composedThen(id, delivery, result, () => (acks.add(id, delivery, undefined), acks.flush()));
      else acks.add(id, delivery, result);
    };
    const failJob = (message: LeasedMessage, error: string, result: JobResult | undefined): void => {
      const { id, delivery } = message;
      leases.settle(id, delivery);
      tally?.settled(id, true);
      if (result?.continuation) {
        composedThen(id, delivery, result, () => track(queue.fail(id, error, delivery)));
        return;
      }
      // The record first, while this delivery still holds the lease (the fence of both): after
      // the fail the message is in the failed store and no lease would let the record in.
      const failing = result ? queue.setResults([result], [id], [delivery]).then(() => queue.fail(id, error, delivery)) : queue.fail(id, error, delivery);
      track(failing).then(
        (ok) => {
          if (!ok) log.warn({ messageId: id }, 'could not record failure: lease lost, the job may run again');
        },
        (err) => log.error({ messageId: id, err: toError(err) }, 'could not record failure; the lease will expire and the job run again'),
      );
    };
    const settler: JobSettler = {
      ack: (message, result) => ackJob(message.id, message.delivery, result),
      fail: (message, error) => failJob(message, error, undefined),
      deferred: (message) => leases.settle(message.id, message.delivery),
      release: (messages) => {
        if (messages.length === 0) return;
        for (const m of messages) leases.settle(m.id, m.delivery);
        const ids = messages.map((m) => m.id);
        const deliveries = messages.map((m) => m.delivery);
        track(queue.release(ids, deliveries)).catch((error) => log.warn({ err: toError(error) }, 'release failed; the leases will expire instead'));
      },
    };
    settlements.attach(settler);
    const stop = (): void => {
      closed = true;
      settlements.detach();
      clearInterval(controlTimer);
      clearInterval(beatTimer);
      events.detach();
      clearTimeout(promoteTimer);
      acks.close();
      progress.close();
      opener.cancel();
      leases.stop();
      waitAbort?.abort();
    };

    receive((event) => {
      if (closed) return;
      switch (event.type) {
        case 'READ':
          track(queue.readBatch(event.max)).then(
            (messages) => {
              noteHealthy();
              for (const m of messages) leases.lease(m.id, m.delivery);
              // One macrotask per batch: with a synchronous backend (SQLite, memory) and a deep
              // backlog, read → run → read would otherwise chain on microtasks forever and starve
              // timers (lease heartbeats, ack flushes) and signal handlers.
              setImmediate(() => reply(SYSTEM_IDS.reader, { type: 'MESSAGES', messages }));
            },
            (error) => {
              noteOutage('read', error);
              reply(SYSTEM_IDS.reader, { type: 'READ_FAILED', error: toError(error) });
            },
          );
          break;
        case 'WAIT': {
          waitAbort = new AbortController();
          const { signal } = waitAbort;
          track(queue.waitForMessages(event.timeoutMs, signal)).then(
            () => !signal.aborted && reply(SYSTEM_IDS.reader, { type: 'WAKE' }),
            (error) => {
              noteOutage('wait', error);
              if (!signal.aborted) reply(SYSTEM_IDS.reader, { type: 'READ_FAILED', error: toError(error) });
            },
          );
          break;
        }
        case 'ACK':
          ackJob(event.id, event.delivery, event.result);
          break;
        case 'FAIL':
          failJob(event.message, event.error, event.result);
          break;
        case 'RETRY': {
          const { message, plan, result } = event;
          leases.settle(message.id, message.delivery);
          // The 'retrying' record is stored BEFORE the job is re-queued: from then on the next attempt can run and
          // store its own record at any moment, and a slow 'retrying' write landing after it would overwrite it
          // (result() would wait for ever, status() say 'retrying' for a finished job). A record that cannot be
          // stored does not hold the retry back: the next attempt's record will tell.
          const recorded = result
            ? queue
                .setResults([result], [message.id], [message.delivery])
                .catch((error: unknown) => log.warn({ messageId: message.id, err: toError(error) }, 'could not store the retrying record; retrying anyway'))
            : Promise.resolve();
          track(recorded.then(() => queue.retry(message.id, plan.data, plan.runAt, message.delivery))).then(
            (ok) => {
              if (!ok) log.warn({ messageId: message.id }, 'could not schedule the retry: lease lost, the job may run again sooner');
            },
            (error) => log.error({ messageId: message.id, err: toError(error) }, 'could not schedule the retry; the lease will expire and the job run again'),
          );
          break;
        }
        case 'PROMOTE':
          promote(false);
          break;
        case 'START_GATED': {
          const { id, replyTo } = event;
          track(queue.startGated(id, event.gates, event.delivery)).then(
            ({ decision, runAt }) => {
              if (runAt !== undefined) promoteBy(runAt);
              replyTo.send({ type: 'GATE_DECIDED', id, decision });
            },
            (error) => replyTo.send({ type: 'GATE_DECIDED', id, decision: 'error', error: toError(error) }),
          );
          break;
        }
        case 'DEFERRED':
          leases.settle(event.id, event.delivery);
          break;
        case 'PROGRESS':
          progress.write(event.id, event.delivery, event.progress);
          break;
        case 'RELEASE':
          settler.release(event.messages);
          break;
        case 'WRITE_UNIQUE':
          track(queue.writeUnique(event.key, event.data, event.ttlMs)).then(
            (id) => reply(SYSTEM_IDS.scheduler, { type: 'SLOT_WRITTEN', key: event.key, id }),
            (error) => reply(SYSTEM_IDS.scheduler, { type: 'SLOT_FAILED', key: event.key, error: toError(error) }),
          );
          break;
        case 'CLOSE':
          stop();
          void (async () => {
            acks.flush();
            progress.flush();
            events.flush();
            while (inflight.size > 0) await Promise.allSettled([...inflight]);
            if (event.release && leases.size > 0) {
              const { ids, deliveries } = leases.takeAll();
              try {
                await queue.release(ids, deliveries);
              } catch (error) {
                log.warn({ err: toError(error), count: ids.length }, 'could not release leases on close; they will expire');
              }
            }
            if (heartbeat && beaten) {
              // Bounded: an unreachable backend must not hold the stop; the entry lapses by itself.
              // The last seconds' counts go first (a beat), then the entry.
              const last = tally!.empty ? Promise.resolve() : sendBeat(heartbeat.id, heartbeat.state());
              const left = last
                .then(() => queue.forgetConsumer(heartbeat.id))
                .then(
                  () => true,
                  () => false,
                );
              const ok = await Promise.race([left, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), FORGET_TIMEOUT_MS).unref())]);
              if (!ok) log.warn('could not leave the consumer registry; the entry lapses in 15 s');
            }
            sendBack({ type: 'QUEUE_CLOSED' });
          })();
          break;
        default: {
          // Every adapter event is handled above; a new one must be added there.
          const unhandled: never = event;
          log.error({ event: (unhandled as { type: string }).type }, 'queue adapter received an unknown event');
        }
      }
    });

    return stop;
  });
}
