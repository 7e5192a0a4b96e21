/**
 * Reliability scenario 7: a password in every URL form taskmill takes —
 * Redis `:pw@`, `user:pw@`, the old password-only `pw@`, `rediss://`,
 * `?blocking=true`, a cluster's several nodes; PostgreSQL `user:pw@`, `postgresql://`, `?password=`,
 * `?listenUrl=` (a URL with a password of its own, inside the query);
 * percent-encoded, and with an unencoded `@` (which URL parsers accept: the
 * last `@` ends the userinfo) — never appears in util.inspect / JSON of the
 * queue or of a consumer, in connection errors (message, stack, cause),
 * warnings, a consumer's log lines, or the command line's output.
 *
 * Servers here are closed ports: every connection fails, which is where
 * drivers put URLs and passwords into their messages. A password on a
 * working server through a whole CLI run is test/cli/secrets-live.test.ts.
 */
import { inspect } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, createConsumer, createQueue, type BaseQueue } from '../../src/index.js';
import { redactUrl } from '../../src/shared/config.js';
import { tempDir } from '../helpers/processes.js';
import { closedPort, runCli } from '../fixtures/cli-helpers.js';

const SECRET = 'Xy7-s3cret';
/** The same secret with an '@' in it, written raw and percent-encoded. */
const AT_SECRET = `p@${SECRET}`;

const FORMS = (port: number): [string, string][] => [
  ['redis :pw@', `redis://:${SECRET}@127.0.0.1:${port}/0`],
  ['redis user:pw@', `redis://app:${SECRET}@127.0.0.1:${port}/0`],
  ['redis pw@ (old password-only form)', `redis://${SECRET}@127.0.0.1:${port}/0`],
  ['rediss user:pw@', `rediss://app:${SECRET}@127.0.0.1:${port}/0`],
  ['redis blocking', `redis://app:${SECRET}@127.0.0.1:${port}/0?blocking=true&prefix=p`],
  ['redis percent-encoded @', `redis://:${encodeURIComponent(AT_SECRET)}@127.0.0.1:${port}/0`],
  ['redis unencoded @', `redis://:${AT_SECRET}@127.0.0.1:${port}/0`],
  ['redis cluster, several nodes', `redis://app:${SECRET}@127.0.0.1:${port},127.0.0.1:${port}/?cluster=true&blocking=true`],
  ['redis cluster, unencoded @', `redis://:${AT_SECRET}@127.0.0.1:${port},localhost:${port}/?cluster=true`],
  ['postgres user:pw@', `postgres://app:${SECRET}@127.0.0.1:${port}/db`],
  ['postgresql user:pw@', `postgresql://app:${SECRET}@127.0.0.1:${port}/db?sslmode=disable`],
  ['postgres ?password=', `postgres://app@127.0.0.1:${port}/db?password=${SECRET}&schema=jobs`],
  ['postgres ?user=&password=', `postgres://127.0.0.1:${port}/db?user=app&password=${SECRET}`],
  ['postgres percent-encoded @', `postgres://app:${encodeURIComponent(AT_SECRET)}@127.0.0.1:${port}/db`],
  ['postgres unencoded @', `postgres://app:${AT_SECRET}@127.0.0.1:${port}/db`],
  // The LISTEN URL's password sits in the queue URL's query, percent-encoded once more.
  [
    'postgres ?listenUrl= (percent-encoded)',
    `postgres://app@127.0.0.1:${port}/db?pooler=transaction&listenUrl=${encodeURIComponent(`postgres://listener:${SECRET}@127.0.0.1:${port}/db`)}`,
  ],
  [
    'postgres ?listenUrl=, unencoded @',
    `postgres://app@127.0.0.1:${port}/db?listenUrl=${encodeURIComponent(`postgres://listener:${AT_SECRET}@127.0.0.1:${port}/db`)}`,
  ],
];

/** Anything that would betray the password: the raw one, the '@' one's tail, the encoded form. */
function expectNoSecret(text: string, what: string): void {
  expect(text, what).not.toContain(SECRET);
  expect(text, what).not.toContain(encodeURIComponent(AT_SECRET));
}

