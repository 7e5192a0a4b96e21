/**
 * `--inspect-log FILE`: the sanitised inspection stream as JSON lines, for
 * post-mortems (inspect/index.ts).
 */
import { createWriteStream, openSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { ConfigError } from '../shared/errors.js';
import { actorName, liveTree, rootOf, sanitizeEvent, sanitizeSnapshot, type InspectedRef } from './sanitize.js';

const MAX_LOG_BACKLOG = 16 * 1024 * 1024;

// ─────────────────────────────────────────────────────────── the log file
export interface InspectLogOptions {
  /** Also write each snapshot's (sanitised) context. Default false: value and status only. */
  context?: boolean;
}

export interface InspectLog {
  /** An inspection observer for `createConsumer({ inspect })`. */
  readonly inspect: (event: InspectionEvent) => void;
  /** Inspects an actor's whole system (logs the actors already alive first). Returns a detach function. */
  attach(actor: AnyActorRef): () => void;
  readonly file: string;
  /** Flushes and closes the file; rejects if a write failed. */
  close(): Promise<void>;
}

/** One JSON line per inspection event; null for microsteps and actions. */
export function inspectLogLine(event: InspectionEvent, options: InspectLogOptions = {}): Record<string, unknown> | null {
  const ref = event.actorRef as InspectedRef;
  const line: Record<string, unknown> = { t: new Date().toISOString(), kind: '', actor: actorName(ref), session: ref.sessionId };
  if (ref.systemId) line.system = ref.systemId;
  switch (event.type) {
    case '@xstate.actor':
      line.kind = 'actor';
      if (ref._parent) line.parent = actorName(ref._parent);
      line.logic = ref.logic?.config?.id ?? 'callback';
      return line;
    case '@xstate.event': {
      const source = event.sourceRef as InspectedRef | undefined;
      return Object.assign(line, {
        kind: 'event',
        type: event.event.type,
        source: source ? actorName(source) : undefined,
        target: line.actor,
        event: sanitizeEvent(event.event),
      });
    }
    case '@xstate.snapshot': {
      const { value, status, error, context } = sanitizeSnapshot(event.snapshot);
      return Object.assign(line, { kind: 'snapshot', type: event.event.type, status, value, error, ...(options.context ? { context } : {}) });
    }
    default:
      return null;
  }
}

/**
 * The sanitised inspection stream as JSON lines appended to `file`, for
 * post-mortems: which worker ran which job, what failed and when. Opening the
 * file fails at once (ConfigError); a backlog over 16 MiB (a disk slower than
 * the consumer) drops lines and writes `{ kind: 'dropped', count }`.
 */
export function createInspectLog(file: string, options: InspectLogOptions = {}): InspectLog {
  let fd: number;
  try {
    fd = openSync(file, 'a');
  } catch (error) {
    throw new ConfigError(`cannot open the inspect log "${file}": ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const stream = createWriteStream(file, { fd });
  let failure: Error | null = null;
  stream.on('error', (error) => (failure ??= error));
  let dropped = 0;
  let closing: Promise<void> | null = null;
  const write = (line: Record<string, unknown>) => {
    if (stream.writableLength > MAX_LOG_BACKLOG) return void dropped++;
    if (dropped > 0) {
      stream.write(`${JSON.stringify({ t: line.t, kind: 'dropped', count: dropped })}\n`);
      dropped = 0;
    }
    stream.write(`${JSON.stringify(line)}\n`);
  };
  const inspect = (event: InspectionEvent): void => {
    if (failure || closing) return;
    try {
      const line = inspectLogLine(event, options);
      if (line) write(line);
    } catch {
      // An observer that throws would break the actor that is inspected.
    }
  };
  return {
    inspect,
    file,
    attach(actor) {
      const root = rootOf(actor as InspectedRef);
      for (const ref of liveTree(root)) inspect({ type: '@xstate.actor', actorRef: ref as unknown as AnyActorRef, rootId: root.sessionId });
      const subscription = root.system?.inspect(inspect);
      return () => subscription?.unsubscribe();
    },
    close() {
      closing ??= (async () => {
        stream.end();
        await finished(stream).catch(() => {});
        if (failure) throw new Error(`inspect log "${file}" could not be written: ${failure.message}`);
      })();
      return closing;
    },
  };
}
