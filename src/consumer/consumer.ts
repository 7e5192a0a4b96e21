/**
 * createConsumer(): the embeddable handle around the supervisor actor. It
 * wires the real effects (queue adapter, run-command, pino logging) into the
 * machines with `.provide()`, and turns the actor's life into start()/stop()
 * promises. No process.exit, no signal handlers: the host (or the CLI) owns
 * those.
 */
import path from 'node:path';
import { createActor, type Actor, type ActorOptions, type InspectionEvent, type Observer } from 'xstate';
import pino, { type Logger } from 'pino';
import { z } from 'zod';
import { BaseQueue, QUEUE_DEFAULTS, leaseMsField, queueNameField } from '../backends/base.js';
import { createQueue } from '../backends/index.js';
import { registry as globalRegistry, type CommandRegistry } from '../producer/registry.js';
import { getSettings } from '../producer/settings.js';
import { defaultQueueUrl } from '../shared/config.js';
import { ConfigError, toError } from '../shared/errors.js';
import { EXPECTED, boolean, callback, factor, integer, millis, nonEmptyString, object, oneOf, parseOptions, type DeclaresEvery } from '../shared/options.js';
import { OrderedQueues } from './ordered-queues.js';
import { createQueueAdapter } from '../actors/queue-adapter.js';
import { createRunCommand, DEFAULT_MAX_DELIVERIES } from '../actors/run-command.js';
import { Settlements } from '../actors/settlements.js';
import { EventFeed } from '../actors/event-feed.js';
import { metricsFor, queueNameOf } from '../observability/metrics.js';
import { consumerState } from '../observability/registry.js';
import type { Registry } from 'prom-client';
import { supervisorMachine, type SupervisorEvent, type SupervisorInput } from '../machines/supervisor.js';
import { workerMachine } from '../machines/worker.js';
import { schedulerMachine } from '../machines/scheduler.js';
import { isIntervalSchedule } from '../schedule/crontab.js';
import { WorkerCommandError, type LeasedMessage } from '../machines/protocol.js';
import { encodeMessage } from '../codec/message.js';
import { DEFAULT_RESULT_TTL_MS } from '../producer/results.js';
import { poolField, type Pool } from '../pool/kinds.js';
import { Pools } from '../pool/pools.js';
import { poolRole } from '../pool/role.js';

export type ControlEvent = Extract<SupervisorEvent, { type: 'SCALE' | 'PAUSE' | 'RESUME' | 'PAUSE_PERIODIC' | 'RESUME_PERIODIC' | 'STOP' | 'FORCE' }>;

type Clock = NonNullable<ActorOptions<typeof supervisorMachine>['clock']>;

