/**
 * The soak's one command, loaded by every `taskmill consume` child and by the
 * producer. Each run appends one line to $SOAK_RECORD_FILE (a single
 * O_APPEND write, so lines from concurrent consumers never interleave):
 *
 *   <job> <try> <attempt> <pid> <ms since the epoch>
 *
 * `job` is the producer's job number, `try` which of its enqueue calls wrote
 * this message (a rejected enqueue is retried with try + 1, so a message
 * whose write was acknowledged can be told from one whose reply was lost),
 * `attempt` the envelope's attempt, `pid` the consumer that ran it.
 */
import { appendFileSync } from 'node:fs';
import { queueCommand } from '../../src/index.js';

const recordFile = process.env.SOAK_RECORD_FILE;

export const soakJob = queueCommand('soakJob', async function (job: number, enqueueTry: number) {
  // A few ms of "work" (fixed per job, so a replay is alike) keeps jobs in flight when a consumer is killed.
  const workMs = (job * 7919) % 25;
  if (workMs > 0) await new Promise((resolve) => setTimeout(resolve, workMs));
  if (recordFile) appendFileSync(recordFile, `${job} ${enqueueTry} ${this.attempt} ${process.pid} ${Date.now()}\n`);
});
