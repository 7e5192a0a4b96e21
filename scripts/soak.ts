/**
 * The soak (issue 9, scenario 13): for each backend, a producer process keeps
 * enqueueing through the public command API while 2–3 `taskmill consume`
 * children run the jobs, and at seeded random intervals the soak kill -9s a
 * consumer, SIGTERMs one, or restarts the server. At the end it stops the
 * producer, lets the consumers drain, and counts from outside the queue what
 * was enqueued, completed, duplicated and lost.
 *
 *   npm run soak -- [--minutes 5] [--backends sqlite,redis,redis-blocking,postgres] [--seed N]
 *                   [--rate 50] [--consumers 3] [--threads 4] [--lease 2] [--keep]
 *
 * Backends run one after another, each for --minutes: on a 2-core machine four
 * soaks at once would starve the consumers' lease heartbeats and turn load into
 * duplicates, and a failure would be harder to pin on one backend. --seed
 * replays the same schedule of faults (the jobs' timing is the machine's).
 * Exits 1 when any acknowledged job is lost.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createQueue } from '../src/index.js';
import { decodeMessage } from '../src/codec/message.js';
import { spawnTsx, tempDir } from '../test/helpers/processes.js';
import { ConsumerPool } from './soak/consumers.js';
import { BACKENDS, startBackend, type BackendName } from './soak/servers.js';
import { tally, type Leftovers, type Outage, type Tally } from './soak/tally.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    backends: { type: 'string', default: BACKENDS.join(',') },
    seed: { type: 'string' },
    rate: { type: 'string', default: '50' },
    consumers: { type: 'string', default: '3' },
    threads: { type: 'string', default: '4' },
    lease: { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
  },
});

const minutes = Number(values.minutes);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const backends = values.backends.split(',').map((b) => b.trim()) as BackendName[];
for (const b of backends) if (!BACKENDS.includes(b)) throw new Error(`unknown backend "${b}": use ${BACKENDS.join(',')}`);
if (!(minutes > 0) || !Number.isInteger(seed)) throw new Error('--minutes must be > 0 and --seed an integer');

const PRODUCER = path.join(import.meta.dirname, 'soak', 'producer.ts');
const commandLine = `npm run soak -- ${process.argv.slice(2).join(' ')}`.trim();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** mulberry32: a small seeded PRNG, one stream per backend so a backend replays alone the same. */
function prng(seedValue: number): () => number {
  let a = seedValue >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  backend: BackendName;
  tally: Tally;
  kills: number;
  terms: number;
  restarts: number | null;
  seconds: number;
  drained: boolean;
  unexpectedExits: string[];
  badStops: string[];
  stoppedWhileStarting: number;
  /** Consumer warnings that a lease ran out (ack refused, or lost while running): why jobs ran twice. */
  leaseLostWarnings: number;
  dir: string;
}

/** What the queue still holds once every consumer has stopped: the failed store and anything ready or leased. */
async function leftovers(url: string): Promise<Leftovers> {
  const queue = createQueue(url, { onWarning: () => {} });
  const key = (data: string) => {
    const [job, enqueueTry] = decodeMessage(data).args as [number, number];
    return `${job} ${enqueueTry}`;
  };
  try {
    const failed = new Map<string, string>();
    for (const message of await queue.failed(1_000_000)) failed.set(key(message.data), message.error);
    const queued = new Set<string>();
    await queue.reclaim(); // expired leases of killed consumers back to ready
    for (;;) {
      const batch = await queue.readBatch(500);
      if (batch.length === 0) break;
      for (const message of batch) queued.add(key(message.data));
    }
    return { failed, queued };
  } finally {
    await queue.close();
  }
}