export interface ConsumerOptions {
  /** A BaseQueue or queue URL. Default: configure()'s queue, else $TASKMILL_QUEUE, else sqlite:taskmill.sqlite. */
  queue?: BaseQueue | string;
  /**
   * Names of queues on `queue`'s server to read, in strict order: a job of a later queue starts
   * only while the earlier ones have none ready. Needs `queue` as a URL (or the default one).
   * Periodic commands are enqueued on the first. Default: the one queue `queue` names (`default`).
   */
  queues?: readonly string[];
  /** Worker actors (the seed's --threads). Default 1. */
  workers?: number;
  /** Run the periodic scheduler. Default true. */
  periodic?: boolean;
  /** A pino logger. Default: pino at 'info' on stdout. */
  logger?: Logger;
  /** An xstate inspection observer (e.g. the Stately inspector's `inspect`). Default none. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Where commands are looked up. Default: the global registry. */
  registry?: CommandRegistry;
  /** Messages read ahead of demand and buffered (their leases are kept alive). Default 0. */
  prefetch?: number;
  /** First poll interval of an empty polling queue, ms. Default 100. */
  pollDelayMs?: number;
  /** Poll interval growth when empty. Default 1.15. */
  pollBackoff?: number;
  /** Poll interval ceiling, ms. Default 10 000. */
  maxPollDelayMs?: number;
  /** Graceful drain deadline used by stop() and by the supervisor. Default 30 000 ms. */
  drainTimeoutMs?: number;
  /**
   * Deliveries without an outcome (the consumer running the job died or lost
   * its lease) after which a job is failed as "worker lost" instead of run
   * again. A command's own `maxDeliveries` wins. Default 3.
   */
  maxDeliveries?: number;
  /** Worker restarts after which the consumer gives up. Default unlimited. */
  maxRestarts?: number;
  /** How long start() keeps retrying a backend that is down before it rejects. Default 30 000 ms. */
  openTimeoutMs?: number;
  /** Lease length for messages this consumer reads, when it opens the queue from a URL. Default 30 000 ms. */
  leaseMs?: number;
  /**
   * Where commands run: `'inline'` on this process's event loop, `'threads'` in a worker thread
   * per worker, `'processes'` in a child process per worker. A command's own `pool` wins.
   * Default 'inline'. See docs/isolation.md.
   */
  pool?: Pool;
  /**
   * The command modules a pool's thread or process imports (the CLI passes the ones it loaded).
   * Default: the module that defined each command that runs in a pool.
   */
  modules?: readonly string[];
  /**
   * Heap limit of each pool thread or process, MB (threads: `resourceLimits.maxOldGenerationSizeMb`;
   * processes: `--max-old-space-size`): a command that needs more fails as "worker lost". Default: Node's.
   */
  poolMemoryMb?: number;
  /** xstate clock for timers (tests pass a SimulatedClock) and the matching `now`. */
  clock?: Clock & { now?: () => number };
  /** Keep Prometheus metrics (`consumer.metrics`; docs/observability.md). Default false: nothing is counted. */
  metrics?: boolean;
}

export interface StopResult {
  /** True when running commands had to be aborted (deadline or second stop). */
  forced: boolean;
}

export interface Consumer {
  /** Opens the queue and starts the actors; resolves once reading has begun, rejects if the queue cannot open. */
  start(): Promise<void>;
  /** Drains (no new reads, running commands finish) within `timeout` ms, then forces. Idempotent. */
  stop(options?: { timeout?: number }): Promise<StopResult>;
  /** Resolves when the consumer has stopped (or failed: rejects with the reason). */
  readonly done: Promise<StopResult>;
  /** The supervisor's xstate actor (inspect it, subscribe to it, send it events). */
  readonly actor: Actor<typeof supervisorMachine>;
  /**
   * Runtime control: `{ type: 'SCALE', workers }`, `PAUSE` / `RESUME` reading,
   * `PAUSE_PERIODIC` / `RESUME_PERIODIC`, `STOP`, `FORCE`.
   */
  send(event: ControlEvent): void;
  readonly queue: BaseQueue;
  /** The consumer's Prometheus registry (`await consumer.metrics.metrics()` is the text to serve), or null without `metrics: true`. */
  readonly metrics: Registry | null;
}

/**
 * createConsumer's defaults that are values. The others: `queue` is
 * configure()'s, else $TASKMILL_QUEUE, else sqlite:taskmill.sqlite; `logger`
 * pino at info; `registry` the global one; `maxRestarts` unlimited; `leaseMs`
 * the queue's (QUEUE_DEFAULTS.leaseMs) when the queue is opened from a URL.
 * The CLI's `consume` flags take theirs from here. @internal
 */
export const CONSUMER_DEFAULTS = {
  workers: 1,
  periodic: true,
  prefetch: 0,
  pollDelayMs: 100,
  pollBackoff: 1.15,
  maxPollDelayMs: 10_000,
  drainTimeoutMs: 30_000,
  maxDeliveries: DEFAULT_MAX_DELIVERIES,
  openTimeoutMs: 30_000,
  leaseMs: QUEUE_DEFAULTS.leaseMs,
  metrics: false,
  pool: 'inline',
} as const;

