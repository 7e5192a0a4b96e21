/**
 * Fakes and tools for the machine tests: a fake queue adapter and a fake
 * run-command actor (provided with `.provide()` in place of the real I/O), a
 * harness that hosts one machine under test next to them, a simulated clock
 * that fires each timer at its own due time, coverage of the real machine's
 * states and transitions, and transition-covering paths of an abstract model.
 */
import { describe, expect, it } from 'vitest';
import {
  createActor,
  fromCallback,
  fromTransition,
  setup,
  SimulatedClock,
  type AnyActorLogic,
  type AnyActorRef,
  type AnyStateMachine,
  type AnyStateNode,
  type AnyTransitionDefinition,
  type EventObject,
  type InspectionEvent,
} from 'xstate';
import { isDeepStrictEqual, inspect as show } from 'node:util';
import { getAdjacencyMap, getShortestPaths, getStateNodes } from 'xstate/graph';
import type {
  JobCancel,
  JobResult,
  LeasedMessage,
  RetryPlan,
  QueueAdapterEvent,
  QueueReplyEvent,
  RunnerInEvent,
  RunnerOutEvent,
} from '../../src/machines/protocol.js';
import type { RunCommandInput } from '../../src/machines/worker.js';

// ── time ───────────────────────────────────────────────────────────────────

type Timeouts = Map<number, { start: number; timeout: number }>;

/**
 * Moves a SimulatedClock forward by `ms`, stopping at every timer's due time
 * so each fires at its own instant (SimulatedClock.increment jumps straight to
 * the end and fires everything due "late", at the final time).
 */
export function advance(clock: SimulatedClock, ms: number): void {
  const end = clock.now() + ms;
  const timeouts = (clock as unknown as { timeouts: Timeouts }).timeouts;
  for (;;) {
    let next: { start: number; timeout: number } | null = null;
    for (const t of timeouts.values()) if (!next || t.start + t.timeout < next.start + next.timeout) next = t;
    if (!next || next.start + next.timeout > end) break;
    // The clock fires a timer when `now - start >= timeout`; with fractional
    // delays `start + timeout - start` can round below `timeout`, so step up
    // to the first float where it does not.
    let at = Math.max(next.start + next.timeout, clock.now());
    while (at - next.start < next.timeout) at = nextFloat(at);
    clock.set(at);
  }
  if (clock.now() < end) clock.set(end);
}

function nextFloat(x: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) + (x >= 0 ? 1n : -1n));
  return view.getFloat64(0);
}

/** Due times (absolute, ms) of the clock's pending timers, soonest first. */
export function pendingTimers(clock: SimulatedClock): number[] {
  return [...(clock as unknown as { timeouts: Timeouts }).timeouts.values()].map((t) => t.start + t.timeout).sort((a, b) => a - b);
}

// ── coverage of a real machine ─────────────────────────────────────────────

function transitionKey(t: AnyTransitionDefinition): string {
  const always = (t.source.always ?? []).indexOf(t);
  if (always !== -1) return `${t.source.id} always#${always}`;
  return `${t.source.id} ${t.eventType}#${(t.source.transitions.get(t.eventType) ?? []).indexOf(t)}`;
}

function allTransitionKeys(machine: AnyStateMachine): string[] {
  const keys: string[] = [];
  for (const node of [machine.root, ...getStateNodes(machine.root)] as AnyStateNode[]) {
    for (const [eventType, list] of node.transitions) list.forEach((_, i) => keys.push(`${node.id} ${eventType}#${i}`));
    (node.always ?? []).forEach((_, i) => keys.push(`${node.id} always#${i}`));
  }
  return keys;
}

/**
 * Which state nodes and transitions of one machine (matched by id, so a
 * `.provide()`d copy counts) were entered / taken, seen through the actor
 * system's inspection stream: '@xstate.microstep' carries the transitions
 * taken and the state after them, '@xstate.snapshot' the initial state.
 *
 * A transition whose actions throw (the worker's `failed` entry) never
 * produces a microstep: the actor just errors. When an actor of this machine
 * reports an error, the transition it was taking is recomputed from its last
 * snapshot and the last event delivered to it.
 */