async function soakOne(name: BackendName, index: number): Promise<Row> {
  const random = prng(seed + index * 1_000_003);
  const dir = tempDir(`taskmill-soak-${name}-`);
  const started = Date.now();
  const note = (line: string) => console.info(`[${name} ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}`);
  const backend = await startBackend(name, dir);
  const recordFile = path.join(dir, 'records.txt');
  const producerLog = path.join(dir, 'producer.log');
  const consumerCount = Number(values.consumers);
  const pool = new ConsumerPool({
    url: backend.url,
    dir,
    recordFile,
    size: consumerCount,
    leaseSeconds: Number(values.lease),
    threads: Number(values.threads),
    note,
  });
  note(`dir ${dir}`);
  pool.start();
  const producer = spawnTsx([PRODUCER], { env: { TASKMILL_QUEUE: backend.url, SOAK_PRODUCER_LOG: producerLog, SOAK_RATE: values.rate } });
  let producerExit = null as number | string | null; // set by the exit handler
  const killProducer = () => producer.child.kill('SIGKILL');
  process.once('exit', killProducer); // when the soak fails before it stops the producer
  void producer.exited.then((code) => {
    producerExit = code;
    process.off('exit', killProducer);
  });

  let restarts = 0;
  const outages: Outage[] = [];
  const end = started + minutes * 60_000;
  for (;;) {
    const gapMs = 2_000 + random() * 8_000;
    if (Date.now() + gapMs >= end) break;
    await sleep(gapMs);
    if (producerExit !== null) throw new Error(`the producer died (${producerExit}): ${producer.stderr().slice(-2000)}`);
    const roll = random();
    if (backend.restart && roll < 0.3) {
      const downMs = 500 + random() * 5_500;
      const from = Date.now();
      const how = await backend.restart(downMs, random);
      outages.push({ from, to: Date.now() });
      restarts++;
      note(`server restarted (${how}, down ${(downMs / 1000).toFixed(1)} s)`);
    } else if (roll < 0.65) {
      note(pool.kill9(random));
    } else {
      note(pool.terminate(random));
    }
  }
  await sleep(Math.max(0, end - Date.now()));

  note('stopping the producer');
  producer.child.kill('SIGTERM');
  await Promise.race([producer.exited, sleep(60_000)]);
  if (producerExit === null) throw new Error(`the producer did not stop within 60 s: ${producer.stderr().slice(-2000)}`);
  if (producerExit !== 0) throw new Error(`the producer exited ${producerExit}: ${producer.stderr().slice(-2000)}`);

  // Drain: the consumers finish the queue (expired leases of killed consumers come back after --lease).
  await backend.ensureUp();
  const queue = createQueue(backend.url, { onWarning: () => {} });
  const drainUntil = Date.now() + 120_000;
  let drained = false;
  while (Date.now() < drainUntil) {
    try {
      const stats = await queue.stats();
      if (stats.ready === 0 && stats.leased === 0 && stats.delayed === 0) {
        drained = true;
        break;
      }
    } catch {
      // the server is still coming back
    }
    await sleep(500);
  }
  await queue.close();
  note(drained ? 'drained' : 'NOT drained within 120 s');
  await pool.stopAll();
  const seconds = (Date.now() - started) / 1000;
  const leaseMs = Number(values.lease) * 1000;
  const counted = tally(producerLog, recordFile, await leftovers(backend.url), pool.killedPids, outages, leaseMs);
  const leaseLostWarnings = countLeaseLost(path.join(dir, 'consumers'));
  await backend.dispose();
  const keep = values.keep || counted.lost.length > 0 || counted.otherDuplicates.length > 0;
  if (!keep) rmSync(dir, { recursive: true, force: true });
  else note(`kept ${dir}`);
  return {
    backend: name,
    tally: counted,
    kills: pool.kills,
    terms: pool.terms,
    restarts: backend.restart ? restarts : null,
    seconds,
    drained,
    unexpectedExits: pool.unexpectedExits,
    badStops: pool.badStops,
    stoppedWhileStarting: pool.stoppedWhileStarting,
    leaseLostWarnings,
    dir,
  };
}