const consumerOptionsSchema = z
  .object({
    queue: oneOf([z.instanceof(BaseQueue), nonEmptyString()], 'must be a BaseQueue or a queue URL').optional(),
    queues: z.array(queueNameField).min(1, 'must be a non-empty list of queue names').readonly().optional(),
    workers: integer(1).default(CONSUMER_DEFAULTS.workers),
    periodic: boolean().default(CONSUMER_DEFAULTS.periodic),
    logger: object<Logger>('must be a pino logger', (l) => typeof (l as Partial<Logger>).info === 'function').optional(),
    inspect: oneOf(
      [callback<(event: InspectionEvent) => void>(), object<Observer<InspectionEvent>>('')],
      'must be an inspection observer or function',
    ).optional(),
    registry: object<CommandRegistry>('must be a CommandRegistry', (r) => {
      const registry = r as Partial<CommandRegistry>;
      return typeof registry.get === 'function' && typeof registry.periodic === 'function';
    }).optional(),
    prefetch: integer(0).default(CONSUMER_DEFAULTS.prefetch),
    pollDelayMs: millis(1).default(CONSUMER_DEFAULTS.pollDelayMs),
    pollBackoff: factor().default(CONSUMER_DEFAULTS.pollBackoff),
    maxPollDelayMs: millis(1).default(CONSUMER_DEFAULTS.maxPollDelayMs),
    drainTimeoutMs: millis(0).default(CONSUMER_DEFAULTS.drainTimeoutMs),
    maxDeliveries: integer(1).default(CONSUMER_DEFAULTS.maxDeliveries),
    maxRestarts: integer(1).optional(),
    openTimeoutMs: millis(0).default(CONSUMER_DEFAULTS.openTimeoutMs),
    leaseMs: leaseMsField.optional(),
    metrics: z.boolean({ error: 'must be true or false' }).default(CONSUMER_DEFAULTS.metrics),
    pool: poolField.default(CONSUMER_DEFAULTS.pool),
    modules: z.array(nonEmptyString(), { error: 'must be a list of module paths' }).readonly().optional(),
    poolMemoryMb: integer(16).optional(),
    clock: object<Clock & { now?: () => number }>('must be an xstate clock (setTimeout, clearTimeout)', (clock) => {
      const c = clock as Partial<Clock>;
      return typeof c.setTimeout === 'function' && typeof c.clearTimeout === 'function';
    }).optional(),
  })
  .check((ctx) => {
    const { pollDelayMs, maxPollDelayMs } = ctx.value;
    if (maxPollDelayMs < pollDelayMs) {
      ctx.issues.push({ code: 'custom', input: maxPollDelayMs, path: ['maxPollDelayMs'], message: `${EXPECTED.millis(pollDelayMs)} (pollDelayMs)` });
    }
  });
const _declared: DeclaresEvery<z.input<typeof consumerOptionsSchema>, ConsumerOptions> = true;

