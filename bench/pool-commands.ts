/** The commands of bench/pools.ts, in a module of their own: a pool's threads and processes import it. */
import { queueCommand } from '../src/index.js';

/** Busy for `ms` of CPU time on whichever thread runs it. */
export const burn = queueCommand({ name: 'bench-burn', results: false }, (ms: number) => {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x++;
  return x;
});

export const noop = queueCommand({ name: 'bench-noop', results: false }, () => {});
