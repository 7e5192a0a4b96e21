/**
 * Composition survives kill -9, with real consumer processes on SQLite,
 * PostgreSQL and Redis (polling and blocking). Each consumer
 * (test/fixtures/composition-consumer.ts) logs every continuation write and
 * can SIGKILL itself right after one lands: after the write, before the ack
 * of the job that made it — the window where a plain write would enqueue
 * the next step twice.
 *
 * 1. A pipeline first(1) → second() → third('x'): consumer 1 runs `first`,
 *    writes `second` and dies. Consumer 2 runs `first` again (its lease
 *    lapsed), finds `second` already written (the claim holds), runs the
 *    rest. `first` ran twice; `second` and `third` were enqueued, and ran,
 *    once each.
 * 2. A group member(1..3) → gather('done'): consumer 2 dies right after the
 *    last member writes the callback; consumer 3 runs that member again, its
 *    callback write is refused, and `gather` runs once with [1, null, 9].
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configure, createQueue, group, pipeline, type BaseQueue } from '../../src/index.js';
import { deleteRedisPrefix } from '../fixtures/backends-e2e.js';
import { first, gather, member, second, third } from '../fixtures/composition-commands.js';
import { ROOT, spawnTsx, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { POSTGRES_URL, REDIS_URL, dropPostgresSchema, hasPostgres, hasRedis, uniqueName } from '../helpers/services.js';

const CONSUMER = path.join(ROOT, 'test', 'fixtures', 'composition-consumer.ts');
const LEASE_MS = 1000;

interface Backend {
  kind: string;
  available: boolean;
  url(dir: string): string;
  dispose(url: string): Promise<void>;
}

const BACKENDS: Backend[] = [
  { kind: 'SQLite', available: true, url: (dir) => `sqlite:${path.join(dir, 'queue.sqlite')}`, dispose: async () => {} },
  {
    kind: 'PostgreSQL',
    available: hasPostgres,
    url: () => `${POSTGRES_URL}?schema=${uniqueName('compose_e2e').replace(/-/g, '_')}`,
    dispose: dropPostgresSchema,
  },
  { kind: 'Redis (polling)', available: hasRedis, url: () => `${REDIS_URL}?prefix=${uniqueName('compose-e2e')}`, dispose: deleteRedisPrefix },
  { kind: 'Redis (blocking)', available: hasRedis, url: () => `${REDIS_URL}?prefix=${uniqueName('compose-e2e')}&blocking=true`, dispose: deleteRedisPrefix },
];

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

/** Runs per command name, from the "<command> <args> <pid>" lines. */
function runs(file: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of lines(file)) {
    const [command, ...rest] = line.split(' ');
    (out[command!] ??= []).push(rest.slice(0, -1).join(' '));
  }
  return out;
}

/** Continuation writes per claim key: what each call returned ('null': refused, the key was claimed). */
function writes(file: string): Map<string, { id: string; pid: number }[]> {
  const out = new Map<string, { id: string; pid: number }[]>();
  for (const line of lines(file)) {
    const [key, id, pid] = line.split(' ');
    if (!out.has(key!)) out.set(key!, []);
    out.get(key!)!.push({ id: id!, pid: Number(pid) });
  }
  return out;
}

describe.each(BACKENDS)('composition under kill -9 on $kind, real processes', (backend) => {
  it.skipIf(!backend.available)('the next step and the callback are enqueued once; the steps that wrote them ran again', { timeout: 90_000 }, async () => {
    const dir = tempDir('taskmill-compose-e2e-');
    dirs.push(dir);
    const url = backend.url(dir);
    const recordFile = path.join(dir, 'runs.txt');
    const writesFile = path.join(dir, 'writes.txt');
    const queue: BaseQueue = createQueue(url);
    configure({ queue });
    const children: Spawned[] = [];
    const consumer = (killOn?: string) => {
      const env: NodeJS.ProcessEnv = { RECORD_FILE: recordFile, WRITES_FILE: writesFile, KILL_ON: killOn ?? '' };
      const spawned = spawnTsx([CONSUMER, url, String(LEASE_MS)], { env });
      children.push(spawned);
      return spawned;
    };
    try {
      // 1. the pipeline: consumer 1 dies right after writing `second`, before acking `first`.
      const job = await pipeline(first.with(1), second.with(), third.with('x'));
      const one = consumer('taskmill:step:');
      expect(await one.exited, one.stderr()).toBe('SIGKILL');
      expect(runs(recordFile)).toEqual({ first: ['[1]'] });
      const two = consumer('taskmill:group:');
      expect(await job.result({ timeout: 30_000 })).toBe('x:20');

      // 2. the group: consumer 2 dies right after the last member writes the callback.
      const g = await group([member.with(1), member.with(2), member.with(3)]).then(gather.with('done'));
      expect(await two.exited, two.stderr()).toBe('SIGKILL');
      const three = consumer();
      expect(await g.callback!.result({ timeout: 30_000 })).toBe('done [1,null,9]');
      expect(await g.result()).toEqual([1, null, 9]);
      // The member that wrote the callback was never acked (or failed): it runs again once its lease lapses.
      await waitFor('the member that wrote the callback to run again', () => (runs(recordFile).member?.length ?? 0) >= 4, 30_000);
      await waitFor('its second callback write', () => lines(writesFile).filter((l) => l.startsWith('taskmill:group:')).length >= 2, 30_000);
      await waitFor('the queue to settle', async () => (await queue.stats()).leased === 0, 30_000);
      three.child.kill('SIGTERM');
      expect(await three.exited, three.stderr()).toBe(0);

      const ran = runs(recordFile);
      expect(ran.first).toEqual(['[1]', '[1]']); // on consumer 1, and again on consumer 2: its ack never landed
      expect(ran.second).toEqual(['[2]']); // enqueued once although `first` wrote it twice
      expect(ran.third).toEqual(['[20,"x"]']);
      expect(ran.gather).toEqual(['[[1,null,9],"done"]']); // once, with the members' results in order
      expect(ran.member!.length).toBeGreaterThanOrEqual(4); // the member that wrote the callback ran again
      expect(new Set(ran.member)).toEqual(new Set(['[1]', '[2]', '[3]']));

      const claims = writes(writesFile);
      const keys = [...claims.keys()];
      expect(keys.filter((k) => k.startsWith('taskmill:step:'))).toHaveLength(2); // second's and third's
      expect(keys.filter((k) => k.startsWith('taskmill:group:'))).toHaveLength(1);
      for (const [key, calls] of claims) {
        expect(
          calls.filter((c) => c.id !== 'null'),
          `${key}: exactly one write landed`,
        ).toHaveLength(1);
      }
      // The two keys a kill interrupted were written again by the next consumer, and refused.
      // (A consumer's last write is the one it killed itself after.)
      for (const [victim, prefix] of [
        [one, 'taskmill:step:'],
        [two, 'taskmill:group:'],
      ] as const) {
        const own = lines(writesFile).filter((line) => line.endsWith(` ${victim.child.pid}`));
        const [key, id] = own.at(-1)!.split(' ');
        expect(key!.startsWith(prefix) && id !== 'null', `consumer ${victim.child.pid} died after a write of its own: ${own.join('; ')}`).toBe(true);
        expect(claims.get(key!)!.length, `${key} was written again after the kill`).toBeGreaterThanOrEqual(2);
      }
      expect(await queue.stats()).toMatchObject({ ready: 0, leased: 0, delayed: 0, failed: 1 }); // member(2)
    } finally {
      for (const child of children) if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
      await queue.close();
      await backend.dispose(url);
    }
  });
});
