/**
 * The part of a run-command actor that runs jobs of commands whose pool is
 * not inline: its own worker thread (or child process), started lazily on
 * the first such job and kept for the actor's life, one job at a time. The
 * actor keeps everything else (decoding, gates, expiry, the timeout,
 * cancels, retry decisions, records): this only moves the call of the
 * command's function, and turns the child's death under a job into a
 * WorkerLostError for that job alone.
 *
 * A dead child is not respawned here: the job's COMMAND_FAILED fails the
 * worker actor, the supervisor replaces it (restart limit and log line
 * included), and the new runner takes a spare child or starts one. A child
 * that was running a job the actor gave up on (timed out, cancelled) is
 * handed back to the pools with its job's signal aborted and another one
 * taken for the next job.
 */
import { WorkerLostError } from '../shared/errors.js';
import { ChildLostError, type PoolChild } from '../pool/child-handle.js';
import { CHILD_NOUN, type Pool, type PoolKind } from '../pool/kinds.js';
import type { Pools } from '../pool/pools.js';
import type { RunningJob } from './running-job.js';

/** How long the next job waits for its child to settle the job before (else it takes another child). */
const SETTLE_WAIT_MS = 100;

/** Resolves when `child` settles its job, or after `ms`. */
function settles(child: PoolChild, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      if (child.onIdle === done) child.onIdle = null;
      resolve();
    };
    const timer = setTimeout(done, ms);
    child.onIdle = done;
  });
}

export class PoolLanes {
  readonly #children: Partial<Record<PoolKind, PoolChild>> = {};
  #closed = false;
  constructor(
    readonly pools: Pools,
    /** The consumer's pool: a command without its own `pool` runs there. */
    readonly pool: Pool,
  ) {}

  /**
   * Runs a job in this runner's child of `kind`: its serialized result, its
   * error, or a WorkerLostError (`lost`) when the child died under it.
   */
  async run(kind: PoolKind, job: RunningJob, data: string, result: boolean, deliveries: number, onStart?: () => void): Promise<string | undefined> {
    const child = await this.#child(kind);
    if (job.signal.aborted) throw job.signal.reason; // cancelled (or the consumer forced) while its child started
    onStart?.();
    try {
      return await child.run(job, data, result);
    } catch (error) {
      if (error instanceof ChildLostError) throw new WorkerLostError(job.command, deliveries, `took its ${CHILD_NOUN[kind]} down: it ${error.how}`);
      throw error;
    }
  }

  /** The runner ended: its children go back to the pools (spare, grace, or ended). */
  close(): void {
    this.#closed = true;
    for (const kind of ['threads', 'processes'] as const) {
      const child = this.#children[kind];
      if (child) this.pools.release(child);
      delete this.#children[kind];
    }
  }

  async #child(kind: PoolKind): Promise<PoolChild> {
    const held = this.#children[kind];
    // Still settling the job before (cancelled, its signal just aborted): most commands end at once.
    if (held && held.gone === null && held.busy !== 0) await settles(held, SETTLE_WAIT_MS);
    if (this.#closed) throw new Error('worker stopped');
    if (held && held.gone === null && held.busy === 0) return held;
    if (held) {
      delete this.#children[kind];
      this.pools.release(held); // still running a job given up on: it settles or is terminated there
    }
    const child = await this.pools.acquire(kind);
    if (this.#closed) {
      this.pools.release(child);
      throw new Error('worker stopped');
    }
    this.#children[kind] = child;
    return child;
  }
}
