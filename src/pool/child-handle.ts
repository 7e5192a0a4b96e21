/**
 * One pool child seen from the consumer: a worker thread or a child process
 * running ./child.ts, with the one job it runs at a time. It turns the
 * child's messages into a promise per job (progress onto the job's sink on
 * the way) and its death into a ChildLostError saying what killed it — an
 * uncaught error, an exit code, out of memory, a signal.
 *
 * A child is ref'd only while it runs a job, so an idle one never keeps the
 * consumer's process alive.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RunningJob } from '../actors/running-job.js';
import { ConfigError } from '../shared/errors.js';
import { CHILD_NOUN, type PoolKind } from './kinds.js';
import { fromWire, toWire, type ChildMessage, type ParentMessage } from './protocol.js';

/** This module's own extension: `.ts` under tsx and vitest (the child entry then needs tsx too), `.js` built. */
const EXT = path.extname(fileURLToPath(import.meta.url));
const ENTRY = new URL(`./child${EXT}`, import.meta.url);
const require = createRequire(import.meta.url);
/** tsx's loader (what `node --import tsx` imports), for a child process whose entry is TypeScript. */
const TSX = EXT === '.js' ? null : pathToFileURL(require.resolve('tsx')).href;
/**
 * tsx's ESM API, for a worker thread whose entry is TypeScript: Node 20 does not run `--import`
 * hooks in a worker, but `register()` called in it works. Its ESM build (the CommonJS one, what
 * require.resolve finds, cannot register from a worker).
 */
