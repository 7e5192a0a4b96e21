/**
 * Where a command runs: on the consumer's own event loop (`inline`, the
 * default), in a worker thread (`threads`) or a child process (`processes`)
 * that its worker actor owns. See docs/isolation.md.
 */
import { choice } from '../shared/options.js';

export const POOLS = ['inline', 'threads', 'processes'] as const;

export type Pool = (typeof POOLS)[number];

/** A pool other than inline: what a thread or process is started for. */
export type PoolKind = Exclude<Pool, 'inline'>;

/** The `pool` option of createConsumer and queueCommand, and `--pool`. */
export const poolField = choice(POOLS);

/** How a pool's child is named in messages. */
export const CHILD_NOUN: Record<PoolKind, string> = { threads: 'worker thread', processes: 'child process' };
