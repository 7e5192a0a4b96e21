/**
 * OpenTelemetry traces, when the application has `@opentelemetry/api`
 * installed (an optional peer) and a tracer provider registered: a PRODUCER
 * span per enqueue call and a CONSUMER span per run, the run's span a child
 * of (and linked to) the enqueue's through the W3C `traceparent` the
 * envelope carries (`trace`).
 *
 * Why the traceparent is written by hand: the API's propagation.inject is a
 * no-op until the application also registers a propagator, and the link
 * must not depend on that; the format is one line of the W3C spec.
 *
 * Hot path: until a tracer provider is registered, each enqueue and run costs
 * one property read (the API's global registry, below) and the package is not
 * even loaded; nothing is allocated.
 */
import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';
import { describeValue } from '../shared/errors.js';

const require = createRequire(import.meta.url);
let api: typeof OtelApi | null | undefined;
/** The NOOP provider a proxy hands out while nothing is registered. */
let noop: unknown;

function otel(): typeof OtelApi | null {
  if (api === undefined) {
    try {
      api = require('@opentelemetry/api') as typeof OtelApi;
      noop = new api.ProxyTracerProvider().getDelegate();
    } catch {
      api = null; // not installed: tracing is off
    }
  }
  return api;
}

/**
 * Where every copy of the API of major version 1 keeps what is registered
 * (`setGlobalTracerProvider` puts `trace` there; `trace.disable()` takes it
 * away). Read first because the API's own lookup, done per job, was a
 * measurable share of a cold consumer's CPU (docs/performance.md).
 */
const OTEL_GLOBALS = Symbol.for('opentelemetry.js.api.1');

/** The API when a tracer provider is registered, else null. */
function active(): typeof OtelApi | null {
  if ((globalThis as { [OTEL_GLOBALS]?: { trace?: unknown } })[OTEL_GLOBALS]?.trace === undefined) return null;
  const a = otel();
  if (!a) return null;
  const provider = a.trace.getTracerProvider() as Partial<OtelApi.ProxyTracerProvider>;
  return typeof provider.getDelegate === 'function' && provider.getDelegate() === noop ? null : a;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export interface SpanEnd {
  /** Ends the span: an error marks it failed (and is recorded); attributes are added first. */
  end(error?: unknown, attributes?: Record<string, string | number>): void;
}

/** The span of one enqueue call, and the traceparent its jobs carry; null when tracing is off. */
export function enqueueSpan(command: string, queue: string): (SpanEnd & { traceparent: string }) | null {
  const a = active();
  if (!a) return null;
  const span = a.trace.getTracer('taskmill').startSpan(`enqueue ${command}`, {
    kind: a.SpanKind.PRODUCER,
    attributes: { 'messaging.system': 'taskmill', 'messaging.operation.type': 'send', 'messaging.destination.name': queue, 'taskmill.command': command },
  });
  const { traceId, spanId, traceFlags } = span.spanContext();
  return {
    traceparent: `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`,
    end: (error, attributes) => finish(a, span, error, attributes),
  };
}

/** The span of one run of a job whose envelope carried `traceparent` (if any); null when tracing is off. */
export function runSpan(command: string, queue: string, jobId: string, attempt: number, traceparent: string | undefined): SpanEnd | null {
  const a = active();
  if (!a) return null;
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
  const remote: OtelApi.SpanContext | null = match ? { traceId: match[1]!, spanId: match[2]!, traceFlags: parseInt(match[3]!, 16), isRemote: true } : null;
  const parent = remote && a.trace.isSpanContextValid(remote) ? a.trace.setSpanContext(a.ROOT_CONTEXT, remote) : a.context.active();
  const span = a.trace.getTracer('taskmill').startSpan(
    `run ${command}`,
    {
      kind: a.SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'taskmill',
        'messaging.operation.type': 'process',
        'messaging.destination.name': queue,
        'messaging.message.id': jobId,
        'taskmill.command': command,
        'taskmill.attempt': attempt,
      },
      ...(remote && a.trace.isSpanContextValid(remote) ? { links: [{ context: remote }] } : {}),
    },
    parent,
  );
  return { end: (error, attributes) => finish(a, span, error, attributes) };
}

function finish(a: typeof OtelApi, span: OtelApi.Span, error: unknown, attributes: Record<string, string | number> | undefined): void {
  if (attributes) span.setAttributes(attributes);
  if (error !== undefined) {
    const e = error instanceof Error ? error : new Error(describeValue(error));
    span.recordException(e);
    span.setStatus({ code: a.SpanStatusCode.ERROR, message: e.message });
  }
  span.end();
}
