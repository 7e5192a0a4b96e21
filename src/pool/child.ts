/**
 * The entry of a pool's worker thread or child process. It imports the
 * command modules it is told to (their commands register in this thread's
 * own registry; only their functions are used here), then runs the jobs the
 * consumer forwards, one at a time: decodes the message, runs the function
 * with a `this` whose signal the consumer can abort and whose progress goes
 * back to it, and returns the result serialized (or the error). Gates,
 * expiry, delivery counts and retry decisions stay in the consumer.
 */
import '../index.js'; // first: publishes this instance for CommonJS command modules (see index.cts)
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { RunningJob } from '../actors/running-job.js';
import { decodeMessage } from '../codec/message.js';
import { serializeValue } from '../codec/tagged-json.js';
import { importModule } from '../producer/autodiscover.js';
import { registry } from '../producer/registry.js';
import { toError } from '../shared/errors.js';
import { fromWire, toWire, type ChildMessage, type ParentMessage } from './protocol.js';
import { poolRole } from './role.js';

poolRole.child = true;

const port = parentPort;
const noun = port ? 'worker thread' : 'child process';
const post: (message: ChildMessage) => void = port ? (message) => port.postMessage(message) : (message) => void process.send?.(message);

/** Jobs started here and not settled yet, by sequence number. */
const running = new Map<number, RunningJob>();

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

async function init(modules: readonly string[], commands: readonly string[]): Promise<void> {
  for (const file of modules) {
    try {
      await importModule(file);
    } catch (thrown) {
      const error = toError(thrown);
      post({ t: 'init-failed', message: `importing ${path.relative(process.cwd(), file) || file} in a ${noun} failed: ${error.name}: ${error.message}` });
      return;
    }
  }
  const missing = commands.filter((name) => !registry.has(name));
  if (missing.length > 0) {
    const names = missing.map((name) => `"${name}"`).join(', ');
    const imported = modules.map((file) => path.relative(process.cwd(), file) || file).join(', ') || 'no module';
    post({
      t: 'init-failed',
      message: `command${missing.length > 1 ? 's' : ''} ${names} ${missing.length > 1 ? 'were' : 'was'} not registered by importing ${imported} in a ${noun}`,
    });
    return;
  }
  post({ t: 'ready' });
}

/** The job's error, once: a second settle of a job (a late rejection) is dropped. */
function failed(seq: number, thrown: unknown): void {
  if (running.delete(seq)) post({ t: 'failed', seq, error: toWire(thrown) });
}

function done(seq: number, value: unknown, result: boolean): void {
  if (!running.has(seq)) return;
  let text: string | undefined;
  if (result && value !== undefined) {
    try {
      text = serializeValue(value, 'result');
    } catch (error) {
      failed(seq, error); // the inline error: an unserializable result fails the attempt
      return;
    }
  }
  running.delete(seq);
  post({ t: 'done', seq, value: text });
}

function run(seq: number, data: string, result: boolean): void {
  // Until the message is decoded, a stand-in holds the place: an abort finds it, a failure is posted.
  running.set(seq, new RunningJob('', '', 0));
  try {
    const envelope = decodeMessage(data);
    const command = registry.get(envelope.command);
    if (!command) throw new Error(`command "${envelope.command}" is not registered in this ${noun} (its module was not imported here)`);
    const job = new RunningJob(envelope.id, envelope.command, envelope.attempt, { progress: (_job, record) => post({ t: 'progress', seq, record }) });
    running.set(seq, job);
    const value = command.fn.apply(job, envelope.args);
    if (isThenable(value)) {
      value.then(
        (v) => done(seq, v, result),
        (error) => failed(seq, error),
      );
    } else {
      done(seq, value, result);
    }
  } catch (error) {
    failed(seq, error);
  }
}

function receive(message: ParentMessage): void {
  if (message.t === 'run') run(message.seq, message.data, message.result);
  else if (message.t === 'abort') running.get(message.seq)?.abort(fromWire(message.reason));
  else if (message.t === 'init') void init(message.modules, message.commands);
}

if (port) {
  port.on('message', receive);
} else {
  process.on('message', receive);
  // An uncaught error ends this process, as it would a thread; the consumer is told what it was first.
  process.on('uncaughtException', (error) => {
    setTimeout(() => process.exit(1), 1000).unref();
    if (process.send) process.send({ t: 'fatal', error: toWire(error) } satisfies ChildMessage, () => process.exit(1));
    else process.exit(1);
  });
  // The consumer went away: nothing is left to run for.
  process.on('disconnect', () => process.exit(0));
  // A terminal's Ctrl-C (or hangup) reaches the whole process group: the consumer drains and ends this
  // process itself; dying here would lose the job it runs as "worker lost".
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
}
