/**
 * The consumer process of the reliability suite: `taskmill consume URL -t
 * WORKERS -n` with the suite's commands (commands.ts), but on a queue with a
 * lease of LEASE_MS (the CLI has no lease option; a message's lease deadline
 * is set by the consumer that claimed it). Logs pino JSON on stdout; SIGTERM
 * drains and exits 0.
 *
 *   consumer.ts URL WORKERS LEASE_MS      (runs append to $RECORD_FILE; optional $COMMAND_TIMEOUT_MS)
 */
import { createConsumer, createQueue } from '../../src/index.js';
import './commands.js';

const [url, workers, leaseMs] = process.argv.slice(2);
if (!url || !workers || !leaseMs) throw new Error('usage: consumer.ts URL WORKERS LEASE_MS');
// COMMAND_TIMEOUT_MS: every call's deadline (Redis commandTimeoutMs, PostgreSQL queryTimeoutMs; default 5 s), for tests that move 50 MB in one call.
const timeoutMs = Number(process.env.COMMAND_TIMEOUT_MS);
const commandTimeoutMs = process.env.COMMAND_TIMEOUT_MS ? { commandTimeoutMs: timeoutMs, queryTimeoutMs: timeoutMs } : {};
const queue = createQueue(url, { leaseMs: Number(leaseMs), ...commandTimeoutMs });
const consumer = createConsumer({ queue, workers: Number(workers), periodic: false, pollDelayMs: 20, maxPollDelayMs: 200 });
process.once('SIGTERM', () => void consumer.stop());
await consumer.start();
await consumer.done.finally(() => queue.close());
