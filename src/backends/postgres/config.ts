/**
 * Connection settings of the PostgreSQL backend: the options and their
 * defaults, the URL (taskmill's own `?schema=`, `?listen=`, `?pooler=` and
 * `?listenUrl=` split off, the rest passed to `pg` unchanged) and the
 * redaction of driver errors.
 *
 * `pooler: 'transaction'` says the URL reaches PostgreSQL through a
 * transaction-mode pooler (PgBouncer `pool_mode = transaction`): every
 * statement may run on another server session, so the backend keeps no
 * session state, sends no named prepared statement (unless
 * `preparedStatements: true` says the pooler keeps them), and LISTENs only on
 * `listenUrl` (a direct or session-mode URL), else polls.
 *
 * Errors from the driver become QueueConnectionError with every URL and the
 * password redacted: the password is collected in every form the URL or the
 * environment may hold it, since a driver message may quote any of them.
 */
import type pg from 'pg';
import { z } from 'zod';
import { redactText, redactUrl } from '../../shared/config.js';
import { ConfigError, QueueConnectionError, TaskmillError } from '../../shared/errors.js';
import { boolean, choice, integer, matching, parseOptions, positiveMillis, type DeclaresEvery } from '../../shared/options.js';
import type { QueueOptions } from '../base.js';
import { isPermanentPostgresError } from '../permanent-errors.js';
import { DEFAULT_SCHEMA, schemaNameField } from './schema.js';

export interface PostgresQueueOptions extends QueueOptions {
  /** Schema holding taskmill's tables. Default `'taskmill'` (or `?schema=` in the URL). */
  schema?: string;
  /**
   * LISTEN/NOTIFY wake-ups (or `?listen=` in the URL); false = polling only. Default true, except
   * behind `pooler: 'transaction'` without a `listenUrl`, where it is false (and true is refused).
   */
  listen?: boolean;
  /**
   * `'transaction'`: the URL goes through a transaction-mode pooler (PgBouncer `pool_mode = transaction`),
   * so no session state and no named prepared statements, and LISTEN only on `listenUrl`. Default `'none'`
   * (or `?pooler=` in the URL).
   */
  pooler?: PoolerMode;
  /**
   * A URL to LISTEN on instead of the queue's own: direct to PostgreSQL or through a session-mode pooler,
   * for wake-ups behind a transaction-mode pooler (or `?listenUrl=`, percent-encoded, in the URL).
   */
  listenUrl?: string;
  /** Longest `waitForMessages` waits without a notification. Default 2000 ms. */
  pollIntervalMs?: number;
  /** Pool connections (the LISTEN client is one more). Default 4. */
  poolSize?: number;
  /** How long acquiring a connection may take before the call fails. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * A query without its reply after this long fails and its connection is replaced (a silent
   * server or network path); also the LISTEN connection's ping deadline. Default 5000 ms; keep
   * it under a third of the lease. Schema migrations get longer (MIGRATION_QUERY_TIMEOUT_MS).
   */
  queryTimeoutMs?: number;
  /**
   * Named prepared statements for the hot queries (claim, ack, write, extend, fail, retry, results):
   * parsed and planned once per connection. Default true, except behind `pooler: 'transaction'`,
   * where a named statement would land on another server connection (PgBouncer before 1.21, or
   * without `max_prepared_statements`); there it is false unless set.
   */
  preparedStatements?: boolean;
}

/** How the URL reaches PostgreSQL: directly (or through a session-mode pooler), or through a transaction-mode pooler. */
export const POOLER_MODES = ['none', 'transaction'] as const;
export type PoolerMode = (typeof POOLER_MODES)[number];

/** PostgresQueue's own options (the shared ones are BaseQueue's). @internal */
export const POSTGRES_DEFAULTS = {
  schema: DEFAULT_SCHEMA,
  listen: true,
  pooler: 'none',
  pollIntervalMs: 2000,
  poolSize: 4,
  connectTimeoutMs: 5000,
  queryTimeoutMs: 5000,
} as const;

const POSTGRES_URL_PATTERN = /^\s*postgres(ql)?:\/\//i;

