/**
 * The dashboard's JSON API over a real node:http server: the token (401
 * without, 403 wrong; actions only from the header, never from another
 * site), queue stats, the live consumers, failed jobs with sanitised
 * arguments, retry that makes a failed job run again, a job's record,
 * 404 for an unknown job, and /metrics.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createConsumer, createDashboard, MemoryQueue, queueCommand, registry, type Consumer, type Dashboard } from '../../src/index.js';
import { uniqueName } from '../helpers/services.js';

let server: Server | undefined;
let consumer: Consumer | undefined;
let dashboard: Dashboard | undefined;
const defined: string[] = [];
afterEach(async () => {
  await consumer?.stop();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await dashboard?.close();
  for (const name of defined.splice(0)) registry.unregister(name);
  consumer = undefined;
  server = undefined;
});

async function serve(d: Dashboard): Promise<string> {
  server = createServer(d.handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('createDashboard: the JSON API', () => {
  it('needs its token; shows queues, consumers, failed jobs and a job; retry runs a failed job again', async () => {
    const queue = new MemoryQueue(uniqueName('dash'), { name: 'dash' });
    let attempts = 0;
    const flaky = queueCommand({ name: uniqueName('flaky'), queue, retries: 0 }, (user: { name: string; password: string }) => {
      if (attempts++ === 0) throw new Error(`no luck for ${user.name}`);
      return 'ok';
    });
    defined.push(flaky.commandName);
    const job = await flaky({ name: 'ada', password: 'hunter2' });
    consumer = createConsumer({ queue, workers: 2, periodic: false, logger: pino({ level: 'silent' }), pollDelayMs: 10, maxPollDelayMs: 20 });
    await consumer.start();
    await expect(job.result({ timeout: 10_000 })).rejects.toThrow(/no luck for ada/);

    dashboard = createDashboard({ queue });
    const base = await serve(dashboard);
    const auth = { authorization: `Bearer ${dashboard.token}` };
    const get = (path: string) => fetch(`${base}${path}`, { headers: auth });

    expect((await fetch(`${base}/api/queues`)).status).toBe(401);
    expect((await fetch(`${base}/api/queues`, { headers: { authorization: 'Bearer wrong-token-of-some-length' } })).status).toBe(403);
    expect((await fetch(`${base}/api/queues?token=${dashboard.token}`)).status).toBe(200);

    expect(await (await get('/api/queues')).json()).toEqual([{ name: 'dash', ready: 0, leased: 0, failed: 1, delayed: 0 }]);
    const consumers = (await (await get('/api/consumers')).json()) as Array<{ id: string; supervisor: string; workers: unknown[] }>;
    expect(consumers.map((c) => [c.id, c.supervisor, c.workers.length])).toEqual([[queue.owner, 'running', 2]]);

    const failed = (await (await get('/api/failed')).json()) as Array<{ id: string; command: string; jobId: string; args: unknown; error: string }>;
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ command: flaky.commandName, jobId: job.id });
    expect(failed[0]!.error).toMatch(/no luck for ada/);
    expect(failed[0]!.args).toEqual([{ name: 'ada', password: '[redacted]' }]); // sanitised as the inspector does, secrets redacted
    // The failed job's page: its arguments come from the failed store, which keeps the message.
    expect(await (await get(`/api/jobs/${job.id}`)).json()).toMatchObject({
      status: 'failed',
      command: flaky.commandName,
      args: [{ name: 'ada', password: '[redacted]' }],
      argsFrom: 'failed store',
      error: { message: 'no luck for ada' },
    });

    // Actions: only with the token in the header, never from another site.
    const retry = (init: RequestInit) => fetch(`${base}/api/failed/retry`, { method: 'POST', ...init });
    expect((await fetch(`${base}/api/failed/retry?token=${dashboard.token}`, { method: 'POST' })).status).toBe(403);
    expect((await retry({ headers: { ...auth, origin: 'https://evil.example' }, body: '{}' })).status).toBe(403);
    expect((await retry({ headers: auth, body: '{"ids": 5}' })).status).toBe(400);
    expect(await (await get('/api/queues')).json()).toEqual([{ name: 'dash', ready: 0, leased: 0, failed: 1, delayed: 0 }]); // nothing changed
    expect(await (await retry({ headers: auth, body: JSON.stringify({ ids: [failed[0]!.id] }) })).json()).toEqual({ requeued: 1 });
    await expect.poll(() => attempts, { timeout: 10_000 }).toBe(2);
    await expect.poll(async () => ((await (await get(`/api/jobs/${job.id}`)).json()) as { status: string }).status, { timeout: 10_000 }).toBe('completed');
    expect(await (await get(`/api/jobs/${job.id}`)).json()).toMatchObject({
      id: job.id,
      queue: 'dash',
      status: 'completed',
      attempt: 1,
      result: 'ok',
      error: null,
    });

    // Done: the message left with the ack, and the arguments with it.
    expect(await (await get(`/api/jobs/${job.id}`)).json()).toMatchObject({ args: null, argsFrom: null });

    const unknown = await get('/api/jobs/no-such-job');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toMatch(/no job no-such-job in queue dash/);
    expect((await get(`/api/jobs/${'x'.repeat(201)}`)).status).toBe(404); // longer than any job id
    expect((await get('/api/jobs/%E0%A4%A')).status).toBe(400); // malformed percent-encoding
    expect((await get('/api/nothing')).status).toBe(404);
    const metrics = await (await get('/metrics')).text();
    expect(metrics).toContain('taskmill_queue_jobs{queue="dash",state="failed"} 0');
  });

  it(
    "shows a running job's arguments (from the heartbeat) and a delayed one's (from its message), the reader and scheduler states, and the throughput history",
    { timeout: 30_000 },
    async () => {
      const queue = new MemoryQueue(uniqueName('dash'), { name: 'dash' });
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const slow = queueCommand({ name: uniqueName('slow'), queue, retries: 0 }, async (target: { url: string; apiKey: string; size: number }) => {
        await released;
        return target.size;
      });
      const quick = queueCommand({ name: uniqueName('quick'), queue, retries: 0 }, (n: number) => {
        if (n < 0) throw new Error('negative');
        return n;
      });
      defined.push(slow.commandName, quick.commandName);
      try {
        dashboard = createDashboard({ queue });
        const base = await serve(dashboard);
        const get = async (path: string) =>
          (await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${dashboard!.token}` } })).json() as Promise<any>;

        // Before any consumer beat: an hour of nothing.
        const empty = await get('/api/throughput');
        expect(empty).toMatchObject({ bucketMs: 60_000, queues: [{ name: 'dash', buckets: [] }] });
        expect(empty.to - empty.from).toBe(59 * 60_000);

        consumer = createConsumer({ queue, workers: 2, periodic: false, logger: pino({ level: 'silent' }), pollDelayMs: 10, maxPollDelayMs: 20 });
        await consumer.start();
        const quickJobs = await Promise.all([1, 2, 3, -1].map((n) => quick(n)));
        await Promise.allSettled(quickJobs.map((j) => j.result({ timeout: 10_000 })));
        const job = await slow({ url: 'https://user:pa55word@example.com/x', apiKey: 'k-123', size: 3 });

        // A running job's page: its arguments as the consumer's heartbeat (every 5 s) carries them.
        await expect.poll(async () => (await get(`/api/jobs/${job.id}`)).status, { timeout: 15_000, interval: 200 }).toBe('running');
        const running = await get(`/api/jobs/${job.id}`);
        expect(running).toMatchObject({ command: slow.commandName, argsFrom: 'running', worker: { consumer: queue.owner } });
        expect(running.args).toEqual([{ url: 'https://user:***@example.com/x', apiKey: '[redacted]', size: 3 }]);
        const [me] = await get('/api/consumers');
        expect(['waiting', 'reading', 'empty', 'blocked', 'backingOff']).toContain(me.reader);
        expect(['firing', 'waiting']).toContain(me.scheduler);
        const machines = (await get('/api/machines')) as Array<{ name: string; states: Array<{ id: string }> }>;
        expect(machines.map((m) => m.name)).toEqual(['supervisor', 'reader', 'worker', 'scheduler']);
        expect(machines.find((m) => m.name === 'reader')!.states.map((st) => st.id)).toContain(me.reader);
        expect(machines.find((m) => m.name === 'scheduler')!.states.map((st) => st.id)).toContain(me.scheduler);

        // A delayed job: its arguments from the message, which the backend holds until it runs.
        const later = await quick.schedule({ delay: 3_600_000 }, 5);
        expect(await get(`/api/jobs/${later.id}`)).toMatchObject({ status: 'delayed', command: quick.commandName, args: [5], argsFrom: 'delayed' });

        release();
        await job.result({ timeout: 10_000 });
        // Stopping sends the last counts with one beat: 4 done (3 quick, 1 slow), 1 failed, whatever the minutes.
        await consumer.stop();
        consumer = undefined;
        const { queues } = await get('/api/throughput');
        const buckets = queues[0].buckets as Array<{ minute: number; completed: number; failed: number }>;
        expect(buckets.reduce((n, b) => n + b.completed, 0)).toBe(4);
        expect(buckets.reduce((n, b) => n + b.failed, 0)).toBe(1);
        for (const b of buckets) expect(b.minute % 60_000).toBe(0);
      } finally {
        release();
      }
    },
  );

  it('refuses a short token and a queue that is neither a BaseQueue nor a URL, naming them', () => {
    expect(() => createDashboard({ queue: new MemoryQueue(uniqueName('d')), token: 'short' })).toThrow(/invalid token "short"/);
    expect(() => createDashboard({ queue: 42 as never })).toThrow(/queue must be a BaseQueue or a queue URL, got 42/);
  });
});
