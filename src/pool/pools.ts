/**
 * A consumer's pool children: which modules they import (worked out and
 * checked once, at start), the spare ones, and their end. Each worker's
 * runner holds at most one child per kind (./thread-runner.ts in actors/);
 * when the runner ends (its worker replaced after a failed command, retired,
 * stopped) its child comes back here: an idle one is kept as a spare for the
 * next runner, so a command that throws does not cost a new thread; one still
 * running a job the consumer gave up on (a timeout, a cancel) gets
 * ABORT_GRACE_MS to settle it after its signal was aborted, then is
 * terminated (worker.terminate(), SIGKILL); a dead one is dropped.
 */
import type { Logger } from 'pino';
import type { RegisteredCommand } from '../producer/commands.js';
import { ConfigError } from '../shared/errors.js';
import { PoolChild, type ChildSpec } from './child-handle.js';
import { CHILD_NOUN, type Pool, type PoolKind } from './kinds.js';

/** How long a child whose job was given up on may take to settle it before it is terminated. */
export const ABORT_GRACE_MS = 1000;
/** How long a runner waits for a child settling an abandoned job before it starts a new one (a start costs far more). */
const SPARE_WAIT_MS = 100;
/** How long a stopping consumer lets a child settle the job whose signal it just aborted. */
const CLOSE_GRACE_MS = 500;
/** Idle children kept per kind for the next runner; more are ended. */
const MAX_SPARES = 8;
const TEST_FILE = /\.(?:test|spec)\.[cm]?[jt]sx?$/;

export interface PoolCommands {
  names(): string[];
  get(name: string): RegisteredCommand | undefined;
}

/**
 * What each kind's children import and must then have registered: of the
 * given `modules` (the CLI's), those that define a command of that kind — or
 * all of them when a command's defining module is not among them (it was
 * registered through a helper elsewhere); without `modules`, the defining
 * module of every command of that kind. A module whose commands all stay
 * inline is not imported in a child. A command no child could import is a
 * ConfigError naming it.
 */
export function planPools(
  commands: PoolCommands,
  pool: Pool,
  modules: readonly string[] | undefined,
): Map<PoolKind, { modules: string[]; commands: string[] }> {
  const plan = new Map<PoolKind, { modules: string[]; commands: string[] }>();
  /** With `modules`: per kind, the given modules that define its commands, and the kinds with a command defined elsewhere. */
  const defining = new Map<PoolKind, Set<string>>();
  const uncovered = new Set<PoolKind>();
  for (const name of commands.names()) {
    const command = commands.get(name)!;
    const kind = command.options.pool ?? pool;
    if (kind === 'inline') continue;
    let entry = plan.get(kind);
    if (!entry) plan.set(kind, (entry = { modules: modules ? [...modules] : [], commands: [] }));
    entry.commands.push(name);
    if (modules) {
      const file = command.moduleFile;
      if (file !== undefined && modules.includes(file)) (defining.get(kind) ?? defining.set(kind, new Set()).get(kind)!).add(file);
      else uncovered.add(kind);
      continue;
    }
    const file = command.moduleFile;
    const where = `runs in pool '${kind}', so a ${CHILD_NOUN[kind]} must import the module that defines it`;
    if (file === undefined) {
      throw new ConfigError(
        `createConsumer: command "${name}" ${where}, but it was defined outside any module (a REPL, eval, a -e script): define it in a module file, or give it pool: 'inline'`,
      );
    }
    if (TEST_FILE.test(file)) {
      throw new ConfigError(
        `createConsumer: command "${name}" ${where}, but it is defined in a test file (${command.module ?? file}), which cannot be imported there: define it in a module of its own, or give it pool: 'inline'`,
      );
    }
    if (!entry.modules.includes(file)) entry.modules.push(file);
  }
  if (modules) {
    for (const [kind, entry] of plan) {
      const files = defining.get(kind);
      if (!uncovered.has(kind) && files) entry.modules = modules.filter((file) => files.has(file));
    }
  }
  return plan;
}

export class Pools {
  readonly #logger: Logger;
  readonly #memoryMb: number | undefined;
  #specs = new Map<PoolKind, ChildSpec>();
  readonly #spares: Record<PoolKind, PoolChild[]> = { threads: [], processes: [] };
  readonly #live = new Set<PoolChild>();
  /** Children given back while still running a job given up on: spares again once they settle it. */
  readonly #retiring: Record<PoolKind, Set<PoolChild>> = { threads: new Set(), processes: new Set() };
  /** Runners waiting for one of those, per kind. */
  readonly #waiting: Record<PoolKind, (() => void)[]> = { threads: [], processes: [] };
  #closed = false;

  constructor(options: { logger: Logger; memoryMb?: number | undefined }) {
    this.#logger = options.logger;
    this.#memoryMb = options.memoryMb;
  }

