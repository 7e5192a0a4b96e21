/**
 * Queue URLs, defaults and redaction. Every URL that may reach a log line,
 * an error message or util.inspect goes through `redactUrl` first.
 */
import { ConfigError } from './errors.js';

export const DEFAULT_QUEUE_URL = 'sqlite:taskmill.sqlite';
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/** The queue URL to use when none is given: $TASKMILL_QUEUE, else the embedded SQLite default. */
export function defaultQueueUrl(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.TASKMILL_QUEUE?.trim();
  return fromEnv ? fromEnv : DEFAULT_QUEUE_URL;
}

// Up to the LAST '@' of the authority, as URL parsers read it: a password with an unencoded '@' (p@ss) is hidden whole.
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;
// A URL-valued parameter (PostgreSQL's `?listenUrl=`), percent-encoded or not: shown decoded, its own password hidden.
const URL_PARAM = /([?&;][^=&;#]+=)([a-z][a-z0-9+.-]*(?::|%3A)(?:\/\/|%2F%2F)[^&;#]*)/gi;
const SECRET_PARAM = /([?&;](?:password|pass|pwd|secret|token|sslpassword)=)[^&;#]*/gi;

/** Replaces a URL's password (userinfo and `password=`-style params) with `***`. Never throws. */
export function redactUrl(url: string): string {
  return String(url)
    .replace(USERINFO, (_m, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      // redis://:secret@host and redis://secret@host (legacy password-only form) both hide the secret.
      if (colon === -1) return `${scheme}${userinfo ? '***' : ''}@`;
      const user = userinfo.slice(0, colon);
      return `${scheme}${user}:***@`;
    })
    .replace(URL_PARAM, (_m, key: string, value: string) => {
      let decoded = value;
      try {
        decoded = decodeURIComponent(value.replace(/\+/g, ' '));
      } catch {
        // shown as given, its password hidden all the same
      }
      return `${key}${redactUrl(decoded)}`;
    })
    .replace(SECRET_PARAM, '$1***');
}

/** Redacts every URL-looking substring of a free text (error messages from drivers). */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = String(text).replace(/[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]+/gi, (m) => redactUrl(m));
  for (const secret of secrets) {
    if (secret && secret.length >= 3) out = out.split(secret).join('***');
  }
  return out;
}

export type QueueUrl =
  { kind: 'memory'; store: string } | { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string } | { kind: 'redis'; url: string; blocking: boolean };

/**
 * A Redis Cluster URL names several seed nodes, `redis://h1:p1,h2:p2/?cluster=true`, which
 * WHATWG URL parsing refuses: `url` is the same URL with the first of them only (for the
 * userinfo, path and query) and `hosts` is every `host[:port]` of the list, in order.
 */
export function firstRedisHost(raw: string): { url: string; hosts: string[] } {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(raw);
  if (!m) return { url: raw, hosts: [] };
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  const at = authority.lastIndexOf('@');
  const hosts = authority.slice(at + 1).split(',');
  return { url: `${scheme}${authority.slice(0, at + 1)}${hosts[0]}${rest}`, hosts };
}

const HOST_PORT_DB = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5}):(\d{1,2})$/;

/** Parses a queue URL (or the seed's `host:port:db`). Errors name the redacted URL and what is wrong. */
export function parseQueueUrl(url: string): QueueUrl {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new ConfigError('queue URL is empty: use memory://NAME, sqlite:PATH, postgres://…, redis://host:port/db or host:port:db');
  }
  const raw = url.trim();
  const seed = HOST_PORT_DB.exec(raw);
  if (seed) return { kind: 'redis', url: `redis://${seed[1]}:${seed[2]}/${seed[3]}`, blocking: false };

  const colon = raw.indexOf(':');
  const scheme = colon > 0 ? raw.slice(0, colon).toLowerCase() : '';
  switch (scheme) {
    case 'memory': {
      const store = raw.slice(colon + 1).replace(/^\/\//, '') || 'default';
      return { kind: 'memory', store };
    }
    case 'sqlite': {
      let path = raw.slice(colon + 1);
      if (path.startsWith('//')) path = path.slice(2);
      if (!path) throw new ConfigError(`queue URL "${redactUrl(raw)}" has no file path: use sqlite:PATH (e.g. sqlite:taskmill.sqlite) or sqlite::memory:`);
      return { kind: 'sqlite', path };
    }
    case 'postgres':
    case 'postgresql':
      return { kind: 'postgres', url: raw };
    case 'redis':
    case 'rediss': {
      let parsed: URL;
      try {
        parsed = new URL(firstRedisHost(raw).url);
      } catch {
        throw new ConfigError(`queue URL "${redactUrl(raw)}" is not a valid redis URL: use redis://host:port/db`);
      }
      const blocking = parsed.searchParams.get('blocking');
      if (blocking !== null && blocking !== 'true' && blocking !== 'false') {
        throw new ConfigError(`queue URL "${redactUrl(raw)}": blocking must be true or false`);
      }
      const cluster = parsed.searchParams.get('cluster');
      if (cluster !== null && cluster !== 'true' && cluster !== 'false') {
        throw new ConfigError(`queue URL "${redactUrl(raw)}": cluster must be true or false`);
      }
      return { kind: 'redis', url: raw, blocking: blocking === 'true' };
    }
    default:
      throw new ConfigError(`unsupported queue URL "${redactUrl(raw)}": use memory://NAME, sqlite:PATH, postgres://…, redis://host:port/db or host:port:db`);
  }
}
