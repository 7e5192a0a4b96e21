/**
 * A real consumer (MemoryQueue, 2 workers, a command that fails once and is
 * retried) watched through the relay by a WebSocket client, and through the
 * inspect log: both see the supervisor running and the failed worker's
 * replacement, and neither carries a job's arguments or results.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CommandRegistry, createConsumer, type Consumer, type ConsumerOptions, type MemoryQueue } from '../../src/index.js';
import { encodeMessage } from '../../src/codec/message.js';
import { createInspectLog, startInspector, type InspectorMessage, type InspectorRelay } from '../../src/inspect/index.js';
import { tempDir, waitFor } from '../helpers/processes.js';
import { freshMemoryQueue } from '../fixtures/cli-consumer-kit.js';

const SECRET = `secret-marker-${randomUUID()}`;

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Scenario {
  consumer: Consumer;
  queue: MemoryQueue;
  /** The envelope text of the flaky job's first attempt. */
  flakyData: string;
  calls: () => number;
}

/** flaky(SECRET) throws once, then succeeds on its retry; echo(SECRET) returns the secret (a stored result). */
async function startScenario(options: { inspect?: ConsumerOptions['inspect'] } = {}): Promise<Scenario> {
  let calls = 0;
  const registry = new CommandRegistry();
  const fail = (text: unknown) => {
    calls += 1;
    if (calls === 1) throw new Error('first attempt fails');
    return `done ${String(text)}`;
  };
  registry.register({ name: 'flaky', fn: fail, options: { name: 'flaky', retries: 1 }, schedule: null, module: 'test' });
  registry.register({ name: 'echo', fn: (text: unknown) => ({ echoed: text }), options: { name: 'echo' }, schedule: null, module: 'test' });
  const queue = freshMemoryQueue();
  const consumer = createConsumer({
    queue,
    registry,
    workers: 2,
    logger: pino({ level: 'silent' }),
    pollDelayMs: 5,
    maxPollDelayMs: 20,
    ...(options.inspect ? { inspect: options.inspect } : {}),
  });
  cleanups.push(() => consumer.stop({ timeout: 0 }).catch(() => {}));
  await consumer.start();
  return { consumer, queue, flakyData: '', calls: () => calls };
}

async function runJobs(scenario: Scenario): Promise<void> {
  const { queue, consumer } = scenario;
  const flaky = encodeMessage('flaky', [SECRET]);
  scenario.flakyData = flaky.data;
  await queue.write(flaky.data);
  await queue.write(encodeMessage('echo', [SECRET]).data);
  await waitFor(
    'flaky retried and everything acked',
    async () => {
      const stats = await queue.stats();
      return scenario.calls() === 2 && consumer.actor.getSnapshot().context.restarts === 1 && stats.leased === 0 && (await queue.length()) === 0;
    },
    10_000,
    10,
  );
}

function viewer(relay: InspectorRelay): Promise<{ ws: WebSocket; texts: string[]; messages: InspectorMessage[] }> {
  const ws = new WebSocket(relay.wsUrl);
  const texts: string[] = [];
  const messages: InspectorMessage[] = [];
  ws.on('message', (data) => {
    texts.push(String(data));
    messages.push(JSON.parse(String(data)) as InspectorMessage);
  });
  cleanups.push(() => ws.close());
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, texts, messages }));
    ws.once('error', reject);
  });
}

const actors = (messages: InspectorMessage[]) => messages.filter((m) => m.type === '@xstate.actor');
const eventsOf = (messages: InspectorMessage[], type: string) =>
  messages.filter((m) => m.type === '@xstate.event' && (m.event as { type: string }).type === type).map((m) => m.event as Record<string, unknown>);
/** The reader's dispatches: the JOB events a worker received (each worker hands its JOB on to its runner, a second event). */
const dispatches = (messages: InspectorMessage[]) => {
  const workers = new Set(
    actors(messages)
      .filter((m) => /^worker-/.test(m.name as string))
      .map((m) => m.sessionId),
  );
  return messages
    .filter((m) => m.type === '@xstate.event' && (m.event as { type: string }).type === 'JOB' && workers.has(m.sessionId))
    .map((m) => m.event as Record<string, unknown>);
};