  /**
   * At consumer start, first: works out what children import (a ConfigError
   * for a command no child could import). True when any command runs in a pool.
   */
  plan(commands: PoolCommands, pool: Pool, modules: readonly string[] | undefined): boolean {
    const plan = planPools(commands, pool, modules);
    for (const [kind, { modules: files, commands: names }] of plan) this.#specs.set(kind, { modules: files, commands: names, memoryMb: this.#memoryMb });
    if (plan.size > 0) this.#logger.debug({ pools: Object.fromEntries(plan) }, 'pool children import these modules');
    return plan.size > 0;
  }

  /**
   * Then: starts one child of each kind in use, so a module that fails to
   * load there, or does not register its commands there, fails start() with
   * a ConfigError — not every job. The child is then the first spare.
   */
  async prepare(): Promise<void> {
    await Promise.all(
      [...this.#specs.keys()].map(async (kind) => {
        try {
          this.release(await this.#spawn(kind));
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          throw new ConfigError(`createConsumer: pool '${kind}' cannot start: ${reason}`);
        }
      }),
    );
  }

  /**
   * A child of this kind for a runner: a spare, else one about to settle an abandoned job (a
   * worker replaced after a timeout: its child is a spare again moments later), else a new one.
   */
  async acquire(kind: PoolKind): Promise<PoolChild> {
    const spares = this.#spares[kind];
    if (spares.length === 0 && this.#retiring[kind].size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(wake, SPARE_WAIT_MS);
        const waiting = this.#waiting[kind];
        function wake() {
          clearTimeout(timer);
          const at = waiting.indexOf(wake);
          if (at >= 0) waiting.splice(at, 1);
          resolve();
        }
        waiting.push(wake);
      });
    }
    while (spares.length > 0) {
      const child = spares.pop()!;
      if (child.gone === null) return child;
    }
    return this.#spawn(kind);
  }

  /** A runner is done with `child`: kept as a spare when idle, given ABORT_GRACE_MS to settle a job it still runs, else ended. */
  release(child: PoolChild): void {
    if (child.gone !== null) return;
    if (this.#closed) return child.terminate();
    if (child.busy !== 0) {
      this.#retiring[child.kind].add(child);
      const timer = setTimeout(() => {
        this.#retiring[child.kind].delete(child);
        if (child.busy === 0 || child.gone !== null) return;
        this.#logger.warn(
          { pool: child.kind, child: child.id },
          `a ${CHILD_NOUN[child.kind]} ignored its job's aborted signal for ${ABORT_GRACE_MS} ms; terminated`,
        );
        child.terminate();
      }, ABORT_GRACE_MS);
      timer.unref();
      child.onIdle = () => {
        clearTimeout(timer);
        child.onIdle = null;
        this.#retiring[child.kind].delete(child);
        this.release(child);
      };
      return;
    }
    const spares = this.#spares[child.kind];
    if (spares.length >= MAX_SPARES) return child.terminate();
    spares.push(child);
    this.#waiting[child.kind].shift()?.();
  }

  /**
   * Ends every child (the consumer stopped). One still running a job (a forced stop aborted its
   * signal a moment ago) gets up to CLOSE_GRACE_MS to see the abort and settle, so its command's
   * abort handling runs as it would inline; the idle ones end at once.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#spares.threads = [];
    this.#spares.processes = [];
    for (const child of this.#live) if (child.busy === 0) child.terminate();
    const deadline = performance.now() + CLOSE_GRACE_MS;
    while ([...this.#live].some((child) => child.busy !== 0 && child.gone === null) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const child of this.#live) child.terminate();
  }

  async #spawn(kind: PoolKind): Promise<PoolChild> {
    if (this.#closed) throw new Error(`the consumer is stopping: no new ${CHILD_NOUN[kind]}`);
    const spec = this.#specs.get(kind) ?? { modules: [], commands: [], memoryMb: this.#memoryMb };
    const started = performance.now();
    const child = await PoolChild.start(kind, spec);
    this.#live.add(child);
    child.onGone = (how) => {
      this.#live.delete(child);
      const spares = this.#spares[kind];
      const at = spares.indexOf(child);
      if (at >= 0) spares.splice(at, 1);
      this.#retiring[kind].delete(child);
      if (!this.#closed && how !== 'was terminated') this.#logger.warn({ pool: kind, child: child.id, how }, `a ${CHILD_NOUN[kind]} ended: ${how}`);
    };
    this.#logger.debug({ pool: kind, child: child.id, ms: Math.round(performance.now() - started) }, `${CHILD_NOUN[kind]} started`);
    if (this.#closed) {
      child.terminate();
      throw new Error(`the consumer is stopping: no new ${CHILD_NOUN[kind]}`);
    }
    return child;
  }
}
