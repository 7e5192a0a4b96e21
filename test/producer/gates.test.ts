/**
 * A command's `rateLimit` and `concurrency` end to end in one process (memory
 * backend): bad options refused at definition, key functions that misbehave
 * refused at enqueue with nothing written, and a consumer that holds the
 * limits without polling. The backends' guarantees are their contract
 * (src/testing/contract/gates.ts); real consumer processes on every backend
 * run in test/e2e (backends-e2e.ts).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, createConsumer, queueCommand, registry, type Consumer } from '../../src/index.js';
import { decodeMessage } from '../../src/codec/message.js';
import { waitFor } from '../helpers/processes.js';
import { freshMemoryQueue } from '../fixtures/cli-consumer-kit.js';

let n = 0;
const fresh = (label: string) => `${label}-${++n}-${process.pid}`;
const defined: string[] = [];
function define<A extends unknown[]>(options: Parameters<typeof queueCommand>[0] & object, fn: (...args: A) => unknown) {
  const cmd = queueCommand(options as never, fn as never) as unknown as ReturnType<typeof queueCommand<A, unknown>>;
  defined.push(cmd.commandName);
  return cmd;
}
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The times the queue granted a start. A run's own first line may be late by however long the
 * event loop was busy, so windows are checked on the grants (the memory queue decides inside
 * the synchronous part of the call; the 2 ms allowed below is the clock read around it).
 */
function recordGrants(queue: ReturnType<typeof freshMemoryQueue>): number[] {
  const grants: number[] = [];
  const original = queue.startGated.bind(queue);
  queue.startGated = (id, gates) => {
    const at = Date.now();
    const outcome = original(id, gates);
    void outcome.then((o) => o.decision === 'started' && grants.push(at));
    return outcome;
  };
  return grants;
}

let consumer: Consumer | undefined;
afterEach(async () => {
  await consumer?.stop();
  consumer = undefined;
  for (const name of defined.splice(0)) registry.unregister(name);
});

describe('rateLimit and concurrency: options', () => {
  it('refuses a limit ≤ 0, a fractional limit, a bad window, an unknown field or a key that is no function, at definition, naming it', () => {
    const bad: [object, RegExp][] = [
      [{ rateLimit: { limit: 0, per: 1000 } }, /invalid rateLimit\.limit 0: must be an integer from 1 to 1000000/],
      [{ rateLimit: { limit: 2.5, per: 1000 } }, /invalid rateLimit\.limit 2\.5/],
      [{ rateLimit: { limit: 1, per: 0 } }, /invalid rateLimit\.per 0/],
      [{ rateLimit: { limit: 1 } }, /invalid rateLimit\.per/],
      [{ rateLimit: { limit: 1, per: 10, every: 3 } }, /rateLimit/],
      [{ concurrency: { limit: -1 } }, /invalid concurrency\.limit -1/],
      [{ concurrency: { limit: 1, key: 'user' } }, /invalid concurrency\.key/],
      [{ concurrency: 3 }, /invalid concurrency 3/],
    ];
    for (const [options, message] of bad) {
      expect(() => queueCommand({ name: fresh('bad'), ...options } as never, () => {})).toThrow(ConfigError);
      expect(() => queueCommand({ name: fresh('bad'), ...options } as never, () => {})).toThrow(message);
    }
  });

  it('a key function that throws or returns no string refuses the enqueue (call, schedule, map), naming the option, and writes nothing', async () => {
    const queue = freshMemoryQueue();
    const rate = define({ name: fresh('rate'), queue, rateLimit: { limit: 1, per: 1000, key: (user: unknown) => user as string } }, (_user: unknown) => {});
    const conc = define(
      {
        name: fresh('conc'),
        queue,
        concurrency: {
          limit: 1,
          key: (user: unknown) => {
            if (user === 'boom') throw new Error('no tenant');
            return user as string;
          },
        },
      },
      (_user: string) => {},
    );
    await expect(rate(42)).rejects.toThrow(/invalid rateLimit\.key\(\) 42: must return a non-empty string/);
    await expect(rate('')).rejects.toThrow(/rateLimit key/);
    await expect(conc('boom')).rejects.toThrow(/concurrency\.key threw: no tenant; nothing was enqueued/);
    await expect(conc.schedule({ delay: 10 }, 'boom')).rejects.toThrow(ConfigError);
    await expect(conc.map([['a'], ['boom'], ['b']])).rejects.toThrow(/concurrency\.key threw/);
    expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
  });

  it("carries the key functions' values in the envelope, only when a command has them", async () => {
    const queue = freshMemoryQueue();
    const keyed = define(
      { name: fresh('keyed'), queue, rateLimit: { limit: 5, per: 1000, key: (t: string) => `t-${t}` }, concurrency: { limit: 1 } },
      (_tenant: string) => {},
    );
    const plain = define({ name: fresh('plain'), queue, rateLimit: { limit: 5, per: 1000 } }, () => {});
    await keyed('acme');
    await plain();
    const [a, b] = await queue.readBatch(2);
    const ea = decodeMessage(a!.data);
    const eb = decodeMessage(b!.data);
    expect([ea.rateKey, ea.concurrencyKey]).toEqual(['t-acme', undefined]);
    expect([eb.rateKey, eb.concurrencyKey]).toEqual([undefined, undefined]);
  });
});