export class Coverage {
  readonly states: readonly string[];
  readonly transitions: readonly string[];
  readonly seenStates = new Set<string>();
  readonly seenTransitions = new Set<string>();
  readonly #lastSnapshot = new WeakMap<AnyActorRef, unknown>();
  readonly #lastEvent = new WeakMap<AnyActorRef, EventObject>();

  constructor(readonly machine: AnyStateMachine) {
    this.states = getStateNodes(machine.root).map((n) => n.id);
    this.transitions = allTransitionKeys(machine);
  }

  #isMine(actorRef: unknown): actorRef is AnyActorRef & { logic: AnyStateMachine } {
    const logic = (actorRef as { logic?: { id?: string; root?: unknown } } | undefined)?.logic;
    return !!logic?.root && logic.id === this.machine.id;
  }

  #enter(nodes: readonly AnyStateNode[]): void {
    for (const node of nodes) if (node.path.length > 0) this.seenStates.add(node.id);
  }

  readonly inspect = (event: InspectionEvent): void => {
    if (event.type === '@xstate.event') {
      if (this.#isMine(event.actorRef)) this.#lastEvent.set(event.actorRef, event.event);
      const source = event.sourceRef;
      if (event.event.type.startsWith('xstate.error.actor.') && this.#isMine(source)) this.#recordFailedTransition(source);
      return;
    }
    if (event.type !== '@xstate.microstep' && event.type !== '@xstate.snapshot') return;
    if (!this.#isMine(event.actorRef)) return;
    this.#lastSnapshot.set(event.actorRef, event.snapshot);
    this.#enter((event.snapshot as { _nodes?: AnyStateNode[] })._nodes ?? []);
    if (event.type === '@xstate.microstep') {
      for (const t of (event as { _transitions: AnyTransitionDefinition[] })._transitions) this.seenTransitions.add(transitionKey(t));
    }
  };

  #recordFailedTransition(actorRef: AnyActorRef & { logic: AnyStateMachine }): void {
    const snapshot = this.#lastSnapshot.get(actorRef);
    const event = this.#lastEvent.get(actorRef);
    if (!snapshot || !event) return;
    const taken = actorRef.logic.getTransitionData(snapshot as never, event) as AnyTransitionDefinition[];
    for (const t of taken) {
      this.seenTransitions.add(transitionKey(t));
      for (const target of t.target ?? []) {
        for (let n: AnyStateNode | undefined = target; n; n = n.parent) this.#enter([n]);
      }
    }
  }

  uncovered(): { states: string[]; transitions: string[] } {
    return {
      states: this.states.filter((s) => !this.seenStates.has(s)),
      transitions: this.transitions.filter((t) => !this.seenTransitions.has(t)),
    };
  }

  summary(label: string): string {
    const { states, transitions } = this.uncovered();
    const pct = (n: number, of: number) => `${n}/${of} (${Math.round((100 * n) / of)}%)`;
    const missing = [...states.map((s) => `state ${s}`), ...transitions.map((t) => `transition ${t}`)];
    return (
      `[coverage] ${this.machine.id} ${label}: states ${pct(this.states.length - states.length, this.states.length)}, ` +
      `transitions ${pct(this.transitions.length - transitions.length, this.transitions.length)}` +
      (missing.length > 0 ? `; not covered: ${missing.join(', ')}` : '')
    );
  }
}

/**
 * The last tests of a machine's file: they fail, naming what was missed,
 * when the model paths (or all the file's tests) leave a state or a
 * transition of the real machine untaken. Declared last so they run last
 * (a file's tests run in order); a `-t` filter that skips them skips the check.
 */
export function describeCoverage(model: Coverage, all: Coverage): void {
  describe(`coverage of the ${all.machine.id} machine`, () => {
    it('the model paths take every state and transition', () => expectCovered(model, 'model paths'));
    it("the file's tests together take every state and transition", () => expectCovered(all, 'all tests'));
  });
}

function expectCovered(coverage: Coverage, label: string): void {
  const { states, transitions } = coverage.uncovered();
  if (states.length > 0 || transitions.length > 0) throw new Error(coverage.summary(label));
  expect(coverage.seenTransitions.size).toBe(coverage.transitions.length);
}

/** Fans one inspection stream out to several observers. */
export function inspectAll(...observers: ((event: InspectionEvent) => void)[]): (event: InspectionEvent) => void {
  return (event) => {
    for (const observer of observers) observer(event);
  };
}

// ── abstract models and their paths ────────────────────────────────────────

/**
 * A cheap deep-equality assertion for the replay loops, which check tens of
 * thousands of values (vitest's expect costs ~20 µs a call).
 */
export function same(what: string, actual: unknown, expected: unknown): void {
  if (!isDeepStrictEqual(actual, expected)) throw new Error(`${what}: expected ${show(expected, { depth: 4 })}, got ${show(actual, { depth: 4 })}`);
}

export interface ModelPath<S, E> {
  /** The stimuli, in order. */
  events: E[];
  /** The model's state after each event (same length as `events`). */
  states: S[];
}

/**
 * Paths through an abstract model (a pure reducer with an `enabled(state)`
 * list of stimuli) that together take EVERY transition of the model: for each
 * edge, the shortest path to its source (xstate/graph's getShortestPaths)
 * followed by the edge; paths that are a prefix of another are dropped.
 */
export function transitionCoveringPaths<S, E extends EventObject>(
  initial: S,
  reduce: (state: S, event: E) => S,
  enabled: (state: S) => readonly E[],
): ModelPath<S, E>[] {
  const logic = fromTransition((state: S, event: E) => reduce(state, event), initial);
  const serialize = (snapshot: { context: S }) => JSON.stringify(snapshot.context);
  const options = {
    events: (snapshot: { context: S }) => enabled(snapshot.context),
    serializeState: serialize as never,
  };
  const adjacency = getAdjacencyMap(logic, options as never);
  const shortest = new Map<string, E[]>();
  for (const path of getShortestPaths(logic, options as never)) {
    shortest.set(
      serialize(path.state),
      path.steps.slice(1).map((s) => s.event),
    );
  }
  const candidates: E[][] = [];
  for (const [key, { transitions }] of Object.entries(adjacency)) {
    const head = shortest.get(key);
    if (!head) throw new Error(`model state unreachable by shortest paths: ${key}`);
    const edges: { event: E }[] = Object.values(transitions);
    if (edges.length === 0) candidates.push(head);
    for (const { event } of edges) candidates.push([...head, event]);
  }
  // Longest first; drop any path that is a prefix of one already kept.
  candidates.sort((a, b) => b.length - a.length);
  const prefixes = new Set<string>();
  const paths: ModelPath<S, E>[] = [];
  for (const events of candidates) {
    const keys = events.map((_, i) => JSON.stringify(events.slice(0, i + 1)));
    if (prefixes.has(keys[keys.length - 1] ?? '[]')) continue;
    for (const k of keys) prefixes.add(k);
    const states: S[] = [];
    let state = initial;
    for (const event of events) states.push((state = reduce(state, event)));
    paths.push({ events, states });
  }
  return paths;
}

/**
 * Fewer, longer paths that still take every model transition: walk the
 * model's graph (xstate/graph's getAdjacencyMap), always taking an untaken
 * edge of the current state, else the shortest way to the nearest state that
 * has one; start a new path from the initial state only when none is
 * reachable (a final state). Replaying a path costs one actor system, so this
 * is much cheaper than one path per edge for large models.
 */
export function coveringWalks<S, E extends EventObject>(initial: S, reduce: (state: S, event: E) => S, enabled: (state: S) => readonly E[]): ModelPath<S, E>[] {
  const logic = fromTransition((state: S, event: E) => reduce(state, event), initial);
  const serialize = (snapshot: { context: S }) => JSON.stringify(snapshot.context);
  const adjacency = getAdjacencyMap(logic, {
    events: (snapshot: { context: S }) => enabled(snapshot.context),
    serializeState: serialize,
  }) as unknown as Record<string, { transitions: Record<string, { event: E; state: { context: S } }> }>;
  const edges = new Map<string, { event: E; to: string }[]>();
  const untaken = new Map<string, Set<number>>();
  let remaining = 0;
  for (const [key, { transitions }] of Object.entries(adjacency)) {
    const list = Object.values(transitions).map(({ event, state }) => ({ event, to: serialize(state) }));
    edges.set(key, list);
    untaken.set(key, new Set(list.map((_, i) => i)));
    remaining += list.length;
  }
  const start = JSON.stringify(initial);
  const paths: ModelPath<S, E>[] = [];
  while (remaining > 0) {
    let at = start;
    const events: E[] = [];
    for (;;) {
      const open = untaken.get(at)!;
      if (open.size === 0) {
        // breadth-first to the nearest state with an untaken edge
        const from = new Map<string, { prev: string; edge: number }>([[at, { prev: '', edge: -1 }]]);
        const queue = [at];
        let found: string | null = null;
        while (queue.length > 0 && !found) {
          const key = queue.shift()!;
          edges.get(key)!.forEach(({ to }, i) => {
            if (found || from.has(to)) return;
            from.set(to, { prev: key, edge: i });
            if (untaken.get(to)!.size > 0) found = to;
            else queue.push(to);
          });
        }
        if (!found) break;
        const route: E[] = [];
        for (let key: string = found; key !== at; key = from.get(key)!.prev) {
          const { prev, edge } = from.get(key)!;
          route.unshift(edges.get(prev)![edge]!.event);
        }
        events.push(...route);
        at = found;
        continue;
      }
      const index = open.values().next().value as number;
      open.delete(index);
      remaining--;
      const edge = edges.get(at)![index]!;
      events.push(edge.event);
      at = edge.to;
    }
    if (events.length === 0) break;
    const states: S[] = [];
    let state = initial;
    for (const event of events) states.push((state = reduce(state, event)));
    paths.push({ events, states });
  }
  return paths;
}

// ── fake queue adapter ─────────────────────────────────────────────────────

export interface FakeQueue {
  /** The queue-adapter logic to provide. */
  readonly logic: ReturnType<typeof fromCallback<QueueAdapterEvent>>;
  /** Every event the adapter received, in order. */
  readonly received: QueueAdapterEvent[];
  of<T extends QueueAdapterEvent['type']>(type: T): Extract<QueueAdapterEvent, { type: T }>[];
  /** Replies to the adapter's parent (QUEUE_READY, QUEUE_FAILED, QUEUE_CLOSED). */
  toParent(event: QueueReplyEvent): void;
  /** Replies to the actor registered under a systemId (`reader`, `scheduler`), as the real adapter does. */
  to(systemId: string, event: QueueReplyEvent | EventObject): void;
  /** Makes the adapter actor fail (its next received event throws). */
  crash(error?: Error): void;
}

export function createFakeQueue(): FakeQueue {
  const received: QueueAdapterEvent[] = [];
  let sendBack: ((event: QueueReplyEvent) => void) | null = null;
  let system: { get(id: string): AnyActorRef | undefined } | null = null;
  let self: AnyActorRef | null = null;
  let crashWith: Error | null = null;
  const logic = fromCallback<QueueAdapterEvent>(({ sendBack: back, receive, system: sys, self: me }) => {
    sendBack = back;
    system = sys as typeof system;
    self = me;
    receive((event) => {
      if (crashWith) throw crashWith;
      received.push(event);
    });
  });
  return {
    logic,
    received,
    of: (type) => received.filter((e) => e.type === type) as never,
    toParent: (event) => {
      if (!sendBack) throw new Error('fake queue not started');
      sendBack(event);
    },
    to: (systemId, event) => {
      const target = system?.get(systemId);
      if (!target) throw new Error(`no actor registered as ${systemId}`);
      target.send(event);
    },
    crash: (error = new Error('queue adapter crashed')) => {
      crashWith = error;
      self?.send({ type: 'CRASH' });
    },
  };
}

// ── fake run-command ───────────────────────────────────────────────────────

interface RunnerRecord {
  /** What its worker started it with. */
  input: RunCommandInput;
  /** Every message handed to it, in order (a JOB's `message`, then its `more`). */
  runs: LeasedMessage[];
  /** How many JOBs (shares) it was handed. */
  shares: number;
  aborts: string[];
  /** The cancels the worker forwarded, each CANCEL's list. */
  cancels: (readonly JobCancel[])[];
  /** The running share's first message; null between shares. */
  current: LeasedMessage | null;
  /** The running share's messages not started (the real runner works through them). */
  unstarted: LeasedMessage[];
  /** RELEASE_UNSTARTED events received (drain, retirement). */
  releaseRequests: number;
  sendBack: (event: RunnerOutEvent) => void;
  /** The queue adapter, as the real runner reaches it (its settling calls are events to it by default). */
  queue: () => AnyActorRef | undefined;
  stopped: boolean;
}

export interface FakeRunner {
  readonly logic: ReturnType<typeof fromCallback<RunnerInEvent, RunCommandInput>>;
  /** Runner state per workerId (one runner per worker for its whole life). */
  readonly byWorker: Map<string, RunnerRecord>;
  /** How many runner actors were ever started. */
  readonly started: number;
  get(workerId: string): RunnerRecord;
  /** Worker ids whose runner holds a share, in start order. */
  busy(): string[];
  /**
   * Ends the share as the real runner does: ACKs each of its messages to the
   * queue (`result` with the first), then SHARE_DONE.
   */
  done(workerId: string, result?: JobResult): void;
  /** Reports COMMAND_FAILED for the share's current message, with the unstarted rest; `error` may be any thrown value, `undefined` included. */
  fail(workerId: string, ...failure: [error?: unknown, command?: string, extra?: { retry?: RetryPlan; result?: JobResult }]): void;
}

export function createFakeRunner(): FakeRunner {
  const byWorker = new Map<string, RunnerRecord>();
  let started = 0;
  const logic = fromCallback<RunnerInEvent, RunCommandInput>(({ input, sendBack, receive, system }) => {
    started++;
    const record: RunnerRecord = {
      input,
      runs: [],
      shares: 0,
      aborts: [],
      cancels: [],
      current: null,
      unstarted: [],
      releaseRequests: 0,
      sendBack: sendBack,
      queue: () => system.get('queue') as AnyActorRef | undefined,
      stopped: false,
    };
    byWorker.set(input.workerId, record);
    receive((event) => {
      if (event.type === 'JOB') {
        record.shares++;
        record.runs.push(event.message, ...(event.more ?? []));
        record.current = event.message;
        record.unstarted = [...(event.more ?? [])];
      } else if (event.type === 'ABORT') {
        record.aborts.push(event.reason);
      } else if (event.type === 'CANCEL') {
        record.cancels.push(event.cancels);
      } else if (event.type === 'RELEASE_UNSTARTED') {
        record.releaseRequests++;
        const messages = record.unstarted.splice(0);
        if (messages.length > 0) record.queue()?.send({ type: 'RELEASE', messages });
      }
    });
    return () => {
      record.stopped = true;
    };
  });
  const get = (workerId: string) => {
    const record = byWorker.get(workerId);
    if (!record) throw new Error(`no runner for ${workerId}`);
    return record;
  };
  const current = (workerId: string) => {
    const record = get(workerId);
    if (!record.current) throw new Error(`${workerId} has no job`);
    return record;
  };
  return {
    logic,
    byWorker,
    get started() {
      return started;
    },
    get,
    busy: () => [...byWorker].filter(([, r]) => r.current && !r.stopped).map(([id]) => id),
    done: (workerId, result) => {
      const record = current(workerId);
      const settled = [record.current!, ...record.unstarted.splice(0)];
      record.current = null;
      settled.forEach((m, i) => record.queue()?.send({ type: 'ACK', id: m.id, delivery: m.delivery, ...(i === 0 && result ? { result } : {}) }));
      record.sendBack({ type: 'SHARE_DONE', finished: settled.length });
    },
    fail: (workerId, ...failure) => {
      const record = current(workerId);
      const message = record.current!;
      record.current = null;
      record.sendBack({
        type: 'COMMAND_FAILED',
        error: failure.length > 0 ? failure[0] : new Error('command failed'),
        command: failure[1] ?? 'task',
        jobId: `job-of-${message.id}`,
        message,
        unstarted: record.unstarted.splice(0),
        ...failure[2],
      });
    },
  };
}

// ── fake workers (for the reader) ──────────────────────────────────────────

export interface FakeWorker {
  readonly ref: AnyActorRef;
  /** Every message dispatched to it, in order (a JOB's `message`, then its `more`). */
  readonly jobs: LeasedMessage[];
  /** Every event it got (JOB, RETIRE_CONFIRMED, …). */
  readonly received: EventObject[];
}

/** A stand-in worker: an actor that only records what the reader sends it. */
export function createFakeWorker(): FakeWorker {
  const jobs: LeasedMessage[] = [];
  const received: EventObject[] = [];
  const ref = createActor(
    fromCallback<EventObject>(({ receive }) => {
      receive((event) => {
        received.push(event);
        if (event.type === 'JOB') {
          const { message, more } = event as { type: 'JOB'; message: LeasedMessage; more?: readonly LeasedMessage[] };
          jobs.push(message, ...(more ?? []));
        }
      });
    }),
  ).start();
  return { ref, jobs, received };
}

let messageSeq = 0;
/** Fresh leased messages with unique ids. */
export function messages(n: number, data = '{}'): LeasedMessage[] {
  return Array.from({ length: n }, () => ({ id: `m${++messageSeq}`, data, attempt: 1, delivery: messageSeq }));
}

// ── a host for one machine under test ──────────────────────────────────────

export interface Harness {
  /** The machine under test (a child of the harness, like in the real system). */
  readonly sut: AnyActorRef;
  readonly root: AnyActorRef;
  readonly queue: FakeQueue;
  readonly clock: SimulatedClock;
  /** Events the harness (the SUT's parent) received: READER_DRAINED, xstate.error.actor.*, … */
  readonly parentReceived: EventObject[];
  /** Events the stand-in reader (systemId `reader`) received, when `withReaderStub`. */
  readonly readerReceived: EventObject[];
  stop(): void;
}

export interface HarnessOptions {
  logic: AnyActorLogic;
  input?: unknown;
  /** The SUT's actor id (default `sut`). */
  id?: string;
  /** The SUT's systemId (e.g. `reader`, `scheduler`). */
  systemId?: string;
  /** Register a recording stand-in under systemId `reader` (for the worker). */
  withReaderStub?: boolean;
  clock?: SimulatedClock;
  inspect?: (event: InspectionEvent) => void;
}

/**
 * Runs `logic` as the child of a small parent that also hosts a fake queue
 * adapter (systemId `queue`) and, optionally, a recording reader stand-in —
 * the same neighbourhood the supervisor gives it.
 */
export function createHarness(options: HarnessOptions): Harness {
  const queue = createFakeQueue();
  const clock = options.clock ?? new SimulatedClock();
  const parentReceived: EventObject[] = [];
  const readerReceived: EventObject[] = [];
  const readerStub = fromCallback<EventObject>(({ receive }) => {
    receive((event) => {
      readerReceived.push(event);
    });
  });
  const id = options.id ?? 'sut';
  const harness = setup({ actors: { queue: queue.logic, readerStub, sut: options.logic } }).createMachine({
    id: 'harness',
    invoke: [
      { id: 'queue', systemId: 'queue', src: 'queue' },
      ...(options.withReaderStub ? [{ id: 'readerStub', systemId: 'reader', src: 'readerStub' as const }] : []),
      { id, src: 'sut', input: options.input as never, ...(options.systemId ? { systemId: options.systemId } : {}) },
    ],
    on: {
      '*': {
        actions: ({ event }) => {
          parentReceived.push(event);
        },
      },
    },
  });
  const root = createActor(harness, { clock, ...(options.inspect ? { inspect: options.inspect } : {}) });
  root.start();
  const sut = root.getSnapshot().children[id] as AnyActorRef;
  return { sut, root, queue, clock, parentReceived, readerReceived, stop: () => root.stop() };
}
