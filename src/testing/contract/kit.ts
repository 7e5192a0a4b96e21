/**
 * What the contract modules share: the target a backend's test file passes in,
 * the timings the lease and delay tests wait out, the data they send, and the
 * harness that opens queues on a target and closes them after each test.
 */
import { afterEach, expect } from 'vitest';
import type { BaseQueue, QueueOptions, WriteOptions } from '../../backends/base.js';

export interface ContractTarget {
  /** A new BaseQueue instance. Instances created with the same options.name must share the same stored queue
   *  (a second consumer / a producer in another "process"). Different names must be isolated from each other. */
  create(options: QueueOptions): BaseQueue | Promise<BaseQueue>;
  /** Called once after the suite (drop temp files etc.). */
  cleanup?(): Promise<void>;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A lease short enough to wait out; checks that need it still held use a long lease instead. */
export const SHORT_LEASE = 150;
/** Comfortably past SHORT_LEASE. */
export const PAST_SHORT_LEASE = 300;

let nameCounter = 0;
export function freshName(): string {
  return `c-${process.pid}-${++nameCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Matches any delivery token in a message compared whole (its value is the backend's). */
export const ANY_DELIVERY = expect.any(Number) as unknown;

/** A message id no backend hands out in a fresh queue. */
export const UNKNOWN_ID = '987654321';

/** A runAt this far ahead is due soon enough to wait for, yet far enough that a slow write still lands before it. */
export const DUE_SOON = 300;
/** Comfortably past DUE_SOON (counted from before the write). */
export const PAST_DUE = 600;
/** A runAt that no test waits for. */
export const FAR_AHEAD = 3_600_000;

/** writeBatch is not on BaseQueue, but every backend has it; the contract checks it with and without runAt. */
export type BatchWriter = BaseQueue & { writeBatch(datas: readonly string[], options?: WriteOptions): Promise<string[]> };

export function batchWriter(queue: BaseQueue): BatchWriter {
  const candidate = queue as Partial<BatchWriter>;
  if (typeof candidate.writeBatch !== 'function') throw new Error(`${queue.constructor.name} has no writeBatch()`);
  return queue;
}

/** The data the round-trip tests send: empty, unicode, NUL, lone surrogates, ~1 MiB. */
export function awkwardTexts(): string[] {
  const cycle = Array.from({ length: 90 }, (_, i) => String.fromCharCode(33 + i)).join('');
  const big = cycle.repeat(Math.ceil((1024 * 1024) / cycle.length)).slice(0, 1024 * 1024);
  return [
    '',
    'plain ascii',
    'héllo wörld — ✓ 日本語 🎉👩‍👩‍👧',
    'nul\u0000inside\u0000',
    'lone high \ud800 end',
    '\udc00 lone low first',
    '\ud83d',
    '{"json":[1,2,3],"quote":"\\"","nl":"\n"}',
    "x'; DROP TABLE taskmill_messages;--",
    big,
  ];
}

/** A runAt due soon enough to wait for (counted from now). */
export const soon = (): WriteOptions => ({ runAt: Date.now() + DUE_SOON });
/** A runAt that no test waits for. */
export const far = (): WriteOptions => ({ runAt: Date.now() + FAR_AHEAD });

export async function writeAll(queue: BaseQueue, datas: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const data of datas) ids.push(await queue.write(data));
  return ids;
}

/** Opens queues on the target for one suite; every queue it opened is closed after each test. */
export interface ContractHarness {
  target: ContractTarget;
  /** Queues to close after the test: a test that creates one without open() pushes it here. */
  opened: BaseQueue[];
  /** Opens an instance on `name` (another "process" on the same queue when the name repeats). */
  open: (name: string, options?: Omit<QueueOptions, 'name'>) => Promise<BaseQueue>;
  /** One queue name, and `count` instances (distinct owners) on it. */
  instances: (count: number, options?: Omit<QueueOptions, 'name'>) => Promise<BaseQueue[]>;
  /** Two owners on one name: `a` with a short lease, `b` with the default (long) one. */
  shortAndLong: () => Promise<[BaseQueue, BaseQueue]>;
  one: (options?: Omit<QueueOptions, 'name'>) => Promise<BaseQueue>;
}

/** Call inside the suite's describe: it registers the afterEach that closes the queues. */
export function contractHarness(target: ContractTarget): ContractHarness {
  const opened: BaseQueue[] = [];

  async function open(name: string, options: Omit<QueueOptions, 'name'> = {}): Promise<BaseQueue> {
    const queue = await target.create({ ...options, name });
    opened.push(queue);
    await queue.open();
    return queue;
  }

  async function instances(count: number, options: Omit<QueueOptions, 'name'> = {}): Promise<BaseQueue[]> {
    const name = freshName();
    const out: BaseQueue[] = [];
    for (let i = 0; i < count; i++) out.push(await open(name, options));
    return out;
  }

  async function shortAndLong(): Promise<[BaseQueue, BaseQueue]> {
    const name = freshName();
    return [await open(name, { leaseMs: SHORT_LEASE }), await open(name)];
  }

  async function one(options: Omit<QueueOptions, 'name'> = {}): Promise<BaseQueue> {
    const [queue] = await instances(1, options);
    return queue!;
  }

  afterEach(async () => {
    const queues = opened.splice(0);
    await Promise.all(queues.map((queue) => queue.close()));
  });

  return { target, opened, open, instances, shortAndLong, one };
}