/** The options win over the URL's own parameters, which are parsed with them. */
const postgresOptionsSchema = z.object({
  schema: schemaNameField.default(POSTGRES_DEFAULTS.schema),
  // No default: behind a transaction pooler it depends on listenUrl.
  listen: boolean().optional(),
  pooler: choice(POOLER_MODES).default(POSTGRES_DEFAULTS.pooler),
  listenUrl: matching(POSTGRES_URL_PATTERN, 'must be a postgres:// URL').optional(),
  pollIntervalMs: positiveMillis().default(POSTGRES_DEFAULTS.pollIntervalMs),
  poolSize: integer(1).default(POSTGRES_DEFAULTS.poolSize),
  connectTimeoutMs: positiveMillis().default(POSTGRES_DEFAULTS.connectTimeoutMs),
  queryTimeoutMs: positiveMillis().default(POSTGRES_DEFAULTS.queryTimeoutMs),
  // No default: it depends on the pooler.
  preparedStatements: boolean().optional(),
});
const _declared: DeclaresEvery<z.input<typeof postgresOptionsSchema>, Omit<PostgresQueueOptions, keyof QueueOptions>> = true;

/** URL query parameters that configure taskmill and are not passed on to `pg`. */
const OWN_URL_PARAMS = ['schema', 'listen', 'pooler', 'listenUrl'] as const;

/** Splits taskmill's own parameters off the URL; the rest goes to `pg` unchanged. */
function splitUrl(url: string): { pgUrl: string; own: Map<string, string> } {
  const own = new Map<string, string>();
  const q = url.indexOf('?');
  if (q === -1) return { pgUrl: url, own };
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash === -1 ? undefined : hash);
  const kept = query.split('&').filter((pair) => {
    const eq = pair.indexOf('=');
    const key = decodeURIComponent(eq === -1 ? pair : pair.slice(0, eq));
    if (!(OWN_URL_PARAMS as readonly string[]).includes(key)) return true;
    own.set(key, decodeURIComponent(eq === -1 ? '' : pair.slice(eq + 1).replace(/\+/g, ' ')));
    return false;
  });
  return { pgUrl: url.slice(0, q) + (kept.length > 0 ? `?${kept.join('&')}` : ''), own };
}