let port = 0;
const opened: BaseQueue[] = [];
beforeAll(async () => {
  port = await closedPort();
});
afterAll(async () => {
  await Promise.allSettled(opened.map((q) => q.close()));
});

describe('a password in every URL form, on an unreachable server', { timeout: 60_000 }, () => {
  it.each(FORMS(0).map(([form]) => [form]))('%s: redactUrl, util.inspect, JSON.stringify, the connection error and warnings show ***', async (form) => {
    const url = FORMS(port).find(([f]) => f === form)![1];
    expect(redactUrl(url)).toContain('***');
    expectNoSecret(redactUrl(url), 'redactUrl');
    const warnings: string[] = [];
    const queue = createQueue(url, { onWarning: (warning: string) => warnings.push(warning), connectTimeoutMs: 1000 });
    opened.push(queue);
    for (const text of [inspect(queue), inspect(queue, { showHidden: true, depth: 10 }), JSON.stringify(queue), String(queue)])
      expectNoSecret(text, 'the queue shown');
    expect(JSON.stringify(queue)).toContain('***');

    const error = (await queue.write('x').then(
      () => null,
      (e: unknown) => e,
    )) as Error & { cause?: unknown };
    expect(error, 'a write to a closed port must fail').toBeInstanceOf(Error);
    expectNoSecret(`${error.message}\n${error.stack}\n${inspect(error.cause, { depth: 5 })}\n${inspect(error, { depth: 5 })}`, 'the connection error');
    expectNoSecret(warnings.join('\n'), 'warnings');
  });

  it.each([
    ['redis, a refused parameter', `redis://:${SECRET}@127.0.0.1:6379/0?family=6`],
    ['redis unencoded @, a bad db', `redis://:${AT_SECRET}@127.0.0.1:6379/db0`],
    ['postgres, a bad schema', `postgres://app:${SECRET}@127.0.0.1/db?schema=Bad*`],
    ['postgres unencoded @, a bad schema', `postgres://app:${AT_SECRET}@127.0.0.1/db?schema=Bad*`],
    ['an unsupported scheme', `amqp://app:${SECRET}@127.0.0.1/vhost`],
  ])('%s: the ConfigError shows ***', (_what, url) => {
    let caught: unknown;
    try {
      opened.push(createQueue(url));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expectNoSecret(`${(caught as Error).message}\n${(caught as Error).stack}`, 'the ConfigError');
  });

  it("a consumer on such a URL: util.inspect, its log lines and start()'s rejection show ***", async () => {
    for (const [form, url] of FORMS(port).filter(([f]) => f.endsWith('unencoded @') || f === 'postgres ?password=')) {
      const lines: string[] = [];
      const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
      const consumer = createConsumer({ queue: url, logger, openTimeoutMs: 1500, periodic: false });
      expectNoSecret(inspect(consumer, { depth: 8, showHidden: true }), `${form}: the consumer shown`);
      const error = (await consumer.start().then(
        () => null,
        (e: unknown) => e,
      )) as Error;
      expect(error, `${form}: start() on a closed port must reject`).toBeInstanceOf(Error);
      expectNoSecret(`${error.message}\n${error.stack}\n${inspect(error, { depth: 5 })}`, `${form}: start()'s rejection`);
      expect(lines.length, `${form}: the consumer logged its retries`).toBeGreaterThan(0);
      expectNoSecret(lines.join(''), `${form}: the consumer's log lines`);
    }
  });

  it('taskmill status / consume -q with an unencoded @ in the password: exit 1, output and log file show ***', async () => {
    const dir = tempDir('taskmill-secret-forms-');
    const urls = FORMS(port)
      .filter(([form]) => form.endsWith('unencoded @') || form.startsWith('redis pw@'))
      .map(([, url]) => url);
    const runs = await Promise.all(
      urls.flatMap((url) => [runCli(['status', '-q', url], { cwd: dir }), runCli(['consume', '-q', url, '--connect-timeout', '1', '-n'], { cwd: dir })]),
    );
    for (const result of runs) {
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('***');
      expectNoSecret(result.stdout + result.stderr, 'taskmill output');
    }
  });
});
