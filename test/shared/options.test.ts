/**
 * Options are checked one way (src/shared/options.ts): every public entry
 * point refuses a bad value with a ConfigError that names the entry point,
 * the option, the value and what was expected; the hand checks of the enqueue
 * path agree with the zod fields; and the defaults the manual's option tables
 * state are the ones the code declares.
 *
 * The tables are read with a small scanner, not a markdown parser: a table is
 * a run of `|` lines whose header starts with `option` or `flag` and has a
 * `default` column; a row's key is the first cell's `code` (for a flag, its
 * long --name), and its default cell documents a value when one of its code
 * spans (quotes dropped) or numbers (digit groups joined) equals it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  configure,
  createConsumer,
  MemoryQueue,
  periodicCommand,
  PostgresQueue,
  queueCommand,
  RedisBlockingQueue,
  RedisQueue,
  SqliteQueue,
} from '../../src/index.js';
import { QUEUE_DEFAULTS, type BaseQueue } from '../../src/backends/base.js';
import { POSTGRES_DEFAULTS } from '../../src/backends/postgres/config.js';
import { REDIS_DEFAULTS } from '../../src/backends/redis/queue.js';
import { SQLITE_DEFAULTS } from '../../src/backends/sqlite/queue.js';
import { FLAGS, parseFlag } from '../../src/cli/flags.js';
import { CONSUMER_DEFAULTS } from '../../src/consumer/consumer.js';
import { COMMAND_DEFAULTS } from '../../src/producer/commands.js';
import { SETTINGS_DEFAULTS, getSettings } from '../../src/producer/settings.js';
import { describeValue } from '../../src/shared/errors.js';
import {
  epochMs,
  integer,
  isEpochMs,
  isMillis,
  isNonEmptyString,
  isPositiveMillis,
  millis,
  nonEmptyString,
  parseOption,
  parseOptions,
  positiveMillis,
} from '../../src/shared/options.js';
import { z } from 'zod';
import { ROOT } from '../helpers/processes.js';

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The message of a bad option: the entry point, the option, the value as describeValue shows it, then what was expected. */
function invalid(entryPoint: string, option: string, value: unknown, expected?: string): RegExp {
  return new RegExp(
    `^${escape(entryPoint)}: invalid ${escape(option)} ${escape(describeValue(value))}: ${expected === undefined ? 'must be ' : `${escape(expected)}$`}`,
  );
}

