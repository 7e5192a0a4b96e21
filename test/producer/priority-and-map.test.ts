/**
 * The producer's side of priorities and bulk enqueue: the `priority` command
 * option and `schedule({ priority })`, `cmd.map(argsList)`; bad input is
 * refused before anything is written. The backends' order is their contract
 * (src/testing/contract/priorities.ts); real consumer processes run a mixed
 * backlog in test/e2e (backends-e2e.ts).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, configure, createConsumer, queueCommand, registry, type Consumer } from '../../src/index.js';
import { decodeMessage } from '../../src/codec/message.js';
import { waitFor } from '../helpers/processes.js';
import { freshMemoryQueue } from '../fixtures/cli-consumer-kit.js';

let n = 0;
const unique = (label: string) => `${label}-${++n}-${process.pid}`;
const defined: string[] = [];
function define<A extends unknown[]>(options: Parameters<typeof queueCommand>[0] & object, fn: (...args: A) => unknown) {
  const cmd = queueCommand(options as never, fn as never) as unknown as ReturnType<typeof queueCommand<A, unknown>>;
  defined.push(cmd.commandName);
  return cmd;
}

afterEach(() => {
  for (const name of defined.splice(0)) registry.unregister(name);
  configure({ immediate: false });
});

describe('priority', () => {
  it('a command option outside -1000..1000 or not an integer is refused at definition, naming it', () => {
    for (const priority of [1.5, 1001, -1001, Number.NaN]) {
      expect(() => queueCommand({ name: unique('bad'), priority }, () => {})).toThrow(/queueCommand: invalid priority/);
    }
  });

  it("writes the command's priority, and schedule({ priority }) overrides it for one call", async () => {
    const queue = freshMemoryQueue();
    const write = vi.spyOn(queue, 'write');
    const cmd = define({ name: unique('prio'), queue, priority: 4 }, () => {});
    await cmd();
    await cmd.schedule({ priority: -2 });
    await cmd.schedule({ delay: 60_000 });
    expect(write.mock.calls.map(([, options]) => options?.priority)).toEqual([4, -2, 4]);
    // A consumer reads the priority-4 job first, then the -2 one (the third is delayed).
    const [first, second] = await queue.readBatch(10);
    expect(write.mock.calls[0]![0]).toBe(first!.data);
    expect(write.mock.calls[1]![0]).toBe(second!.data);
  });

  it('schedule() refuses a bad priority, delay with eta, or an unknown option, and writes nothing', async () => {
    const queue = freshMemoryQueue();
    const cmd = define({ name: unique('sched'), queue }, () => {});
    await expect(cmd.schedule({ priority: 2.5 })).rejects.toThrow(/schedule: invalid priority 2\.5: must be an integer from -1000 to 1000/);
    await expect(cmd.schedule({ priority: '1' as unknown as number })).rejects.toThrow(ConfigError);
    await expect(cmd.schedule({ delay: 1, eta: Date.now() })).rejects.toThrow(/delay or eta, not both/);
    await expect(cmd.schedule({ priorty: 1 } as never)).rejects.toThrow(/unknown option "priorty"/);
    await expect(cmd.schedule({ delay: -1 })).rejects.toThrow(/delay/);
    expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
  });

  it('a consumer with one worker starts a backlog highest priority first', async () => {
    const queue = freshMemoryQueue();
    const ran: number[] = [];
    const name = unique('order');
    const cmd = define({ name, queue }, (i: number) => void ran.push(i));
    await cmd.schedule({ priority: -1 }, 1);
    await cmd(2);
    await cmd.schedule({ priority: 1000 }, 3);
    await cmd.schedule({ priority: 7 }, 4);
    await cmd(5);
    let consumer: Consumer | undefined;
    try {
      consumer = createConsumer({ queue, workers: 1 });
      await consumer.start();
      await waitFor('five runs', () => ran.length === 5);
    } finally {
      await consumer?.stop();
    }
    expect(ran).toEqual([3, 4, 2, 5, 1]);
  });
});

describe('map', () => {
  it('enqueues one job per argument list in one writeBatch call, in order, with the command options', async () => {
    const queue = freshMemoryQueue();
    const batch = vi.spyOn(queue, 'writeBatch');
    const write = vi.spyOn(queue, 'write');
    const cmd = define({ name: unique('map'), queue, priority: 2 }, (a: number, b: string) => `${a}${b}`);
    const jobs = await cmd.map([
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
    ]);
    expect(batch).toHaveBeenCalledTimes(1);
    expect(write).not.toHaveBeenCalled();
    expect(batch.mock.calls[0]![1]).toEqual({ priority: 2 });
    expect(batch.mock.calls[0]![0].map((data) => decodeMessage(data).args)).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
    ]);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(3);
    expect(jobs.map((j) => j.id)).toEqual(batch.mock.calls[0]![0].map((data) => decodeMessage(data).id));
    expect(await queue.length()).toBe(3);
    expect(await cmd.map([])).toEqual([]);
  });

  it('a bad entry (not an array, or args that cannot be encoded) writes nothing', async () => {
    const queue = freshMemoryQueue();
    const cmd = define({ name: unique('map-bad'), queue }, (..._args: unknown[]) => {});
    await expect(cmd.map([[1], 2 as never, [3]])).rejects.toThrow(/entry #1 must be an array of arguments, got 2/);
    await expect(cmd.map([[1], [() => {}]])).rejects.toThrow();
    await expect(cmd.map(7 as never)).rejects.toThrow(/takes a list of argument lists, got 7/);
    expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
  });

  it('accepts any iterable, and under configure({ immediate: true }) runs each job in order', async () => {
    configure({ immediate: true });
    const seen: number[] = [];
    const cmd = define({ name: unique('map-now') }, (i: number) => {
      seen.push(i);
      return i * 10;
    });
    function* lists() {
      yield [1] as [number];
      yield [2] as [number];
    }
    const jobs = await cmd.map(lists());
    expect(seen).toEqual([1, 2]);
    expect(await Promise.all(jobs.map((j) => j.result()))).toEqual([10, 20]);
  });
});