describe('the relay, watched by a WebSocket client', () => {
  it('shows the supervisor running and a worker replaced, without arguments or results', async () => {
    const relay = await startInspector();
    cleanups.push(() => relay.close());
    const { texts, messages } = await viewer(relay);
    const scenario = await startScenario({ inspect: relay.inspect });
    await runJobs(scenario);
    await scenario.consumer.stop();
    await waitFor('the supervisor stopped', () =>
      messages.some((m) => m.type === '@xstate.snapshot' && (m.snapshot as { value: unknown }).value === 'stopped'),
    );

    for (const m of messages) {
      expect(['@xstate.actor', '@xstate.event', '@xstate.snapshot']).toContain(m.type);
      expect(m._version).toBe('0.7.2');
      expect(m.sessionId).toEqual(expect.any(String));
    }
    const supervisor = actors(messages).find((m) => m.name === 'supervisor')!;
    expect(supervisor).toBeDefined();
    expect(supervisor.parentId).toBeUndefined();
    expect(JSON.parse(supervisor.definition as string)).toMatchObject({ id: 'supervisor', initial: 'starting' });
    const supervisorValues = messages
      .filter((m) => m.type === '@xstate.snapshot' && m.sessionId === supervisor.sessionId)
      .map((m) => (m.snapshot as { value: unknown }).value);
    expect(supervisorValues).toContain('running');

    // The failure reaches the supervisor as a reduced error, then the replacement registers under it.
    const failures = messages.filter((m) => m.type === '@xstate.event' && /^xstate\.error\.actor\.worker-[12]$/.test((m.event as { type: string }).type));
    expect(failures).toHaveLength(1);
    const failure = failures[0]!;
    expect(failure.sessionId).toBe(supervisor.sessionId);
    const error = (failure.event as { error: Record<string, unknown> }).error;
    expect(error).toMatchObject({ name: 'WorkerCommandError', command: 'flaky', cause: { name: 'Error', message: 'first attempt fails' } });
    expect(Object.keys(error).sort()).toEqual(['cause', 'command', 'jobId', 'message', 'name', 'stack', 'workerId']);
    const failedWorker = (failure.event as { type: string }).type.slice('xstate.error.actor.'.length);
    const replacement = actors(messages).find((m) => m.name === `${failedWorker}-r1`);
    expect(replacement, `${failedWorker}-r1 registered`).toBeDefined();
    expect(replacement!.parentId).toBe(supervisor.sessionId);
    expect(messages.indexOf(replacement!)).toBeGreaterThan(messages.indexOf(failure));

    // Jobs are visible by id, command and size only.
    const jobs = dispatches(messages).map((e) => e.message as Record<string, unknown>);
    const firstFlaky = jobs.find((j) => j.command === 'flaky' && j.attempt === 1)!;
    expect(firstFlaky).toMatchObject({ data: `[payload: ${Buffer.byteLength(scenario.flakyData)} bytes]`, job: expect.any(String), id: expect.any(String) });
    expect(jobs.map((j) => j.command).sort()).toEqual(['echo', 'flaky', 'flaky']);
    const retry = eventsOf(messages, 'RETRY')[0]!;
    expect(retry).toMatchObject({ message: { command: 'flaky' }, plan: { data: expect.stringMatching(/^\[payload: \d+ bytes\]$/) } });
    expect((retry.result as { record: string }).record).toMatch(/^\[result: \d+ bytes\]$/);
    // Runners ack by a call into the queue adapter, not an event; any event that carries a result shows only its size.
    const withResults = messages.filter((m) => m.type === '@xstate.event' && (m.event as { result?: unknown }).result);
    expect(withResults.length).toBeGreaterThanOrEqual(1);
    for (const m of withResults) expect((m.event as { result: { record: string } }).result.record).toMatch(/^\[result: \d+ bytes\]$/);

    expect(texts.join('\n')).not.toContain(SECRET);
  });

  it('attach(): a viewer that connects late gets the live actors (not the dead worker); nothing is sent once it leaves', async () => {
    const relay = await startInspector();
    cleanups.push(() => relay.close());
    const scenario = await startScenario();
    const detach = relay.attach(scenario.consumer.actor);
    cleanups.push(detach);
    await runJobs(scenario);
    expect(relay.stats()).toEqual({ viewers: 0, sent: 0, dropped: 0 });

    const { ws, texts, messages } = await viewer(relay);
    await waitFor('the replay', () => actors(messages).length >= 6);
    const names = actors(messages).map((m) => m.name);
    expect(names[0]).toBe('supervisor');
    expect(names.sort()).toEqual([
      'queue',
      'reader',
      'runner',
      'runner',
      'scheduler',
      'supervisor',
      expect.stringMatching(/^worker-[12]$/),
      expect.stringMatching(/^worker-[12]-r1$/),
    ]);
    const supervisor = actors(messages)[0]!;
    expect((supervisor.snapshot as { value: unknown }).value).toBe('running');
    expect((supervisor.snapshot as { context: { workerIds: string[] } }).context.workerIds).toHaveLength(2);

    // Live events flow while the viewer is there…
    await scenario.queue.write(encodeMessage('echo', [SECRET]).data);
    await waitFor('the echo job seen', () => dispatches(messages).length === 1);
    expect(texts.join('\n')).not.toContain(SECRET);

    // …and stop with it.
    ws.close();
    await waitFor('the viewer gone', () => relay.stats().viewers === 0);
    const sent = relay.stats().sent;
    await scenario.queue.write(encodeMessage('echo', ['again']).data);
    await waitFor('the second echo acked', async () => (await scenario.queue.stats()).leased === 0 && (await scenario.queue.length()) === 0, 5_000, 10);
    expect(relay.stats().sent).toBe(sent);
  });
});

