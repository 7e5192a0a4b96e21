/**
 * Unique jobs at the command level: `unique` and `schedule({ uniqueKey })`.
 * What the backends promise is their contract (src/testing/contract/unique.ts);
 * real processes enqueue one key five times in test/e2e (backends-e2e.ts).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, configure, createConsumer, queueCommand, registry } from '../../src/index.js';
import { waitFor } from '../helpers/processes.js';
import { freshMemoryQueue } from '../fixtures/cli-consumer-kit.js';

let n = 0;
const defined: string[] = [];
const fresh = (label: string) => {
  const name = `${label}-${++n}-${process.pid}`;
  defined.push(name);
  return name;
};

afterEach(() => {
  for (const name of defined.splice(0)) registry.unregister(name);
  configure({ immediate: false });
});

describe('unique commands', () => {
  it('unique: true keys on the arguments: the same call again returns the waiting job and writes nothing', async () => {
    const queue = freshMemoryQueue();
    const cmd = queueCommand({ name: fresh('u'), queue, unique: true }, (_a: number, _b: string) => {});
    const first = await cmd(1, 'x');
    expect(first.duplicate).toBe(false);
    const again = await Promise.all([cmd(1, 'x'), cmd(1, 'x'), cmd(1, 'x')]);
    for (const job of again) {
      expect(job.duplicate).toBe(true);
      expect(job.id).toBe(first.id);
      expect(job.messageId).toBe(first.messageId);
    }
    expect((await cmd(2, 'x')).duplicate).toBe(false);
    expect(await queue.length()).toBe(2);
  });

  it('the key is free once the job has run: enqueuing again writes a new job', async () => {
    const queue = freshMemoryQueue();
    const ran: number[] = [];
    const cmd = queueCommand({ name: fresh('u-run'), queue, unique: true }, (x: number) => void ran.push(x));
    const first = await cmd(7);
    expect((await cmd(7)).duplicate).toBe(true);
    const consumer = createConsumer({ queue, workers: 1 });
    await consumer.start();
    try {
      await waitFor('one run', () => ran.length === 1);
      await first.result({ timeout: 5_000 });
      const second = await cmd(7);
      expect(second.duplicate).toBe(false);
      expect(second.id).not.toBe(first.id);
      await waitFor('two runs', () => ran.length === 2);
    } finally {
      await consumer.stop();
    }
    expect(ran).toEqual([7, 7]);
  });

  it('unique.key computes the key (per command); a key function that throws or returns no string is refused, nothing written', async () => {
    const queue = freshMemoryQueue();
    const byUser = queueCommand({ name: fresh('u-key'), queue, unique: { key: (user: number) => `user-${user}` } }, (_user: number, _n: number) => {});
    const a = await byUser(1, 100);
    expect((await byUser(1, 200)).id).toBe(a.id);
    expect((await byUser(2, 100)).duplicate).toBe(false);
    // Same key text, another command: not a duplicate (keys are per command).
    const other = queueCommand({ name: fresh('u-key-2'), queue, unique: { key: () => 'user-1' } }, () => {});
    expect((await other()).duplicate).toBe(false);

    const throwing = queueCommand(
      {
        name: fresh('u-throw'),
        queue,
        unique: {
          key: () => {
            throw new Error('no tenant');
          },
        },
      },
      () => {},
    );
    await expect(throwing()).rejects.toThrow(/unique.key threw: no tenant; nothing was enqueued/);
    const numeric = queueCommand({ name: fresh('u-num'), queue, unique: { key: (() => 5) as never } }, () => {});
    await expect(numeric()).rejects.toThrow(ConfigError);
    await expect(numeric()).rejects.toThrow(/invalid unique\.key\(\) 5: must return a non-empty string/);
    expect(await queue.length()).toBe(3);
  });

  it('bad unique options are refused at definition, naming them', () => {
    expect(() => queueCommand({ name: fresh('bad-u'), unique: 'yes' as never }, () => {})).toThrow(/invalid unique "yes"/);
    expect(() => queueCommand({ name: fresh('bad-u2'), unique: { ttl: 0 } }, () => {})).toThrow(/invalid unique/);
    expect(() => queueCommand({ name: fresh('bad-u3'), unique: { key: 'k' as never } }, () => {})).toThrow(/invalid unique/);
  });

  it('schedule({ uniqueKey }) makes one call unique, on any command; bad keys are refused', async () => {
    const queue = freshMemoryQueue();
    const cmd = queueCommand({ name: fresh('u-sched'), queue }, (_x: number) => {});
    const a = await cmd.schedule({ uniqueKey: 'nightly', delay: 60_000 }, 1);
    const b = await cmd.schedule({ uniqueKey: 'nightly' }, 2);
    expect(b).toMatchObject({ id: a.id, duplicate: true });
    expect(await queue.stats()).toMatchObject({ ready: 0, delayed: 1 });
    await expect(cmd.schedule({ uniqueKey: '' }, 3)).rejects.toThrow(/schedule: invalid uniqueKey "": must be a non-empty string/);
  });

  it('map() honours unique: a key repeated in the list, or already waiting, is written once', async () => {
    const queue = freshMemoryQueue();
    const cmd = queueCommand({ name: fresh('u-map'), queue, unique: true }, (_x: number) => {});
    const waiting = await cmd(1);
    const jobs = await cmd.map([[1], [2], [2], [3]]);
    expect(jobs.map((j) => j.duplicate)).toEqual([true, false, true, false]);
    expect(jobs[0]!.id).toBe(waiting.id);
    expect(jobs[2]!.id).toBe(jobs[1]!.id);
    expect(await queue.length()).toBe(3);
  });

  it('unique.ttl frees the key after that long even though the job still waits', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const queue = freshMemoryQueue();
      const cmd = queueCommand({ name: fresh('u-ttl'), queue, unique: { ttl: 1_000 } }, () => {});
      const a = await cmd();
      expect((await cmd()).duplicate).toBe(true);
      vi.setSystemTime(Date.now() + 1_500);
      const b = await cmd();
      expect(b.duplicate).toBe(false);
      expect(b.id).not.toBe(a.id);
    } finally {
      vi.useRealTimers();
    }
  });
});