const TSX_API = EXT === '.js' ? null : pathToFileURL(require.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;

/** How long a child may take to import its modules before start fails. */
export const INIT_TIMEOUT_MS = 60_000;

/** What every child of a consumer imports and checks when it starts. */
export interface ChildSpec {
  readonly modules: readonly string[];
  readonly commands: readonly string[];
  /** Heap limit, MB (threads: resourceLimits.maxOldGenerationSizeMb; processes: --max-old-space-size). */
  readonly memoryMb?: number | undefined;
}

/** The child running a job died: `how` says what ended it. */
export class ChildLostError extends Error {
  constructor(readonly how: string) {
    super(how);
    this.name = 'ChildLostError';
  }
}

interface Pending {
  seq: number;
  job: RunningJob;
  resolve: (value: string | undefined) => void;
  reject: (error: unknown) => void;
}

let nextId = 1;

export class PoolChild {
  readonly id = nextId++;
  /** Why it is gone (what `ChildLostError.how` says); null while it lives. */
  gone: string | null = null;
  /** The job the child is running (even one the consumer gave up on: timed out, cancelled); 0 when idle. */
  busy = 0;
  /** Called once the child has settled its job (a retired child's way back to the spares). */
  onIdle: (() => void) | null = null;
  /** Called once when it dies, with why. */
  onGone: ((how: string) => void) | null = null;
  #seq = 0;
  #pending: Pending | null = null;
  #fatal: string | null = null;
  #terminated = false;
  /** Until the child is ready: settles start() (null: ready; else why it could not start). */
  #starting: ((failure: string | null) => void) | null = null;
  readonly #worker: Worker | null;
  readonly #process: ChildProcess | null;

  private constructor(
    readonly kind: PoolKind,
    spec: ChildSpec,
  ) {
    if (kind === 'threads') {
      // An eval'd bootstrap: registers tsx when the entry is TypeScript (tests, tsx), then imports it.
      const code = `(async () => { ${TSX_API ? `(await import(${JSON.stringify(TSX_API)})).register();` : ''} await import(${JSON.stringify(ENTRY.href)}); })();`;
      this.#worker = new Worker(code, {
        eval: true,
        execArgv: [],
        ...(spec.memoryMb !== undefined ? { resourceLimits: { maxOldGenerationSizeMb: spec.memoryMb } } : {}),
      });
      this.#process = null;
      this.#worker.on('message', (m: ChildMessage) => this.#receive(m));
      this.#worker.on('error', (error: unknown) => {
        const e = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
        this.#fatal ??=
          e.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? 'ran out of memory (its resourceLimits)'
            : typeof e.message === 'string'
              ? `threw ${String(e.name)}: ${e.message} that nothing caught`
              : `threw ${String(error)} that nothing caught`;
      });
      this.#worker.on('exit', (code) => this.#lost(code));
    } else {
      // Not the consumer's execArgv: an --inspect port or a heap flag of its own is not the child's.
      const execArgv = TSX ? ['--import', TSX] : [];
      if (spec.memoryMb !== undefined) execArgv.push(`--max-old-space-size=${spec.memoryMb}`);
      this.#process = fork(fileURLToPath(ENTRY), [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      this.#worker = null;
      this.#process.on('message', (m: ChildMessage) => this.#receive(m));
      this.#process.on('error', (error) => {
        if (this.#process!.pid !== undefined) return; // a failed send: its exit follows
        this.#fatal ??= `could not be started: ${error.message}`;
        this.#lost(null);
      });
      // 'close', not 'exit': it comes after the last message (the 'fatal' that says why).
      this.#process.on('close', (code, signal) => this.#lost(code, signal));
    }
  }

  /** Starts a child, imports the modules and checks the commands; rejects with a ConfigError saying why it could not. */
  static start(kind: PoolKind, spec: ChildSpec): Promise<PoolChild> {
    const child = new PoolChild(kind, spec);
    return new Promise<PoolChild>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.terminate();
        reject(new ConfigError(`a ${CHILD_NOUN[kind]} did not finish importing its command modules within ${INIT_TIMEOUT_MS} ms`));
      }, INIT_TIMEOUT_MS);
      timer.unref();
      child.#starting = (outcome) => {
        clearTimeout(timer);
        child.#starting = null;
        child.#hold(false); // ref'd while it starts: start() is what the caller is waiting for
        if (outcome === null) return resolve(child);
        child.terminate();
        reject(new ConfigError(outcome));
      };
      child.#post({ t: 'init', modules: spec.modules, commands: spec.commands });
    });
  }

  /** Runs one job: resolves with its serialized result, rejects with its error, or with a ChildLostError. */
  run(job: RunningJob, data: string, result: boolean): Promise<string | undefined> {
    if (this.gone !== null) return Promise.reject(new ChildLostError(this.gone));
    const seq = ++this.#seq;
    this.busy = seq;
    this.#hold(true);
    return new Promise<string | undefined>((resolve, reject) => {
      this.#pending = { seq, job, resolve, reject };
      this.#post({ t: 'run', seq, data, result });
      // A timeout, a cancel or a forced stop aborts the job's signal here: the child's follows.
      const signal = job.signal;
      const abort = () => this.#post({ t: 'abort', seq, reason: toWire(signal.reason) });
      if (signal.aborted) abort();
      else signal.addEventListener('abort', abort, { once: true });
    });
  }

  /** Ends the child now (a worker.terminate(), a SIGKILL); its job, if any, is lost. */
  terminate(): void {
    if (this.gone !== null || this.#terminated) return;
    this.#terminated = true;
    if (this.#worker) void this.#worker.terminate();
    else this.#process!.kill('SIGKILL');
  }

  #post(message: ParentMessage): void {
    if (this.gone !== null) return;
    if (this.#worker) this.#worker.postMessage(message);
    else if (this.#process!.connected) this.#process!.send(message);
  }

  #hold(busy: boolean): void {
    if (this.#worker) {
      if (busy) this.#worker.ref();
      else this.#worker.unref();
    } else {
      const channel = this.#process!.channel as { ref?: () => void; unref?: () => void } | null | undefined;
      if (busy) {
        this.#process!.ref();
        channel?.ref?.();
      } else {
        this.#process!.unref();
        channel?.unref?.();
      }
    }
  }

  #receive(message: ChildMessage): void {
    switch (message.t) {
      case 'ready':
        this.#starting?.(null);
        return;
      case 'init-failed':
        this.#starting?.(message.message);
        return;
      case 'progress':
        if (this.#pending?.seq === message.seq) this.#pending.job.report(message.record);
        return;
      case 'fatal':
        this.#fatal ??= `threw ${message.error.name}: ${message.error.message} that nothing caught`;
        return;
      case 'done':
      case 'failed': {
        if (this.busy !== message.seq) return;
        this.busy = 0;
        this.#hold(false);
        const pending = this.#pending;
        if (pending?.seq === message.seq) {
          this.#pending = null;
          if (message.t === 'done') pending.resolve(message.value);
          else pending.reject(fromWire(message.error));
        }
        this.onIdle?.();
      }
    }
  }

  #lost(code: number | null, signal?: NodeJS.Signals | null): void {
    if (this.gone !== null) return;
    const how =
      this.#fatal ??
      (this.#terminated
        ? 'was terminated'
        : signal
          ? `was killed by ${signal}${signal === 'SIGABRT' ? ' (out of memory, or a native crash)' : ''}`
          : `exited with code ${code}`);
    this.gone = how;
    this.busy = 0;
    this.#starting?.(`the ${CHILD_NOUN[this.kind]} ${how} before it had imported its command modules`);
    const pending = this.#pending;
    this.#pending = null;
    pending?.reject(new ChildLostError(how));
    this.onGone?.(how);
  }
}
