/**
 * Prometheus metrics: `createConsumer({ metrics: true })` counts each job's
 * outcome and run time per queue and command, and reads the queue's and the
 * workers' states when scraped; without it there is no registry. And
 * `taskmill consume --metrics PORT` serves them at /metrics on loopback.
 */
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CommandRegistry, createConsumer, MemoryQueue, SqliteQueue, type Consumer } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { jsonLines, tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { uniqueName } from '../helpers/services.js';
import { CLI_COMMANDS, spawnTaskmill } from '../fixtures/cli-helpers.js';

const silent = pino({ level: 'silent' });

/** The value of one sample line, e.g. `taskmill_jobs_total{queue="q",command="ok",outcome="completed"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

let consumer: Consumer | undefined;
afterEach(async () => {
  await consumer?.stop();
  consumer = undefined;
});

describe('consumer metrics', () => {
  it('count outcomes and run times per queue and command; the queue and worker gauges are read when scraped', async () => {
    const queue = new MemoryQueue(uniqueName('metrics'), { name: 'mq' });
    const registry = new CommandRegistry();
    let flaky = 0;
    const define = (name: string, fn: (...args: never[]) => unknown, options: Record<string, unknown> = {}) =>
      registry.register({ name, fn: fn as never, options: { name, ...options }, schedule: null, module: 'test', startGates: undefined });
    define('ok', () => 'fine');
    define('bad', () => {
      throw new Error('no');
    });
    define(
      'flaky',
      () => {
        if (flaky++ === 0) throw new Error('once');
      },
      { retries: 1 },
    );
    for (const command of ['ok', 'ok', 'ok', 'bad', 'flaky']) await queue.write(encodeMessage(command, []).data);
    await queue.write(encodeMessage('ok', []).data, { runAt: Date.now() + 3_600_000 });
    consumer = createConsumer({ queue, registry, workers: 2, periodic: false, logger: silent, metrics: true, pollDelayMs: 10, maxPollDelayMs: 20 });
    await consumer.start();
    await waitFor('five jobs settled', async () => (await queue.stats()).ready + (await queue.stats()).leased === 0 && flaky === 2, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const text = await consumer.metrics!.metrics();
    expect(sample(text, 'taskmill_jobs_total{queue="mq",command="ok",outcome="completed"}')).toBe(3);
    expect(sample(text, 'taskmill_jobs_total{queue="mq",command="bad",outcome="failed"}')).toBe(1);
    expect(sample(text, 'taskmill_jobs_total{queue="mq",command="flaky",outcome="retrying"}')).toBe(1);
    expect(sample(text, 'taskmill_jobs_total{queue="mq",command="flaky",outcome="completed"}')).toBe(1);
    expect(sample(text, 'taskmill_job_duration_seconds_count{queue="mq",command="ok"}')).toBe(3);
    expect(sample(text, 'taskmill_job_duration_seconds_count{queue="mq",command="flaky"}')).toBe(2);
    expect(sample(text, 'taskmill_job_duration_seconds_bucket{le="+Inf",queue="mq",command="bad"}')).toBe(1);
    expect(sample(text, 'taskmill_queue_jobs{queue="mq",state="delayed"}')).toBe(1);
    expect(sample(text, 'taskmill_queue_jobs{queue="mq",state="failed"}')).toBe(1);
    expect(sample(text, 'taskmill_queue_jobs{queue="mq",state="ready"}')).toBe(0);
    expect(sample(text, 'taskmill_workers{state="idle"}')).toBe(2);
    expect(sample(text, 'taskmill_workers{state="busy"}')).toBe(0);
  });

  it('a consumer without metrics has no registry; a non-boolean `metrics` is refused', () => {
    const queue = new MemoryQueue(uniqueName('plain'));
    expect(createConsumer({ queue, logger: silent }).metrics).toBeNull();
    expect(() => createConsumer({ queue, metrics: 'yes' as never })).toThrow(/createConsumer: invalid metrics "yes": must be true or false/);
  });
});

describe('taskmill consume --metrics', { timeout: 60_000 }, () => {
  const dir = tempDir('taskmill-metrics-');
  const spawned: Spawned[] = [];
  afterAll(() => spawned.forEach((c) => c.child.kill('SIGKILL')));

  it('serves GET /metrics on 127.0.0.1 (404 elsewhere, 405 for other methods) and stops with the consumer', async () => {
    const dbPath = path.join(dir, 'q.sqlite');
    const queue = new SqliteQueue(dbPath);
    for (let n = 0; n < 4; n++) await queue.write(encodeMessage('cli-ok', [n]).data);
    const child = spawnTaskmill(['consume', '-q', `sqlite:${dbPath}`, '-d', '0.02', '-m', '0.2', '--metrics', '0', CLI_COMMANDS], { cwd: dir });
    spawned.push(child);
    try {
      const url = () => jsonLines(child.stdout()).find((l) => l.msg === 'serving Prometheus metrics')?.url as string | undefined;
      await waitFor('the metrics URL', () => url() !== undefined || child.child.exitCode !== null, 30_000);
      expect(url(), child.stderr()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      await waitFor('four jobs', async () => (await queue.stats()).ready === 0, 20_000);
      await expect
        .poll(async () => sample(await (await fetch(url()!)).text(), 'taskmill_jobs_total{queue="default",command="cli-ok",outcome="completed"}'), {
          timeout: 10_000,
        })
        .toBe(4);
      const response = await fetch(url()!);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect((await fetch(url()!.replace('/metrics', '/other'))).status).toBe(404);
      expect((await fetch(url()!, { method: 'POST' })).status).toBe(405);
      child.child.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      await expect(fetch(url()!)).rejects.toThrow();
    } finally {
      await queue.close();
    }
  });

  it('refuses a port that is not one, naming the flag', async () => {
    const child = spawnTaskmill(['consume', '-q', `sqlite:${path.join(dir, 'x.sqlite')}`, '--metrics', 'x', CLI_COMMANDS], { cwd: dir });
    spawned.push(child);
    expect(await child.exited).toBe(1);
    expect(child.stderr()).toMatch(/invalid --metrics "x": must be an integer from 0 to 65535/);
  });
});