function refusal(make: () => unknown): ConfigError {
  try {
    make();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('not refused');
}

async function rejection(make: () => Promise<unknown>): Promise<ConfigError> {
  const error = await make().then(
    () => new Error('not refused'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

const opened: BaseQueue[] = [];
function track<Q extends BaseQueue>(queue: Q): Q {
  opened.push(queue);
  return queue;
}
afterAll(async () => {
  await Promise.all(opened.map((q) => q.close()));
});

const PG = 'postgres://nobody@127.0.0.1:1/none'; // never connected: constructors do not connect
const REDIS = 'redis://127.0.0.1:1/0';

describe('parseOptions', () => {
  const schema = z.strictObject({ n: integer(1).default(1), s: nonEmptyString().optional() });

  it('fills defaults and keeps what was given', () => {
    expect(parseOptions(schema, {}, 'f')).toEqual({ n: 1 });
    expect(parseOptions(schema, { n: 2, s: 'x' }, 'f')).toEqual({ n: 2, s: 'x' });
  });

  it('names the entry point, the option, the value and what was expected', () => {
    expect(refusal(() => parseOptions(schema, { n: 0 }, 'f')).message).toBe('f: invalid n 0: must be an integer ≥ 1');
    expect(refusal(() => parseOptions(schema, { n: '2' }, 'f')).message).toBe('f: invalid n "2": must be an integer ≥ 1');
    expect(refusal(() => parseOptions(schema, { s: { a: 1 } }, 'f')).message).toBe('f: invalid s {"a":1}: must be a non-empty string');
    expect(refusal(() => parseOptions(schema, 'x'.repeat(100), 'f')).message).toBe(`f: invalid options ${describeValue('x'.repeat(100))}: must be an object`);
  });

  it('never shows a password: a URL where the options go is redacted', () => {
    const message = refusal(() => createConsumer('postgres://app:s3cret-pw@db/app' as never)).message;
    expect(message).toBe('createConsumer: invalid options "postgres://app:***@db/app": must be an object');
  });

  it('names unknown options and the known ones (strict schemas)', () => {
    expect(refusal(() => parseOptions(schema, { n: 1, nn: 2 }, 'f')).message).toBe('f: unknown option "nn" (known: n, s)');
  });

  it('parseOption: one value, named by the caller', () => {
    expect(parseOption(integer(1, 9), 3, 'f', '--n')).toBe(3);
    expect(refusal(() => parseOption(integer(1, 9), 10, 'f', '--n')).message).toBe('f: invalid --n 10: must be an integer from 1 to 9');
  });
});

describe('the hand checks of the per-call paths agree with the fields', () => {
  const samples: unknown[] = [
    0,
    -0,
    1,
    -1,
    0.5,
    99.5,
    100,
    1e20,
    -8.64e15,
    Number.NaN,
    Infinity,
    -Infinity,
    '1',
    '',
    'x',
    null,
    undefined,
    true,
    {},
    [],
    new Date(0),
    10n,
  ];
  it.each([
    ['isEpochMs / epochMs()', isEpochMs, epochMs()],
    ['isMillis / millis(0)', (v: unknown) => isMillis(v), millis(0)],
    ['isMillis(100) / millis(100)', (v: unknown) => isMillis(v, 100), millis(100)],
    ['isPositiveMillis / positiveMillis()', isPositiveMillis, positiveMillis()],
    ['isNonEmptyString / nonEmptyString()', isNonEmptyString, nonEmptyString()],
  ] as const)('%s', (_what, predicate, field) => {
    for (const value of samples) expect(predicate(value), describeValue(value)).toBe(field.safeParse(value).success);
  });
});

describe('every entry point: a bad value is a ConfigError naming the option and the value', () => {
  const memory = () => new MemoryQueue(`options-test-${process.pid}`);

  it('createConsumer', () => {
    const base = { queue: memory() };
    for (const [option, value] of [
      ['workers', 0],
      ['workers', 1.5],
      ['periodic', 'no'],
      ['prefetch', -1],
      ['pollDelayMs', 0],
      ['pollBackoff', 0.5],
      ['drainTimeoutMs', -1],
      ['maxDeliveries', 0],
      ['maxRestarts', 0],
      ['openTimeoutMs', Number.NaN],
      ['leaseMs', 50],
      ['logger', 'info'],
    ] as const) {
      expect(refusal(() => createConsumer({ ...base, [option]: value })).message).toMatch(invalid('createConsumer', option, value));
    }
    expect(refusal(() => createConsumer({ queue: 5 as never })).message).toMatch(invalid('createConsumer', 'queue', 5, 'must be a BaseQueue or a queue URL'));
    expect(refusal(() => createConsumer({ ...base, pollDelayMs: 100, maxPollDelayMs: 10 })).message).toMatch(
      invalid('createConsumer', 'maxPollDelayMs', 10, 'must be a number of milliseconds ≥ 100 (pollDelayMs)'),
    );
  });

  it('configure', () => {
    const before = getSettings();
    for (const [option, value] of [
      ['maxPayloadBytes', 0],
      ['resultTtlMs', -5],
      ['immediate', 'yes'],
      ['queue', 7],
    ] as const) {
      expect(refusal(() => configure({ [option]: value })).message).toMatch(invalid('configure', option, value));
    }
    expect(getSettings()).toEqual(before); // nothing was changed by a refused call
  });

  it('queueCommand and periodicCommand (definition time), schedule() (each call)', async () => {
    for (const [option, value] of [
      ['retries', -1],
      ['retryDelay', -1],
      ['retryBackoff', 0.5],
      ['timeout', 0],
      ['expires', 'tomorrow'],
      ['maxDeliveries', 1.5],
      ['results', 1],
      ['resultTtl', 0],
      ['queue', ''],
    ] as const) {
      expect(refusal(() => queueCommand({ name: `options-bad-${option}`, [option]: value }, () => {})).message).toMatch(invalid('queueCommand', option, value));
    }
    expect(refusal(() => queueCommand({ name: 'options-typo', retry: 3 } as never, () => {})).message).toMatch(
      /^queueCommand: unknown option "retry" \(known: name, /,
    );
    const long = 'n'.repeat(201);
    expect(refusal(() => queueCommand(long, () => {})).message).toMatch(invalid('queueCommand', 'name', long, 'must be a string of 1 to 200 characters'));
    expect(refusal(() => periodicCommand('* * * * *', long, () => {})).message).toMatch(invalid('periodicCommand', 'name', long));

    const cmd = queueCommand('options-schedule', () => {});
    expect((await rejection(() => cmd.schedule({ delay: -1 }))).message).toMatch(invalid('schedule', 'delay', -1, 'must be a number of milliseconds ≥ 0'));
    expect((await rejection(() => cmd.schedule({ eta: 'soon' as never }))).message).toMatch(invalid('schedule', 'eta', 'soon'));
    expect((await rejection(() => cmd.schedule({ eta: new Date(Number.NaN) }))).message).toMatch(invalid('schedule', 'eta', Number.NaN));
    await Promise.resolve();
  });

  it('every backend: the shared options', () => {
    const makers: [string, (options: object) => BaseQueue][] = [
      ['MemoryQueue', (o) => new MemoryQueue('options-test', o)],
      ['SqliteQueue', (o) => new SqliteQueue(':memory:', o)],
      ['PostgresQueue', (o) => new PostgresQueue(PG, o)],
      ['RedisQueue', (o) => new RedisQueue(REDIS, o)],
      ['RedisBlockingQueue', (o) => new RedisBlockingQueue(REDIS, o)],
    ];
    for (const [entryPoint, make] of makers) {
      for (const [option, value] of [
        ['name', 'a*'],
        ['name', ''],
        ['leaseMs', 99],
        ['owner', 5],
        ['onWarning', 'log'],
      ] as const) {
        expect(refusal(() => make({ [option]: value })).message).toMatch(invalid(entryPoint, option, value));
      }
    }
  });

  it('each backend: its own options (and URL parameters)', () => {
    expect(refusal(() => new SqliteQueue(':memory:', { busyTimeoutMs: -1 })).message).toMatch(
      invalid('SqliteQueue', 'busyTimeoutMs', -1, 'must be an integer ≥ 0'),
    );
    for (const [option, value] of [
      ['schema', 'pg_x'],
      ['listen', 'yes'],
      ['pollIntervalMs', 0],
      ['poolSize', 1.5],
      ['connectTimeoutMs', -1],
      ['queryTimeoutMs', 0],
      ['queryTimeoutMs', Infinity],
    ] as const) {
      expect(refusal(() => new PostgresQueue(PG, { [option]: value })).message).toMatch(invalid('PostgresQueue', option, value));
    }
    expect(refusal(() => new PostgresQueue(`${PG}?listen=maybe`)).message).toMatch(invalid('PostgresQueue', 'listen', 'maybe', 'must be true or false'));
    expect(refusal(() => new PostgresQueue(`${PG}?schema=A`)).message).toMatch(invalid('PostgresQueue', 'schema', 'A'));
    for (const make of [(o: object) => new RedisQueue(REDIS, o), (o: object) => new RedisBlockingQueue(REDIS, o)]) {
      for (const [option, value] of [
        ['prefix', 'a{b}'],
        ['blockTimeoutMs', 0],
        ['connectTimeoutMs', 'soon'],
        ['commandTimeoutMs', -1],
        ['commandTimeoutMs', Infinity],
      ] as const) {
        expect(refusal(() => make({ [option]: value })).message).toMatch(
          new RegExp(`^Redis(Blocking)?Queue: invalid ${option} ${escape(describeValue(value))}: must be `),
        );
      }
    }
    expect(refusal(() => new RedisQueue(`${REDIS}?prefix=a*`)).message).toMatch(invalid('RedisQueue', 'prefix', 'a*'));
  });

  it('write options and result records (checked on each call)', async () => {
    for (const queue of [track(new MemoryQueue('options-test-calls')), track(new SqliteQueue(':memory:'))]) {
      const entryPoint = queue.constructor.name;
      expect((await rejection(() => queue.write('x', { runAt: '2030' as never }))).message).toMatch(
        invalid(`${entryPoint}.write`, 'runAt', '2030', 'must be a time in milliseconds since the epoch'),
      );
      expect((await rejection(() => queue.retry('1', 'x', Number.NaN))).message).toMatch(invalid(`${entryPoint}.retry`, 'runAt', Number.NaN));
      expect((await rejection(() => queue.writeUnique('k', 'x', 0))).message).toMatch(invalid(`${entryPoint}.writeUnique`, 'ttlMs', 0));
      expect((await rejection(() => queue.setResults([{ jobId: 'j', record: 'r', ttlMs: -1 }]))).message).toMatch(
        invalid(`${entryPoint}.setResults`, 'records[0].ttlMs', -1),
      );
      expect((await rejection(() => queue.setResults([{ jobId: '', record: 'r', ttlMs: 1 }]))).message).toMatch(
        invalid(`${entryPoint}.setResults`, 'records[0].jobId', ''),
      );
    }
  });

  it('the CLI: a flag is refused as the option it maps onto is, modulo the name', () => {
    const flagMessage = (spec: Parameters<typeof parseFlag>[0], raw: string) => {
      try {
        parseFlag(spec, raw);
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
        return (error as Error).message;
      }
      throw new Error('not refused');
    };
    expect(flagMessage(FLAGS.threads, '0')).toBe('invalid --threads 0: must be an integer from 1 to 1024');
    expect(flagMessage(FLAGS.threads, 'x')).toBe('invalid --threads "x": must be an integer from 1 to 1024');
    expect(flagMessage(FLAGS.threads, ' ')).toBe('invalid --threads " ": must be an integer from 1 to 1024');
    expect(flagMessage(FLAGS.delay, '0')).toBe('invalid --delay 0: must be a number of seconds ≥ 0.001');
    const consumerMessage = refusal(() => createConsumer({ queue: memory(), pollBackoff: 0.5 })).message;
    expect(flagMessage(FLAGS.backoff, '0.5')).toBe(consumerMessage.replace('createConsumer: ', '').replace('pollBackoff', '--backoff'));
    expect(parseFlag(FLAGS.threads, '4')).toBe(4);
    expect(parseFlag(FLAGS.delay, '0.25')).toBe(0.25);
  });
});

describe('the defaults the code uses are the declared ones', () => {
  it('queues', async () => {
    const memory = track(new MemoryQueue('options-defaults'));
    expect({ name: memory.name, leaseMs: memory.leaseMs }).toEqual(QUEUE_DEFAULTS);
    expect(memory.owner).toMatch(/^[0-9a-f-]{36}$/);
    expect(track(new SqliteQueue(':memory:')).busyTimeoutMs).toBe(SQLITE_DEFAULTS.busyTimeoutMs);
    const pg = track(new PostgresQueue(PG));
    expect({ schema: pg.schema, listen: pg.listen, pollIntervalMs: pg.pollIntervalMs, poolSize: pg.poolSize }).toEqual({
      schema: POSTGRES_DEFAULTS.schema,
      listen: POSTGRES_DEFAULTS.listen,
      pollIntervalMs: POSTGRES_DEFAULTS.pollIntervalMs,
      poolSize: POSTGRES_DEFAULTS.poolSize,
    });
    const redis = track(new RedisBlockingQueue(REDIS));
    expect(redis.prefix).toBe(REDIS_DEFAULTS.prefix);
    expect((redis as unknown as { blockTimeoutMs: number }).blockTimeoutMs).toBe(REDIS_DEFAULTS.blockTimeoutMs);
    await Promise.resolve();
  });

  it('createConsumer', async () => {
    const consumer = createConsumer({ queue: track(new MemoryQueue('options-defaults-consumer')), logger: pino({ level: 'silent' }) });
    const { context } = consumer.actor.getSnapshot();
    expect(context.workers).toBe(CONSUMER_DEFAULTS.workers);
    expect(context.drainTimeoutMs).toBe(CONSUMER_DEFAULTS.drainTimeoutMs);
    expect(context.readerOptions).toMatchObject({
      prefetch: CONSUMER_DEFAULTS.prefetch,
      delayMs: CONSUMER_DEFAULTS.pollDelayMs,
      backoff: CONSUMER_DEFAULTS.pollBackoff,
      maxDelayMs: CONSUMER_DEFAULTS.maxPollDelayMs,
    });
    await consumer.stop();
  });

  it('configure', () => {
    expect(SETTINGS_DEFAULTS).toMatchObject({ immediate: false, maxPayloadBytes: 1024 * 1024, resultTtlMs: 86_400_000 });
  });
});

// ── the manual's tables ─────────────────────────────────────────────────────

const cells = (line: string) =>
  line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((cell) => cell.trim());

/** Every option/flag table of a page: key → its default cell. */
function defaultsTable(page: string): Map<string, string> {
  const lines = readFileSync(path.join(ROOT, page), 'utf8').split('\n');
  const rows = new Map<string, string>();
  for (let i = 0; i < lines.length; i++) {
    const header = cells(lines[i]!);
    if (!lines[i]!.startsWith('|') || !['option', 'flag'].includes(header[0]!)) continue;
    const column = header.indexOf('default');
    if (column === -1) continue;
    for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
      const row = cells(lines[i]!);
      const key = header[0] === 'flag' ? /--[a-z-]+/.exec(row[0]!)?.[0] : /^`([^`]+)`$/.exec(row[0]!)?.[1];
      if (key) rows.set(key, row[column]!);
    }
  }
  return rows;
}

/** Whether a default cell states `value`: a code span (quotes dropped) or a number in it equals it. */
function states(cell: string, value: unknown): boolean {
  if (value === undefined) return /^(off|none)\b/.test(cell); // a flag that is off unless given
  const spans = [...cell.matchAll(/`([^`]*)`/g)].map((m) => m[1]!.replace(/^'(.*)'$/, '$1'));
  const numbers = [...cell.matchAll(/\d[\d ]*(?:\.\d+)?/g)].map((m) => Number(m[0].replace(/ /g, '')));
  if (typeof value === 'number') return numbers.includes(value) || spans.some((span) => Number(span.replace(/[ _]/g, '')) === value);
  return spans.includes(String(value));
}

function expectDocumented(page: string, defaults: Record<string, unknown>): void {
  const table = defaultsTable(page);
  for (const [key, value] of Object.entries(defaults)) {
    const cell = table.get(key);
    expect(cell, `${page}: no table row for ${key}`).toBeDefined();
    expect(states(cell!, value), `${page}: ${key}'s default is ${String(value)}, the table says ${cell}`).toBe(true);
  }
}

describe('the manual states the declared defaults', () => {
  it('docs/consumer.md: createConsumer', () => expectDocumented('docs/consumer.md', CONSUMER_DEFAULTS));
  it('docs/commands.md: queueCommand', () => expectDocumented('docs/commands.md', COMMAND_DEFAULTS));
  it('docs/backends/README.md: every backend', () => expectDocumented('docs/backends/README.md', QUEUE_DEFAULTS));
  it('docs/backends/sqlite.md', () => expectDocumented('docs/backends/sqlite.md', { ...QUEUE_DEFAULTS, ...SQLITE_DEFAULTS }));
  it('docs/backends/postgres.md', () => expectDocumented('docs/backends/postgres.md', { ...QUEUE_DEFAULTS, ...POSTGRES_DEFAULTS }));
  it('docs/backends/redis.md', () => expectDocumented('docs/backends/redis.md', { ...QUEUE_DEFAULTS, ...REDIS_DEFAULTS }));
  it('docs/cli.md: the flags of consume', () => {
    const { count: _count, limit: _limit, ...consume } = FLAGS;
    // A flag that is off unless given (no default) has nothing to hold its row to.
    const defaulted = Object.values(consume).filter((spec) => spec.default !== undefined);
    expectDocumented('docs/cli.md', Object.fromEntries(defaulted.map((spec) => [spec.flag, spec.default])));
  });

  it('the scanner reads a table it is shown (and would notice a wrong default)', () => {
    expect(states('`30000`', 30_000)).toBe(true);
    expect(states('30 000 ms', 30_000)).toBe(true);
    expect(states("URL `?prefix=`, else `'taskmill'`", 'taskmill')).toBe(true);
    expect(states('`2000`', 20_000)).toBe(false);
    expect(states('`true`', false)).toBe(false);
  });
});