/** Lines of the consumers' JSON logs that say a lease ran out before its ack or extension. */
function countLeaseLost(logDir: string): number {
  if (!existsSync(logDir)) return 0;
  let count = 0;
  for (const file of readdirSync(logDir)) {
    for (const line of readFileSync(path.join(logDir, file), 'utf8').split('\n')) if (line.includes('"msg":"') && /lease lost/.test(line)) count++;
  }
  return count;
}

function table(rows: Row[]): string {
  const head = ['backend', 'enqueued', 'completed', 'duplicated', 'lost', 'failed store', 'kills (-9 / TERM)', 'server restarts', 'duration'];
  const body = rows.map((r) => [
    r.backend,
    String(r.tally.enqueued),
    String(r.tally.completed),
    `${r.tally.duplicated} (${r.tally.duplicatedAfterKill9} kill -9, ${r.tally.duplicatedAfterOutage} outage, ${r.tally.duplicated - r.tally.duplicatedAfterKill9 - r.tally.duplicatedAfterOutage} other)`,
    String(r.tally.lost.length),
    String(r.tally.failedStore),
    `${r.kills + r.terms} (${r.kills} / ${r.terms})`,
    r.restarts === null ? '—' : String(r.restarts),
    `${Math.round(r.seconds)} s`,
  ]);
  const lines = [head, head.map(() => '---'), ...body].map((cells) => `| ${cells.join(' | ')} |`);
  return lines.join('\n');
}

function notes(rows: Row[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const t = r.tally;
    const parts = [
      `${t.runs} runs recorded`,
      `${t.rejectedEnqueues} enqueue calls rejected (retried), ${t.maybeWrittenRan} of them written anyway ("maybe written": reply lost; ran, not counted as duplicates)`,
      `${t.leftQueued} left in the queue`,
      `${r.leaseLostWarnings} "lease lost" warnings in the consumer logs`,
      r.drained ? 'drained' : 'NOT drained within 120 s',
    ];
    if (t.failedReasons.size > 0) parts.push(`failed: ${[...t.failedReasons].map(([reason, n]) => `${n}× ${reason}`).join('; ')}`);
    if (t.otherDuplicates.length > 0) parts.push(`duplicates not explained by a kill -9, e.g. ${t.otherDuplicates.join(', ')}`);
    if (t.lost.length > 0) parts.push(`LOST (job try): ${t.lost.slice(0, 20).join(', ')}${t.lost.length > 20 ? ' …' : ''}; files kept in ${r.dir}`);
    if (r.unexpectedExits.length > 0) parts.push(`consumers that exited on their own: ${r.unexpectedExits.join(' ;; ')}`);
    if (r.stoppedWhileStarting > 0)
      parts.push(`${r.stoppedWhileStarting} SIGTERMed consumers were still starting (died of the signal before the CLI's handlers were installed)`);
    if (r.badStops.length > 0) parts.push(`SIGTERM stops that did not exit 0: ${r.badStops.join(' ;; ')}`);
    out.push(`- ${r.backend}: ${parts.join('; ')}.`);
  }
  return out.join('\n');
}

console.info(`soak: ${commandLine}`);
console.info(
  `seed ${seed} (replay the same faults with --seed ${seed}); ${minutes} min per backend: ${backends.join(', ')}; rate ${values.rate}/s; ${values.consumers} consumers × ${values.threads} threads, lease ${values.lease} s`,
);
const rows: Row[] = [];
for (const name of backends) rows.push(await soakOne(name, BACKENDS.indexOf(name)));
const report = [`command: ${commandLine}`, `seed: ${seed}`, `date: ${new Date().toISOString()}`, '', table(rows), '', notes(rows)].join('\n');
console.info(`\n${report}\n`);
if (process.env.SOAK_REPORT_FILE) writeFileSync(process.env.SOAK_REPORT_FILE, `${report}\n`);
const lost = rows.reduce((sum, r) => sum + r.tally.lost.length, 0);
process.exit(lost > 0 ? 1 : 0);