describe('rateLimit and concurrency: a consumer', () => {
  it('runs at most `limit` jobs of a key at once, the others parked (not polled) until a slot frees', async () => {
    const queue = freshMemoryQueue();
    const running = new Map<string, number>();
    const most = new Map<string, number>();
    const ran: string[] = [];
    const cmd = define({ name: fresh('tenant'), queue, concurrency: { limit: 2, key: (tenant: string) => tenant } }, async (tenant: string, i: number) => {
      const now = (running.get(tenant) ?? 0) + 1;
      running.set(tenant, now);
      most.set(tenant, Math.max(most.get(tenant) ?? 0, now));
      await sleep(30);
      running.set(tenant, running.get(tenant)! - 1);
      ran.push(`${tenant}${i}`);
    });
    await cmd.map([...Array.from({ length: 8 }, (_, i) => ['a', i] as [string, number]), ...Array.from({ length: 3 }, (_, i) => ['b', i] as [string, number])]);
    const startGated = vi.spyOn(queue, 'startGated');
    consumer = createConsumer({ queue, workers: 8 });
    await consumer.start();
    await waitFor('eleven runs', () => ran.length === 11, 10_000);
    expect(Object.fromEntries(most)).toEqual({ a: 2, b: 2 });
    expect(ran.filter((r) => r.startsWith('a')).sort()).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7']);
    // Each job is asked about once per delivery: at most one park and one wake each, no polling loop.
    expect(startGated.mock.calls.length).toBeLessThanOrEqual(2 * 11);
  });

  it('starts at most `limit` jobs in any window of `per` ms, each job once, without polling for the next start', async () => {
    const queue = freshMemoryQueue();
    const starts: number[] = [];
    const cmd = define({ name: fresh('api'), queue, rateLimit: { limit: 3, per: 400 } }, () => void starts.push(Date.now()));
    await cmd.map(Array.from({ length: 10 }, () => []));
    const grants = recordGrants(queue);
    const startGated = vi.spyOn(queue, 'startGated');
    const promoteDue = vi.spyOn(queue, 'promoteDue');
    consumer = createConsumer({ queue, workers: 4 });
    const t0 = Date.now();
    await consumer.start();
    await waitFor('ten runs', () => starts.length === 10, 10_000);
    expect(grants).toHaveLength(10);
    for (let i = 0; i + 3 < grants.length; i++) expect(grants[i + 3]! - grants[i]!).toBeGreaterThanOrEqual(400 - 2);
    // Four windows for ten starts; the booked starts are promoted when due, not on the 1-second tick.
    expect(starts.at(-1)! - t0).toBeLessThan(3 * 400 + 700);
    expect(startGated.mock.calls.length).toBeLessThanOrEqual(2 * 10 + 3);
    // One promotion per booked window (plus the scheduler's ticks), not a loop.
    expect(promoteDue.mock.calls.length).toBeLessThan(15);
  });

  it('the two gates together: one at a time per key, and a rate over all keys', async () => {
    const queue = freshMemoryQueue();
    let running = 0;
    let most = 0;
    const starts: number[] = [];
    const cmd = define({ name: fresh('both'), queue, concurrency: { limit: 1 }, rateLimit: { limit: 2, per: 300 } }, async () => {
      running++;
      most = Math.max(most, running);
      starts.push(Date.now());
      await sleep(20);
      running--;
    });
    await cmd.map(Array.from({ length: 5 }, () => []));
    const grants = recordGrants(queue);
    consumer = createConsumer({ queue, workers: 4 });
    await consumer.start();
    await waitFor('five runs', () => starts.length === 5, 10_000);
    expect(most).toBe(1);
    expect(grants).toHaveLength(5);
    for (let i = 0; i + 2 < grants.length; i++) expect(grants[i + 2]! - grants[i]!).toBeGreaterThanOrEqual(300 - 2);
  });
});
