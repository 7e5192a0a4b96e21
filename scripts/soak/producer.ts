/**
 * The soak's producer process: enqueues soakJob(1), soakJob(2), … on
 * $TASKMILL_QUEUE at about $SOAK_RATE jobs a second until SIGTERM, through the
 * public command API. It survives outages: a rejected enqueue is retried (with
 * the next try number) until it is acknowledged. Every call is logged to
 * $SOAK_PRODUCER_LOG before the next one starts:
 *
 *   ok <job> <try>              the write was acknowledged
 *   err <job> <try> <message>   it rejected: maybe written (a reply lost), maybe not
 */
import { appendFileSync } from 'node:fs';
import { closeQueues } from '../../src/index.js';
import { soakJob } from './commands.js';

const log = process.env.SOAK_PRODUCER_LOG;
const rate = Number(process.env.SOAK_RATE ?? 50);
if (!log || !(rate > 0)) throw new Error('producer needs SOAK_PRODUCER_LOG and a positive SOAK_RATE');

let stopping = false;
process.on('SIGTERM', () => (stopping = true));
process.on('SIGINT', () => (stopping = true));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let origin = Date.now();
let job = 0;
while (!stopping) {
  job++;
  for (let enqueueTry = 1; ; enqueueTry++) {
    try {
      await soakJob(job, enqueueTry);
      appendFileSync(log, `ok ${job} ${enqueueTry}\n`);
      break;
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      appendFileSync(log, `err ${job} ${enqueueTry} ${message.replace(/\s+/g, ' ').slice(0, 300)}\n`);
      // Stopping mid-retry leaves this job unacknowledged: the tally counts it as never enqueued.
      if (stopping) break;
      await sleep(Math.min(100 * enqueueTry, 1000));
    }
  }
  // Pace to the rate on average (catch up after an outage at most one second's worth).
  const ahead = origin + (job / rate) * 1000 - Date.now();
  if (ahead > 0) await sleep(ahead);
  else if (ahead < -1000) origin -= ahead + 1000;
}
await closeQueues();
