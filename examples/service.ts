/**
 * Example service embedding a consumer: an HTTP server whose POST /jobs
 * enqueues, with a consumer running in the same process. The library
 * installs no signal handlers; the service owns its shutdown.
 *
 *   npx tsx examples/service.ts       then   curl -XPOST localhost:3000/jobs
 */
import http from 'node:http';
import pino from 'pino';
import { createConsumer } from '../src/index.js';
import { churn } from './commands.js';

const logger = pino({ name: 'service' });
const consumer = createConsumer({ workers: 4, logger });
await consumer.start();

let n = 0;
const server = http
  .createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/jobs') return void res.writeHead(404).end();
    // The enqueue can fail (the queue is down): answer 503, never leave the request hanging.
    churn(++n, 'from-http').then(
      (job) => res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ id: job.id })),
      (error: unknown) => {
        logger.error({ err: error }, 'enqueue failed');
        res.writeHead(503).end();
      },
    );
  })
  .listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => logger.info('listening on 127.0.0.1:3000'));

const shutdown = async () => {
  server.close();
  const { forced } = await consumer.stop({ timeout: 10_000 });
  process.exitCode = forced ? 2 : 0;
};
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
