/**
 * The sanitiser on the shapes the consumer's actors exchange: payloads and
 * result records become sizes, errors lose everything but their description,
 * functions and actor internals never appear, URL passwords are redacted.
 */
import { describe, expect, it } from 'vitest';
import { createActor, createMachine, type InspectionEvent } from 'xstate';
import { encodeMessage } from '../../src/codec/message.js';
import { WorkerCommandError } from '../../src/machines/protocol.js';
import { progressRecord } from '../../src/producer/progress.js';
import { sanitizeEvent, sanitizeInspectionEvent, sanitizeSnapshot, sanitizeValue } from '../../src/inspect/index.js';

const SECRET = 'top-secret-argument-é';
const message = { id: 'm-1', data: encodeMessage('churn', [SECRET], { id: 'job-1' }).data, attempt: 2, delivery: 7 };
const bytes = Buffer.byteLength(message.data, 'utf8');

describe('sanitizeEvent', () => {
  it('JOB / RUN / FAIL: the message keeps id, attempt and delivery, gains command and job id, loses its data', () => {
    const expected = { id: 'm-1', attempt: 2, delivery: 7, data: `[payload: ${bytes} bytes]`, job: 'job-1', command: 'churn' };
    expect(sanitizeEvent({ type: 'JOB', message })).toEqual({ type: 'JOB', message: expected });
    expect(sanitizeEvent({ type: 'RUN', message })).toEqual({ type: 'RUN', message: expected });
    expect(sanitizeEvent({ type: 'FAIL', message, error: 'Error: boom\n    at x' })).toEqual({
      type: 'FAIL',
      message: expected,
      error: 'Error: boom\n    at x',
    });
    expect(sanitizeEvent({ type: 'MESSAGES', messages: [message, message] })).toEqual({ type: 'MESSAGES', messages: [expected, expected] });
  });

  it('counts UTF-8 bytes, and a data that is not an envelope still becomes a size', () => {
    expect(sanitizeValue({ data: 'éé' })).toEqual({ data: '[payload: 4 bytes]' });
    expect(sanitizeValue({ data: `{"command":"${SECRET}"}` })).toEqual({ data: `[payload: ${Buffer.byteLength(`{"command":"${SECRET}"}`)} bytes]` });
    expect(sanitizeValue({ args: [SECRET], payload: { SECRET } })).toEqual({ args: '[payload: Array]', payload: '[payload: Object]' });
  });

  it('RETRY / ACK / WRITE_UNIQUE: plans, results and periodic envelopes lose their text', () => {
    const result = { jobId: 'job-1', record: JSON.stringify({ status: 'completed', value: SECRET }), ttlMs: 1000 };
    const retry = sanitizeEvent({ type: 'RETRY', message, plan: { data: message.data, runAt: 5 }, result });
    expect(retry).toMatchObject({
      plan: { data: `[payload: ${bytes} bytes]`, runAt: 5, command: 'churn', job: 'job-1' },
      result: { jobId: 'job-1', ttlMs: 1000 },
    });
    expect((retry.result as { record: string }).record).toBe(`[result: ${Buffer.byteLength(result.record)} bytes]`);
    expect(sanitizeEvent({ type: 'ACK', id: 'm-1', result })).toEqual({
      type: 'ACK',
      id: 'm-1',
      result: { jobId: 'job-1', ttlMs: 1000, record: expect.stringMatching(/^\[result: \d+ bytes\]$/) },
    });
    const slot = encodeMessage('tick', []).data;
    expect(sanitizeEvent({ type: 'WRITE_UNIQUE', key: 'tick@2024-01-01T00:00Z', data: slot, ttlMs: 1 })).toMatchObject({
      data: `[payload: ${slot.length} bytes]`,
      command: 'tick',
    });
    for (const event of [retry, sanitizeEvent({ type: 'ACK', result })]) expect(JSON.stringify(event)).not.toContain(SECRET);
  });

  it("PROGRESS: the reported value, a command's data like its result, becomes a size", () => {
    const progress = { jobId: 'job-1#progress', record: progressRecord({ secret: SECRET }, 1), ttlMs: 1000 };
    const event = sanitizeEvent({ type: 'PROGRESS', id: 'm-1', progress });
    expect(event).toEqual({
      type: 'PROGRESS',
      id: 'm-1',
      progress: { jobId: 'job-1#progress', ttlMs: 1000, record: `[result: ${Buffer.byteLength(progress.record)} bytes]` },
    });
    expect(JSON.stringify(event)).not.toContain(SECRET);
  });

  it('a worker failure keeps name, message, stack and ids; the job, its retry plan and result record are gone', () => {
    const cause = new Error('could not reach redis://:hunter2@cache:6379/0');
    const error = new WorkerCommandError('worker-2', message, {
      command: 'churn',
      jobId: 'job-1',
      error: cause,
      retry: { data: message.data, runAt: 1 },
      result: { jobId: 'job-1', record: SECRET, ttlMs: 1 },
    });
    const event = sanitizeEvent({ type: 'xstate.error.actor.worker-2', error, actorId: 'worker-2' });
    const reduced = event.error as Record<string, unknown>;
    expect(Object.keys(reduced).sort()).toEqual(['cause', 'command', 'jobId', 'message', 'name', 'stack', 'workerId']);
    expect(reduced).toMatchObject({ name: 'WorkerCommandError', workerId: 'worker-2', command: 'churn', jobId: 'job-1', cause: { name: 'Error' } });
    const text = JSON.stringify(event);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('hunter2');
    expect(text).toContain('redis://:***@cache:6379/0');
  });

  it('thrown non-Errors: objects become their kind, error-like objects their description, strings stay (redacted)', () => {
    expect(sanitizeValue({ error: { secret: SECRET } })).toEqual({ error: '[thrown Object]' });
    expect(sanitizeValue({ error: [SECRET] })).toEqual({ error: '[thrown Array]' });
    expect(sanitizeValue({ error: { name: 'RemoteError', message: 'bad', detail: SECRET } })).toEqual({ error: { name: 'RemoteError', message: 'bad' } });
    expect(sanitizeValue({ error: 'postgres://u:pw@db/x refused' })).toEqual({ error: 'postgres://u:***@db/x refused' });
    const withCause = new Error('outer', { cause: { secret: SECRET } });
    expect((sanitizeValue(withCause) as { cause: unknown }).cause).toBe('[thrown Object]');
  });

  it('functions are dropped, actor refs become ids, odd values become JSON-safe text, cycles and depth are bounded', () => {
    const actor = createActor(createMachine({ id: 'child' }), { id: 'worker-3' });
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20; i++) deep = { deep };
    const cleaned = sanitizeValue({
      now: Date.now,
      periodic: [{ name: 'tick', schedule: () => true }],
      idle: [actor],
      worker: actor,
      max: Number.POSITIVE_INFINITY,
      big: 10n,
      when: new Date(0),
      bytes: new Uint8Array(3),
      cyclic,
      deep,
    }) as Record<string, unknown>;
    expect(cleaned).toMatchObject({
      periodic: [{ name: 'tick' }],
      idle: ['worker-3'],
      worker: 'worker-3',
      max: 'Infinity',
      big: '10n',
      when: '1970-01-01T00:00:00.000Z',
      bytes: '[bytes: 3]',
      cyclic: { name: 'loop', self: '[circular]' },
    });
    expect(cleaned).not.toHaveProperty('now');
    expect(JSON.stringify(cleaned.deep)).toContain('"[…]"');
    expect(() => JSON.stringify(cleaned)).not.toThrow();
  });
});

