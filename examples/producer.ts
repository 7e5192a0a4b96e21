/**
 * Example producer: `npx tsx examples/producer.ts [COUNT]` enqueues jobs on
 * the default queue ($TASKMILL_QUEUE or sqlite:taskmill.sqlite).
 */
import { closeQueues } from '../src/index.js';
import { churn, flaky } from './commands.js';

const count = Number(process.argv[2] ?? 20);
for (let i = 1; i <= count; i++) {
  const job = i % 10 === 0 ? await flaky(i * 7) : await churn(i, 'item');
  if (i <= 3 || i === count) console.log(`enqueued ${job.command} ${job.id}`);
}
await closeQueues();