/** Every form the password may take in the URL or environment, for redacting driver messages. */
function passwordsIn(url: string): string[] {
  const found: string[] = [];
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(url)?.[1]; // to the last '@', as pg reads it
  const colon = userinfo?.indexOf(':') ?? -1;
  if (userinfo && colon !== -1) found.push(userinfo.slice(colon + 1));
  for (const match of url.matchAll(/[?&]password=([^&#]*)/gi)) found.push(match[1]!);
  if (process.env.PGPASSWORD) found.push(process.env.PGPASSWORD);
  const decoded = found.map((p) => {
    try {
      return decodeURIComponent(p.replace(/\+/g, ' '));
    } catch {
      return p;
    }
  });
  return [...new Set([...found, ...decoded])].filter((p) => p.length > 0);
}

/** What a DatabaseQueue is built from, validated. @internal (its driver types stay out of the shipped .d.ts) */
export interface ConnectionSettings {
  /** The connection URL with its password replaced by `***`. */
  redactedUrl: string;
  /** The password in every form, for redactError. */
  secrets: string[];
  schema: string;
  listen: boolean;
  pooler: PoolerMode;
  /** `listenUrl` with its password replaced by `***`, when one is given. */
  redactedListenUrl: string | undefined;
  pollIntervalMs: number;
  poolSize: number;
  queryTimeoutMs: number;
  preparedStatements: boolean;
  /** For the pool. */
  clientConfig: pg.ClientConfig;
  /** For the LISTEN client: clientConfig, or the same settings on `listenUrl`. */
  listenClientConfig: pg.ClientConfig;
}

/** The password of a URL in every form it may appear in, also percent-encoded once more (inside `?listenUrl=`). */
function nestedPasswordsIn(url: string): string[] {
  const found = passwordsIn(url);
  // A value refused for lacking the scheme (`user:pw@host/db`) is still quoted in the refusal.
  const userinfo = /^([^/?#]*)@/.exec(url)?.[1];
  if (found.length === 0 && userinfo?.includes(':')) found.push(userinfo.slice(userinfo.indexOf(':') + 1));
  const decoded = found.map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return [...new Set([...found, ...decoded, ...found.map(encodeURIComponent)])].filter((p) => p.length > 0);
}

/** Validates the URL and options (throwing ConfigError) in the order the constructor always did. @internal */
export function connectionSettings(connectionString: string, options: PostgresQueueOptions, entryPoint = 'PostgresQueue'): ConnectionSettings {
  if (typeof connectionString !== 'string' || !/^postgres(ql)?:\/\//i.test(connectionString.trim())) {
    const shown = typeof connectionString === 'string' ? redactUrl(connectionString) : String(connectionString);
    throw new ConfigError(`invalid PostgreSQL URL "${shown}": use postgres://user:password@host:port/database`);
  }
  const url = connectionString.trim();
  const { pgUrl, own } = splitUrl(url);
  const givenListenUrl = options.listenUrl ?? own.get('listenUrl');
  // Before anything can throw: a listenUrl's password may sit (encoded) in the queue URL, and in a refused value.
  const secrets = [...new Set([...passwordsIn(url), ...(typeof givenListenUrl === 'string' ? nestedPasswordsIn(givenListenUrl) : [])])];
  const redactedUrl = redactText(redactUrl(url), secrets);

  const listenParam = own.get('listen');
  const parsed = (() => {
    try {
      return parseOptions(
        postgresOptionsSchema,
        {
          ...options,
          schema: options.schema ?? own.get('schema'),
          // 'true' and 'false' only; anything else is refused naming it.
          listen: options.listen ?? (listenParam === 'true' ? true : listenParam === 'false' ? false : listenParam),
          pooler: options.pooler ?? own.get('pooler'),
          listenUrl: givenListenUrl,
        },
        entryPoint,
      );
    } catch (error) {
      const redacted = error instanceof ConfigError ? redactText(error.message, secrets) : undefined;
      throw redacted === undefined || redacted === (error as Error).message ? error : new ConfigError(redacted);
    }
  })();
  const { schema, pooler, pollIntervalMs, poolSize, connectTimeoutMs, queryTimeoutMs } = parsed;
  const preparedStatements = parsed.preparedStatements ?? pooler !== 'transaction';
  const listenUrl = parsed.listenUrl?.trim();
  const behindTransactionPooler = pooler === 'transaction' && listenUrl === undefined;
  if (parsed.listen === true && behindTransactionPooler) {
    throw new ConfigError(
      `${entryPoint}: listen: true needs a session of its own, which pooler "transaction" does not give: ` +
        'add listenUrl (a direct or session-mode URL to LISTEN on), or leave listen off to poll',
    );
  }
  const listen = parsed.listen ?? !behindTransactionPooler;

  const connection = (connectionString: string): pg.ClientConfig => ({
    connectionString,
    connectionTimeoutMillis: connectTimeoutMs,
    // pg's client-side deadline (statement_timeout is the server's, and a silent path never delivers it).
    query_timeout: Math.ceil(queryTimeoutMs),
    // A backstop for idle connections; the deadlines catch busy ones, and the LISTEN connection pings.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'taskmill',
  });
  const clientConfig = connection(pgUrl);
  let listenClientConfig = clientConfig;
  let redactedListenUrl: string | undefined;
  if (listenUrl !== undefined) {
    redactedListenUrl = redactText(redactUrl(listenUrl), secrets);
    const listenSplit = splitUrl(listenUrl);
    if (listenSplit.own.size > 0) {
      const names = [...listenSplit.own.keys()].join(', ');
      throw new ConfigError(`${entryPoint}: listenUrl "${redactedListenUrl}" has taskmill's own parameters (${names}): they belong on the queue URL`);
    }
    listenClientConfig = connection(listenSplit.pgUrl);
  }
  return {
    redactedUrl,
    secrets,
    schema,
    listen,
    pooler,
    redactedListenUrl,
    pollIntervalMs,
    poolSize,
    preparedStatements,
    queryTimeoutMs: Math.ceil(queryTimeoutMs),
    clientConfig,
    listenClientConfig,
  };
}

/** A driver error's message with every URL and the password redacted. */
export function redactError(error: unknown, secrets: readonly string[]): string {
  const message = error instanceof Error ? error.message || error.name : String(error);
  return redactText(message, secrets);
}

/**
 * Driver errors become QueueConnectionError with the server's reason in the
 * message, redacted. No `cause`: the driver's object carries the connection
 * config, and a copy would only repeat the reason in every log line.
 */
export function wrapDriverError(what: string, error: unknown, secrets: readonly string[], redactedUrl: string): Error {
  if (error instanceof TaskmillError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  return new QueueConnectionError(`PostgreSQL ${what} failed (${redactedUrl}): ${redactError(error, secrets)}`, {
    permanent: isPermanentPostgresError(error),
    ...(typeof code === 'string' ? { driverCode: code } : {}),
  });
}

/** The seed's name for PostgresQueueOptions. */
export type DatabaseQueueOptions = PostgresQueueOptions;
