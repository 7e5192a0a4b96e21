/**
 * What a PostgreSQL claim costs, without a consumer: a backlog of N jobs claimed `batch` at a
 * time, each batch's ack riding the next claim as in a consumer (claim.ts), by `lanes` loops
 * at once. Per round: jobs/s, each claim's round trip (p50, p90: from the call to its rows),
 * and the CPU per job of the server (all its processes, from /proc: a server on this machine,
 * and every client's work counts, so run it on a quiet server) and of this process. A
 * consumer on PostgreSQL waits for its claims, so these bound its throughput as much as its
 * own CPU does (bench/RESULTS.md, profile findings). Each round is a fresh queue in a schema
 * of its own, dropped at the end; the first round warms up and is not printed.
 *
 *   npx tsx bench/postgres-claim-cost.ts [--jobs 20000] [--batch 250] [--lanes 1] [--rounds 3] [--postgres URL]
 */
import { parseArgs } from 'node:util';
import { DatabaseQueue } from '../src/backends/postgres/queue.js';
import { encodeMessage } from '../src/codec/message.js';
import type { QueueMessage } from '../src/backends/base.js';
import { positiveInteger } from './args.js';
import { serverCpu, serverMsBetween } from './server-cpu.js';
import { dropSchema } from './systems/cleanup.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '250' },
    lanes: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    postgres: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const jobs = positiveInteger('jobs', values.jobs);
const batch = positiveInteger('batch', values.batch);
const lanes = positiveInteger('lanes', values.lanes);
const rounds = positiveInteger('rounds', values.rounds);
const schema = `taskmill_claim_cost_${process.pid}`;

const datas = Array.from({ length: jobs }, (_, i) => encodeMessage('benchNoop', [i, 0]).data);
const server = await serverCpu('postgres', { redisUrl: '', postgresUrl: values.postgres });
const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;

try {
  for (let round = 0; round <= rounds; round++) {
    const queue = new DatabaseQueue(values.postgres, { name: `cost${round}`, schema });
    await queue.open();
    for (let i = 0; i < jobs; i += 1000) await queue.writeBatch(datas.slice(i, i + 1000));
    const claimMs: number[] = [];
    const acks: Promise<unknown>[] = [];
    // One lane claims, then acks what it claimed before: the ack parks on the claim in flight
    // and rides the lane's next claim.
    const lane = async (): Promise<void> => {
      let previous: QueueMessage[] = [];
      for (;;) {
        const startedAt = performance.now();
        const claiming = queue.readBatch(batch);
        if (previous.length > 0) {
          acks.push(
            queue.ackBatch(
              previous.map((m) => m.id),
              previous.map((m) => m.delivery),
            ),
          );
        }
        const messages = await claiming;
        claimMs.push(performance.now() - startedAt);
        if (messages.length === 0) return;
        previous = messages;
      }
    };
    const serverBefore = await server.sample();
    const cpuBefore = process.cpuUsage();
    const startedAt = performance.now();
    await Promise.all(Array.from({ length: lanes }, lane));
    await Promise.all(acks);
    const elapsedMs = performance.now() - startedAt;
    const cpu = process.cpuUsage(cpuBefore);
    const serverAfter = await server.sample();
    const { ready, leased } = await queue.stats();
    await queue.close();
    // Every job claimed once and acked: a lost ack or a short claim would leave some behind.
    if (ready + leased !== 0) throw new Error(`round ${round}: ${ready} ready and ${leased} leased jobs left after the lanes ended`);
    if (round === 0) continue;
    claimMs.sort((a, b) => a - b);
    const serverUs = serverBefore && serverAfter ? ((serverMsBetween(serverBefore, serverAfter) / jobs) * 1000).toFixed(1) : '?';
    console.log(
      `round ${round}: ${lanes} lane(s), claims of up to ${batch}: ${Math.round((jobs / elapsedMs) * 1000)} jobs/s; ` +
        `claim p50 ${quantile(claimMs, 0.5).toFixed(2)} ms, p90 ${quantile(claimMs, 0.9).toFixed(2)} ms; ` +
        `CPU per job: server ${serverUs} µs, this process ${((cpu.user + cpu.system) / jobs).toFixed(1)} µs`,
    );
  }
} finally {
  await server.close();
  await dropSchema(values.postgres, schema);
}
