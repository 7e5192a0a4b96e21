/**
 * A quick single-process look at raw backend throughput (not the consumer):
 *   npx tsx bench/backends-quick.ts [messages]
 * write (one await each), writeBatch(100), and readBatch(10) + ackBatch until empty.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BaseQueue } from '../src/backends/base.js';
import { MemoryQueue } from '../src/backends/memory/queue.js';
import { SqliteQueue } from '../src/backends/sqlite/queue.js';

type Batching = BaseQueue & { writeBatch(datas: readonly string[]): Promise<string[]> };

const total = Number(process.argv[2] ?? 20_000);
const payload = JSON.stringify({ v: 1, command: 'bench', args: [1, 'x'.repeat(100)] });

let quiet = false;

async function timed(label: string, n: number, work: () => Promise<void>): Promise<void> {
  const started = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (!quiet)
    console.log(
      `${label.padEnd(40)} ${Math.round(n / seconds)
        .toLocaleString('en')
        .padStart(10)} msg/s`,
    );
}

async function bench(label: string, queue: Batching, count: number): Promise<void> {
  await timed(`${label} write`, count, async () => {
    for (let i = 0; i < count; i++) await queue.write(payload);
  });
  await timed(`${label} readBatch(10) + ackBatch`, count, async () => {
    for (;;) {
      const batch = await queue.readBatch(10);
      if (batch.length === 0) break;
      await queue.ackBatch(batch.map((m) => m.id));
    }
  });
  await timed(`${label} writeBatch(100)`, count, async () => {
    const batch = Array.from({ length: 100 }, () => payload);
    for (let i = 0; i < count; i += 100) await queue.writeBatch(batch);
  });
  await timed(`${label} read() + ack() one at a time`, count, async () => {
    for (let m = await queue.read(); m; m = await queue.read()) await queue.ack(m.id);
  });
  await queue.close();
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskmill-bench-'));
try {
  // A silent warm-up round first, so the figures are not mostly JIT compilation.
  for (const warm of [true, false]) {
    quiet = warm;
    const count = warm ? Math.ceil(total / 10 / 100) * 100 : total;
    await bench('memory', new MemoryQueue(warm ? 'warm' : 'bench', { name: 'bench' }), count);
    await bench('sqlite (file, WAL)', new SqliteQueue(path.join(dir, `${warm ? 'warm' : 'bench'}.sqlite`), { name: 'bench' }), count);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