describe('sanitizeSnapshot / sanitizeInspectionEvent', () => {
  it('a snapshot keeps status, value, context, children as ids and tags; its error and output are sanitised too', () => {
    const error = new WorkerCommandError('worker-1', message, { command: 'churn', jobId: 'job-1', error: new Error('x') });
    const snapshot = sanitizeSnapshot({
      status: 'error',
      value: { running: 'idle' },
      context: { job: message, now: () => 0 },
      children: { runner: { id: 'runner', sessionId: 'x:9', send() {}, getSnapshot() {} } },
      tags: new Set(['busy']),
      error,
      output: { data: message.data },
      machine: { huge: true },
      _nodes: [{}],
      historyValue: {},
    });
    expect(Object.keys(snapshot).sort()).toEqual(['children', 'context', 'error', 'output', 'status', 'tags', 'value']);
    expect(snapshot).toMatchObject({
      status: 'error',
      value: { running: 'idle' },
      context: { job: { id: 'm-1', command: 'churn' } },
      children: { runner: { xstate$$type: 1, id: 'runner' } },
      tags: ['busy'],
      error: { name: 'WorkerCommandError', jobId: 'job-1' },
      output: { data: `[payload: ${bytes} bytes]` },
    });
    expect(JSON.stringify(snapshot)).not.toContain(SECRET);
  });

  it('microsteps and actions are not inspector messages; events and snapshots are', () => {
    const seen: InspectionEvent[] = [];
    const actor = createActor(createMachine({ id: 'm', initial: 'a', states: { a: { on: { GO: 'b' } }, b: { entry: () => {} } } }), {
      inspect: (e) => void seen.push(e),
    });
    actor.start();
    actor.send({ type: 'GO', message });
    const kinds = new Set(seen.map((e) => e.type));
    expect(kinds).toEqual(new Set(['@xstate.actor', '@xstate.event', '@xstate.snapshot', '@xstate.microstep', '@xstate.action']));
    for (const event of seen) {
      const out = sanitizeInspectionEvent(event);
      if (event.type === '@xstate.microstep' || event.type === '@xstate.action') expect(out).toBeNull();
      else expect(out).toMatchObject({ type: event.type, sessionId: actor.sessionId, rootId: actor.sessionId, _version: '0.7.2' });
    }
    const go = seen.find((e) => e.type === '@xstate.event' && e.event.type === 'GO')!;
    expect(JSON.stringify(sanitizeInspectionEvent(go))).not.toContain(SECRET);
  });
});