export function createConsumer(options: ConsumerOptions = {}): Consumer {
  const {
    workers,
    periodic,
    prefetch,
    pollDelayMs,
    pollBackoff,
    maxPollDelayMs,
    drainTimeoutMs,
    maxDeliveries,
    maxRestarts,
    openTimeoutMs,
    leaseMs,
    metrics: withMetrics,
    pool,
    poolMemoryMb,
    ...given
  } = parseOptions(consumerOptionsSchema, options, 'createConsumer');
  if (poolRole.child) {
    throw new ConfigError(
      'createConsumer: called in a pool thread or process while it imported command modules: keep createConsumer() out of the modules that define commands',
    );
  }
  const logger = given.logger ?? pino({ name: 'taskmill' });
  const commands = given.registry ?? globalRegistry;

  const configured = given.queue ?? getSettings().queue ?? defaultQueueUrl();
  const ownsQueue = !(configured instanceof BaseQueue);
  const open = (url: string, name?: string) =>
    createQueue(url, {
      onWarning: (message) => logger.warn(message),
      ...(leaseMs !== undefined ? { leaseMs } : {}),
      ...(name !== undefined ? { name } : {}),
    });
  let queue: BaseQueue;
  if (given.queues !== undefined) {
    const names = given.queues;
    if (configured instanceof BaseQueue)
      throw new ConfigError('createConsumer: queues needs queue as a URL (the queues are opened on its server), not a BaseQueue');
    queue = names.length === 1 ? open(configured, names[0]) : new OrderedQueues(names.map((name) => open(configured, name)));
  } else {
    queue = configured instanceof BaseQueue ? configured : open(configured);
  }

  // The runners' queue events, published by the queue adapter while a listener is registered.
  const events = new EventFeed();
  // Where the runners settle each job with the queue adapter: a call, not an event per job.
  const settlements = new Settlements();
  // What each worker's runner runs now, for the heartbeat (a worker's own `job` is its share's first).
  const running = new Map<string, LeasedMessage>();
  // The supervisor's actor is made below; the metrics read it only when scraped.
  const metrics = withMetrics ? metricsFor(queue, () => actor) : undefined;
  // Threads and processes for commands that run in a pool: none is started unless one does.
  const pools = new Pools({ logger, memoryMb: poolMemoryMb });
  const worker = workerMachine.provide({
    actors: {
      runCommand: createRunCommand({
        commands,
        logger,
        maxDeliveries,
        events,
        settlements,
        running,
        metrics,
        queueName: queueNameOf(queue),
        pools,
        pool,
        resultTtlMs: getSettings().resultTtlMs ?? DEFAULT_RESULT_TTL_MS,
      }),
    },
  });
  const scheduler = schedulerMachine.provide({
    actions: {
      logSlotWritten: (_, { key, id }) => {
        if (id) logger.info({ slot: key, messageId: id }, 'periodic command enqueued');
        else logger.debug({ slot: key }, 'periodic slot already claimed by another consumer');
      },
      logSlotFailed: (_, { key, error }) => {
        logger.warn({ slot: key, err: toError(error) }, 'periodic slot could not be claimed; retrying within its minute (or interval slot)');
      },
      logSlotGivenUp: (_, { key }) => logger.error({ slot: key }, 'periodic slot missed: its minute (or interval slot) passed while the queue was failing'),
    },
  });
  const machine = supervisorMachine.provide({
    actors: {
      queueAdapter: createQueueAdapter({
        queue,
        logger,
        openTimeoutMs,
        events,
        settlements,
        heartbeat: { id: queue.owner, state: consumerState(queue, () => actor, Date.now(), running) },
      }),
      worker,
      scheduler,
    },
    actions: {
      logRunning: ({ context }) =>
        logger.info(
          { workers: context.workers, queue: queue instanceof OrderedQueues ? queue.names : queue.name, periodic: context.periodicCommands.length > 0 },
          'consumer running',
        ),
      logWorkerFailure: (_, { workerId, error }) => {
        if (error instanceof WorkerCommandError) {
          logger.error(
            { worker: workerId, command: error.command, job: error.jobId, messageId: error.job.id, err: error.cause },
            'command failed; worker replaced',
          );
        } else {
          logger.error({ worker: workerId, err: toError(error) }, 'worker crashed; replaced');
        }
      },
      logChildFailure: (_, { actorId, error }) => logger.error({ actor: actorId, err: toError(error) }, 'actor failed'),
      logDraining: () => logger.info('draining: no new reads; waiting for running commands'),
      logForcing: () => logger.warn('forcing stop: aborting running commands and releasing their leases'),
      logInvalidScale: (_, { workers }) => logger.warn({ workers }, 'SCALE ignored: workers must be an integer from 1 to 1000'),
      logGaveUp: (_, { restarts }) => logger.error({ restarts }, 'restart limit reached; consumer failing'),
    },
  });

  const input: SupervisorInput = {
    workers,
    periodic,
    periodicCommands: commands
      .periodic()
      .map((c) => ({ name: c.name, schedule: c.schedule!, every: isIntervalSchedule(c.schedule!) ? c.schedule.every : undefined })),
    reader: {
      prefetch,
      delayMs: pollDelayMs,
      backoff: pollBackoff,
      maxDelayMs: maxPollDelayMs,
      blocking: queue.blocking,
      waitTimeoutMs: Math.max(pollDelayMs, maxPollDelayMs),
    },
    drainTimeoutMs,
    ...(maxRestarts !== undefined ? { maxRestarts } : {}),
    now: given.clock?.now ? given.clock.now.bind(given.clock) : Date.now,
    // The scheduler's messages: a fresh id and enqueuedAt per run, made here so machines/ stays pure.
    newMessage: (command, now) => encodeMessage(command, [], { now }).data,
  };
  const actor = createActor(machine, {
    input,
    ...(given.inspect ? { inspect: given.inspect } : {}),
    ...(given.clock ? { clock: given.clock } : {}),
  });

  let started: Promise<void> | null = null;
  let stopping = false;
  let resolveDone!: (result: StopResult) => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<StopResult>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => {}); // observed through start()/stop(); never an unhandled rejection

  const finish = async (status: 'done' | 'error', error?: unknown): Promise<void> => {
    const snapshot = actor.getSnapshot();
    await pools.close();
    if (ownsQueue) {
      await queue.close().catch((e) => logger.warn({ err: toError(e) }, 'closing the queue failed'));
    }
    if (status === 'error') return rejectDone(error);
    if (snapshot.value === 'failed') return rejectDone(snapshot.context.error ?? new Error('consumer failed'));
    logger.info({ forced: snapshot.context.forced }, 'consumer stopped');
    resolveDone({ forced: snapshot.context.forced });
  };

  let preparing = false;
  /** Starts the actors; resolves once the supervisor is running. */
  const run = () =>
    new Promise<void>((resolve, reject) => {
      const sub = actor.subscribe({
        next: (snapshot) => {
          if (snapshot.value === 'starting') return;
          sub.unsubscribe();
          if (snapshot.value === 'running') resolve();
          else done.then(() => reject(new Error('consumer stopped before it started')), reject);
        },
        error: reject,
      });
      actor.start();
    });

  actor.subscribe({
    complete: () => void finish('done'),
    // An unhandled actor error must not be rethrown into the host's event loop.
    error: (error) => {
      logger.error({ err: toError(error) }, 'consumer crashed');
      void finish('error', error);
    },
  });

  return {
    actor,
    queue,
    metrics: metrics?.registry ?? null,
    done,
    send: (event) => actor.send(event),
    start() {
      if (started) return started;
      /** start() failed before the actors ran: `done` rejects with the same error. */
      const failStart = async (error: unknown): Promise<never> => {
        if (!stopping) {
          stopping = true;
          actor.stop();
          await finish('error', error);
        }
        throw error;
      };
      let pooled: boolean;
      try {
        pooled = pools.plan(
          commands,
          pool,
          given.modules?.map((file) => path.resolve(file)),
        );
      } catch (error) {
        return (started = failStart(toError(error)));
      }
      // With commands in a pool, one child of each kind starts first: a module it cannot import fails start().
      const ready = pooled ? pools.prepare() : null;
      started = ready
        ? ready.then(() => {
            if (stopping) throw new Error('consumer stopped before it started');
            preparing = false;
            return run();
          }, failStart)
        : run();
      if (ready) preparing = true;
      return started;
    },
    async stop({ timeout } = {}) {
      const snapshot = actor.getSnapshot();
      // Idempotent: a second stop() waits for the first (force explicitly with send({ type: 'FORCE' })).
      if (snapshot.status === 'active' && !stopping) {
        stopping = true;
        if (!started || preparing) {
          actor.stop();
          await finish('done');
          return done;
        }
        // The supervisor keeps the deadline (after: drainTimeout), so there is one clock for it.
        actor.send(timeout === undefined ? { type: 'STOP' } : { type: 'STOP', timeoutMs: timeout });
      }
      return done;
    },
  };
}
