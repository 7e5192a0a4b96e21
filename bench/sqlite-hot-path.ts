/**
 * The SQLite backend's own share of a consumer's CPU, without the consumer: CPU per 1,000 jobs
 * of readBatch(100) and ackBatch (each read's ids with their deliveries), as the consumer calls
 * them in the process workload of `npm run bench`; with --results, setResults (a record per job,
 * fenced by its delivery) before each ack, as for a command with the default `results: true`. All
 * of it is the consumer's CPU, since better-sqlite3 runs in-process. Rounds alternate two queue
 * files in one process; the first round warms up and is not printed.
 *
 *   npx tsx bench/sqlite-hot-path.ts [--jobs 20000] [--rounds 6] [--results]
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SqliteQueue } from '../src/backends/sqlite/queue.js';
import { resultRecord } from '../src/producer/results.js';

const { values } = parseArgs({
  options: { jobs: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '6' }, results: { type: 'boolean', default: false } },
});
const jobs = Number(values.jobs);
const rounds = Number(values.rounds);
// About the size of a no-op job's envelope in the bench.
const payload = JSON.stringify({ v: 1, id: 'V1StGXR8_Z5jdHi6B-myT', command: 'noop', args: [], kwargs: {}, enqueuedAt: Date.now() });

const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

const dir = mkdtempSync(path.join(tmpdir(), 'taskmill-sqlite-hot-'));
try {
  const claims: number[] = [];
  const acks: number[] = [];
  const stores: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const queue = new SqliteQueue(path.join(dir, `q${round % 2}.sqlite`), { name: 'hot' });
    for (let i = 0; i < jobs; i += 1000) await queue.writeBatch(Array.from({ length: Math.min(1000, jobs - i) }, () => payload));
    let claim = 0;
    let ack = 0;
    let store = 0;
    for (;;) {
      const read = process.cpuUsage();
      const batch = await queue.readBatch(100);
      claim += cpuMs(read);
      if (batch.length === 0) break;
      if (values.results) {
        const stored = process.cpuUsage();
        await queue.setResults(
          batch.map((m) => ({
            jobId: randomUUID(),
            record: resultRecord({ status: 'completed', attempt: m.attempt, at: Date.now(), value: 'null' }),
            ttlMs: 86_400_000,
          })),
          batch.map((m) => m.id),
          batch.map((m) => m.delivery),
        );
        store += cpuMs(stored);
      }
      const acked = process.cpuUsage();
      const refused = await queue.ackBatch(
        batch.map((m) => m.id),
        batch.map((m) => m.delivery),
      );
      ack += cpuMs(acked);
      if (refused.length > 0) throw new Error(`refused ${refused.length} acks`);
    }
    await queue.close();
    if (round === 0) continue;
    claims.push((claim / jobs) * 1000);
    acks.push((ack / jobs) * 1000);
    stores.push((store / jobs) * 1000);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const show = (xs: number[]) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
  const totals = claims.map((c, i) => c + acks[i]! + stores[i]!);
  console.log(`CPU ms per 1,000 jobs, median (min–max) of ${rounds - 1} rounds of ${jobs.toLocaleString('en')} jobs:`);
  const stored = values.results ? `   setResults ${show(stores)}` : '';
  console.log(`  readBatch(100) ${show(claims)}   ackBatch ${show(acks)}${stored}   all ${show(totals)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