describe('the inspect log', () => {
  it('writes one parseable line per event: the replacement, which worker ran which job, no arguments or results', async () => {
    const file = path.join(tempDir('taskmill-inspect-'), 'inspect.jsonl');
    const log = createInspectLog(file);
    cleanups.push(() => log.close().catch(() => {}));
    const scenario = await startScenario({ inspect: log.inspect });
    await runJobs(scenario);
    await scenario.consumer.stop();
    await log.close();

    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(SECRET);
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const line of lines) {
      expect(Number.isNaN(Date.parse(line.t as string))).toBe(false);
      expect(['actor', 'event', 'snapshot']).toContain(line.kind);
      expect(line.actor).toEqual(expect.any(String));
    }
    expect(lines.some((l) => l.kind === 'snapshot' && l.actor === 'supervisor' && l.value === 'running')).toBe(true);

    const failure = lines.find((l) => l.kind === 'event' && /^xstate\.error\.actor\.worker-[12]$/.test(l.type as string))!;
    expect(failure).toMatchObject({ target: 'supervisor', event: { error: { name: 'WorkerCommandError', command: 'flaky' } } });
    const failedWorker = (failure.type as string).slice('xstate.error.actor.'.length);
    const replacement = lines.find((l) => l.kind === 'actor' && l.actor === `${failedWorker}-r1`);
    expect(replacement).toMatchObject({ parent: 'supervisor', logic: 'worker' });
    expect(lines.indexOf(replacement!)).toBeGreaterThan(lines.indexOf(failure));

    // Which worker ran what: the failed worker was handed the flaky job's first attempt.
    // The reader's dispatches (a worker hands each JOB on to its runner: that second event's source is the worker).
    const jobs = lines.filter((l) => l.kind === 'event' && l.type === 'JOB' && l.source === 'reader');
    expect(jobs.map((l) => (l.event as { message: { command: string } }).message.command).sort()).toEqual(['echo', 'flaky', 'flaky']);
    const firstFlaky = jobs.find(
      (l) =>
        (l.event as { message: { command: string; attempt: number } }).message.attempt === 1 &&
        (l.event as { message: { command: string } }).message.command === 'flaky',
    )!;
    expect(firstFlaky).toMatchObject({ source: 'reader', target: failedWorker });
    expect(lines.some((l) => l.kind === 'snapshot' && l.actor === failedWorker && l.value === 'busy')).toBe(true);
  });

  it('attach() logs the actors alive at that moment, then everything after', async () => {
    const file = path.join(tempDir('taskmill-inspect-'), 'attached.jsonl');
    const log = createInspectLog(file, { context: true });
    const scenario = await startScenario();
    const detach = log.attach(scenario.consumer.actor);
    await scenario.queue.write(encodeMessage('echo', [SECRET]).data);
    await waitFor('echo acked', async () => (await scenario.queue.stats()).leased === 0 && (await scenario.queue.length()) === 0, 5_000, 10);
    detach();
    await scenario.consumer.stop();
    await log.close();
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(SECRET);
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ kind: 'actor', actor: 'supervisor', logic: 'supervisor' });
    expect(lines.filter((l) => l.kind === 'actor').map((l) => l.actor)).toEqual(
      expect.arrayContaining(['supervisor', 'reader', 'worker-1', 'worker-2', 'scheduler', 'queue']),
    );
    const busy = lines.find((l) => l.kind === 'snapshot' && l.value === 'busy')!;
    expect((busy.context as { job: Record<string, unknown> }).job).toMatchObject({ command: 'echo', data: expect.stringMatching(/^\[payload: \d+ bytes\]$/) });
    // Detached before the stop: nothing of the shutdown is logged.
    expect(lines.some((l) => l.type === 'STOP' || l.value === 'stopped' || l.value === 'draining')).toBe(false);
  });
});
