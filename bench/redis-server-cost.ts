/**
 * The Redis server's own time per job of a backlog, without a consumer: a queue of N jobs read
 * 100 at a time, each batch acked with the next read as a consumer does, and the time Redis
 * itself spent in those scripts per job (`INFO commandstats`, EVALSHA, before and after). Redis
 * is single-threaded and shares this box's cores with the consumer, so its time per job bounds a
 * Redis consumer's throughput as much as the consumer's own CPU does (bench/RESULTS.md, profile
 * findings). Each round is a fresh queue; the first warms up and is not printed. The figure is a
 * difference of the server's counters, so it counts every client's scripts: run it on a quiet server.
 *
 *   npx tsx bench/redis-server-cost.ts [--jobs 20000] [--batch 100] [--rounds 4] [--redis URL]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { RedisQueue } from '../src/backends/redis/queue.js';
import { encodeMessage } from '../src/codec/message.js';
import { positiveInteger } from './args.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '4' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379/0' },
  },
});
const jobs = positiveInteger('jobs', values.jobs);
const batch = positiveInteger('batch', values.batch);
const rounds = positiveInteger('rounds', values.rounds);

/** Microseconds Redis has spent in EVALSHA since it started (or its stats were reset). */
async function scriptMicros(admin: Redis): Promise<number> {
  const line = (await admin.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_evalsha:'));
  return line ? Number(/usec=(\d+)/.exec(line)?.[1] ?? 0) : 0;
}

const admin = new Redis(values.redis, { lazyConnect: true });
const datas = Array.from({ length: jobs }, (_, i) => encodeMessage('benchNoop', [i, 0]).data);
for (let round = 0; round <= rounds; round++) {
  const queue = new RedisQueue(values.redis, { name: `cost${process.pid}r${round}`, prefix: 'tmbench-cost' });
  await queue.open();
  for (let i = 0; i < jobs; i += 1000) await queue.writeBatch(datas.slice(i, i + 1000));
  const before = await scriptMicros(admin);
  let previous: Awaited<ReturnType<RedisQueue['readBatch']>> = [];
  for (;;) {
    // The same turn, so the ack rides the read's script (tmAckRead), as in a consumer.
    const [messages] = await Promise.all([
      queue.readBatch(batch),
      previous.length > 0
        ? queue.ackBatch(
            previous.map((m) => m.id),
            previous.map((m) => m.delivery),
          )
        : null,
    ]);
    if (messages.length === 0) break;
    previous = messages;
  }
  const micros = (await scriptMicros(admin)) - before;
  if (round > 0) console.log(`round ${round}: Redis spent ${(micros / jobs).toFixed(2)} µs per job reading and acking ${jobs} jobs, ${batch} at a time`);
  await queue.flush();
  await queue.close();
  await admin.del(`tmbench-cost:{${queue.name}}:seq`); // flush keeps the id counter
}
admin.disconnect();
