/**
 * OpenTelemetry: with a tracer provider registered (the SDK's in-memory
 * exporter), each enqueue call is a PRODUCER span whose W3C traceparent the
 * envelope carries, and each run a CONSUMER span in the same trace, its
 * child and linked to it; a failing run is marked ERROR with the exception.
 * Without a provider nothing is traced and the envelope carries no trace.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createConsumer, MemoryQueue, queueCommand, registry, type Consumer } from '../../src/index.js';
import { decodeMessage } from '../../src/codec/message.js';
import { uniqueName } from '../helpers/services.js';

const silent = pino({ level: 'silent' });
const exporter = new InMemorySpanExporter();
let consumer: Consumer | undefined;
const defined: string[] = [];

afterEach(async () => {
  await consumer?.stop();
  consumer = undefined;
  for (const name of defined.splice(0)) registry.unregister(name);
  trace.disable();
  exporter.reset();
});

function tracing(): void {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
}

function commands(queue: MemoryQueue) {
  const ok = queueCommand({ name: uniqueName('traced-ok'), queue }, (n: number) => n * 2);
  const bad = queueCommand({ name: uniqueName('traced-bad'), queue, retries: 0 }, () => {
    throw new TypeError('broken');
  });
  defined.push(ok.commandName, bad.commandName);
  return { ok, bad };
}

const spans = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);

describe('OpenTelemetry traces', () => {
  it('links each run to its enqueue: one trace, the run a child of and linked to the enqueue; a failed run is ERROR', async () => {
    tracing();
    const queue = new MemoryQueue(uniqueName('otel'), { name: 'traced' });
    const { ok, bad } = commands(queue);
    const job = await ok(21);
    const failing = await bad();
    const peek = new MemoryQueue(queue.store, { name: 'traced' });
    const [message] = await peek.readBatch(1);
    const carried = decodeMessage(message!.data).trace;
    await peek.release([message!.id]);
    const [enqueue] = spans(`enqueue ${ok.commandName}`);
    expect(enqueue!.kind).toBe(SpanKind.PRODUCER);
    expect(enqueue!.attributes).toMatchObject({ 'messaging.destination.name': 'traced', 'messaging.message.id': job.id });
    expect(carried).toBe(`00-${enqueue!.spanContext().traceId}-${enqueue!.spanContext().spanId}-01`);

    consumer = createConsumer({ queue, workers: 1, periodic: false, logger: silent, pollDelayMs: 10, maxPollDelayMs: 20 });
    await consumer.start();
    expect(await job.result({ timeout: 10_000 })).toBe(42);
    await expect(failing.result({ timeout: 10_000 })).rejects.toThrow(/broken/);
    await expect.poll(() => spans(`run ${bad.commandName}`).length, { timeout: 5_000 }).toBe(1);
    const [run] = spans(`run ${ok.commandName}`);
    expect(run!.kind).toBe(SpanKind.CONSUMER);
    expect(run!.spanContext().traceId).toBe(enqueue!.spanContext().traceId);
    expect(run!.parentSpanContext?.spanId).toBe(enqueue!.spanContext().spanId);
    expect(run!.links.map((l) => l.context.spanId)).toEqual([enqueue!.spanContext().spanId]);
    expect(run!.attributes).toMatchObject({ 'messaging.message.id': job.id, 'taskmill.attempt': 1, 'messaging.destination.name': 'traced' });
    expect(run!.status.code).not.toBe(SpanStatusCode.ERROR);
    const [failed] = spans(`run ${bad.commandName}`);
    expect(failed!.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'broken' });
    expect(failed!.events.map((e) => e.name)).toContain('exception');
  });

  it('cmd.map is one enqueue span; each of its runs is a child of it', async () => {
    tracing();
    const queue = new MemoryQueue(uniqueName('otel-map'));
    const { ok } = commands(queue);
    const jobs = await ok.map([[1], [2], [3]]);
    const [enqueue] = spans(`enqueue ${ok.commandName}`);
    expect(enqueue!.attributes['messaging.batch.message_count']).toBe(3);
    consumer = createConsumer({ queue, workers: 2, periodic: false, logger: silent, pollDelayMs: 10, maxPollDelayMs: 20 });
    await consumer.start();
    for (const job of jobs) await job.result({ timeout: 10_000 });
    await expect.poll(() => spans(`run ${ok.commandName}`).length, { timeout: 5_000 }).toBe(3);
    for (const run of spans(`run ${ok.commandName}`)) expect(run.parentSpanContext?.spanId).toBe(enqueue!.spanContext().spanId);
  });

  it('without a registered provider nothing is traced and the envelope carries no trace', async () => {
    const queue = new MemoryQueue(uniqueName('otel-off'));
    const { ok } = commands(queue);
    await ok(1);
    const [message] = await queue.readBatch(1);
    expect(decodeMessage(message!.data).trace).toBeUndefined();
    expect(message!.data).not.toContain('"trace"');
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});
