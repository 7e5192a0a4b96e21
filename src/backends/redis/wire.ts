import type { RedisOptions } from 'ioredis';
import { firstRedisHost, parseQueueUrl, redactUrl } from '../../shared/config.js';
import { ConfigError } from '../../shared/errors.js';
import { checkResultList, checkResultRecord, type BaseQueue, type FailedMessage, type QueueMessage, type ResultRecord } from '../base.js';

/**
 * The Redis wire format: how arguments and replies of the scripts
 * (redis-scripts.ts) are encoded, checked and decoded, and how a queue URL
 * becomes connection options.
 */

// ── text that survives the round trip ─────────────────────────────────────
// Redis stores bytes. A JS string with a lone surrogate has no UTF-8 form, so
// such a string is stored as a 0xFF byte (never valid in UTF-8, so no
// well-formed string's encoding starts with it) followed by its UTF-16LE code
// units. Well-formed strings (every real envelope) are plain UTF-8.

const ILL_FORMED_MARK = 0xff;

export function encodeText(text: string): string | Buffer {
  if ((text as unknown as { isWellFormed(): boolean }).isWellFormed()) return text;
  const units = Buffer.from(text, 'utf16le');
  const out = Buffer.allocUnsafe(units.length + 1);
  out[0] = ILL_FORMED_MARK;
  units.copy(out, 1);
  return out;
}

export function decodeText(bytes: Buffer): string {
  return bytes[0] === ILL_FORMED_MARK ? bytes.toString('utf16le', 1) : bytes.toString('utf8');
}

function encodedLength(value: Arg): number {
  if (typeof value === 'number') return 24;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

// ── arguments and replies ─────────────────────────────────────────────────

export type Arg = string | Buffer | number;

/** Items (messages, result records) and bytes per script call: keeps each request and each script run small. */
const CHUNK_ITEMS = 1000;
const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Cuts items — each the arguments of one message or record, kept together —
 * into the argument lists of successive script calls, in order.
 */
export function argChunks(items: readonly (readonly Arg[])[]): Arg[][] {
  const chunks: Arg[][] = [];
  let chunk: Arg[] = [];
  let count = 0;
  let bytes = 0;
  for (const item of items) {
    const size = item.reduce<number>((sum, value) => sum + encodedLength(value), 0);
    if (count > 0 && (count >= CHUNK_ITEMS || bytes + size > CHUNK_BYTES)) {
      chunks.push(chunk);
      chunk = [];
      count = 0;
      bytes = 0;
    }
    chunk.push(...item);
    count++;
    bytes += size;
  }
  if (count > 0) chunks.push(chunk);
  return chunks;
}

export function replyText(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/** tmRead's flat {id, data, attempt, …} (as Buffers) → messages of delivery `delivery`. */
export function decodeMessages(flat: readonly unknown[], delivery: number): QueueMessage[] {
  const out: QueueMessage[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) {
    out.push({ id: replyText(flat[i]), data: decodeText(flat[i + 1] as Buffer), attempt: Number(flat[i + 2]), delivery });
  }
  return out;
}

/**
 * The fenced scripts' id arguments: id, delivery token ('' for any lease of the owner), … .
 * A token that is no safe integer matches no lease.
 */
export function leaseArgs(ids: readonly string[], deliveries: readonly number[] | undefined): Arg[] {
  const args: Arg[] = new Array<Arg>(ids.length * 2);
  for (let i = 0; i < ids.length; i++) {
    args[2 * i] = ids[i]!;
    args[2 * i + 1] = tokenArg(deliveries === undefined ? undefined : deliveries[i]);
  }
  return args;
}

/** One delivery token as a script argument: '' for none; 'x' (no lease's) for one that is no safe integer. */
export function tokenArg(delivery: number | undefined): Arg {
  if (delivery === undefined) return '';
  return Number.isSafeInteger(delivery) ? delivery : 'x';
}

/** tmFailed's flat {id, data, attempt, "<failedAt>:<error>", …} (as Buffers) → failed messages. */
export function decodeFailed(flat: readonly unknown[]): FailedMessage[] {
  const out: FailedMessage[] = [];
  for (let i = 0; i + 3 < flat.length; i += 4) {
    const info = flat[i + 3] as Buffer;
    const colon = info.indexOf(0x3a);
    out.push({
      id: replyText(flat[i]),
      data: decodeText(flat[i + 1] as Buffer),
      attempt: Number(flat[i + 2]),
      error: decodeText(info.subarray(colon + 1)),
      failedAt: new Date(Number(info.subarray(0, colon).toString('latin1'))),
    });
  }
  return out;
}

export function checkData(data: unknown): string {
  if (typeof data !== 'string') throw new ConfigError(`message data must be a string, got ${typeof data}`);
  return data;
}

/**
 * Result records as tmSetResults arguments: {job id, ttl ms, record, message id, delivery token}
 * each; message id '' (unfenced) unless `deliveries` and `messageIds` fence the records.
 */
export function resultArgs(records: readonly ResultRecord[], queue: BaseQueue, messageIds?: readonly string[], deliveries?: readonly number[]): Arg[][] {
  checkResultList(records, queue);
  const fenced = messageIds !== undefined && deliveries !== undefined;
  return records.map((entry: ResultRecord, i) => {
    const { jobId, record, ttlMs } = checkResultRecord(entry, i, queue);
    // A fenced record whose message id is no string is held by no lease: 'x' matches none.
    const messageId = !fenced ? '' : typeof messageIds[i] === 'string' && messageIds[i] !== '' ? messageIds[i] : 'x';
    return [encodeText(jobId), Math.ceil(ttlMs), encodeText(record), messageId, fenced ? tokenArg(deliveries[i]) : ''];
  });
}

export function checkCount(what: string, n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`invalid ${what} ${String(n)}: must be an integer >= 0`);
  return n;
}

export function checkIds(ids: readonly string[]): string[] {
  if (!Array.isArray(ids)) throw new ConfigError('ids must be an array of message id strings');
  for (const id of ids) if (typeof id !== 'string') throw new ConfigError(`message ids must be strings, got ${typeof id}`);
  return ids as string[];
}

// ── URL → connection options ──────────────────────────────────────────────

export interface RedisTarget {
  /** Connection options of one node (host and port: the first seed of a cluster). */
  options: RedisOptions;
  /** `?cluster=true`: a Redis Cluster, reached through `nodes` (options.cluster wins). */
  cluster: boolean | undefined;
  /** Every `host:port` of the URL, in order: the seeds of a cluster. */
  nodes: { host: string; port: number }[];
  /** The URL with its password replaced by ***. */
  shown: string;
  /** Strings to scrub from any driver text. */
  secrets: string[];
  /** `?prefix=` (options.prefix wins). */
  prefix: string | undefined;
}

const KNOWN_PARAMS = ['blocking', 'cluster', 'prefix'];

/** One `host[:port]` of a URL's host list (only a lone one may be empty: 127.0.0.1); `shown` names the URL in errors. */
function hostPort(text: string, hostsCount: number, shown: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]*)(?::(\d*))?$/.exec(text);
  const port = m?.[2] === undefined || m[2] === '' ? 6379 : Number(m[2]);
  if (!m || (hostsCount > 1 && text === '') || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(`queue URL "${shown}": invalid host:port "${text}" (each node is host:port, e.g. redis://10.0.0.1:7000,10.0.0.2:7000/?cluster=true)`);
  }
  return { host: m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1', port };
}

/**
 * Turns `redis://[user][:password@]host[:port][,host[:port]…][/db][?prefix=…&cluster=true]`
 * (or rediss://, or `host:port:db`) into ioredis options.
 */
export function redisTarget(url: string): RedisTarget {
  const parsed = parseQueueUrl(url);
  if (parsed.kind !== 'redis') {
    throw new ConfigError(`queue URL "${redactUrl(url)}" is not a Redis URL: use redis://host:port/db, rediss://… or host:port:db`);
  }
  const shown = redactUrl(parsed.url);
  const { url: first, hosts } = firstRedisHost(parsed.url);
  const u = new URL(first);
  const unknown = [...u.searchParams.keys()].filter((key) => !KNOWN_PARAMS.includes(key));
  if (unknown.length > 0) {
    throw new ConfigError(
      `queue URL "${shown}": unsupported parameter(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${KNOWN_PARAMS.join(', ')})`,
    );
  }
  const prefix = u.searchParams.get('prefix') ?? undefined;
  const clusterParam = u.searchParams.get('cluster');
  const cluster = clusterParam === null ? undefined : clusterParam === 'true';
  const nodes = hosts.map((text) => hostPort(text, hosts.length, shown));
  const { host, port } = nodes[0]!;
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d{1,5}$/.test(dbText)) {
    throw new ConfigError(`queue URL "${shown}": the path must be a database number (redis://host:port/0)`);
  }
  const options: RedisOptions = { host, port, db: dbText === '' ? 0 : Number(dbText) };
  const username = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  // redis://secret@host (no colon) is the legacy password-only form.
  if (password) {
    options.password = password;
    if (username) options.username = username;
  } else if (username) {
    options.password = username;
  }
  if (u.protocol === 'rediss:') options.tls = {};
  const secrets = [password, u.password, password ? '' : username, password ? '' : u.username].filter((s) => s.length > 0);
  return { options, cluster, nodes, shown, secrets, prefix };
}

/**
 * Whether `target` is a cluster once the options have spoken (`cluster` wins over the URL's
 * `?cluster=`); a URL with several nodes must be one, and a cluster has database 0 only.
 */
export function checkClusterTarget(target: RedisTarget, cluster: boolean | undefined): boolean {
  const on = cluster ?? target.cluster ?? false;
  if (!on && target.nodes.length > 1) {
    throw new ConfigError(
      `queue URL "${target.shown}" names ${target.nodes.length} nodes: add ?cluster=true for a Redis Cluster (several nodes are only for a cluster)`,
    );
  }
  if (on && target.options.db !== 0) {
    throw new ConfigError(`queue URL "${target.shown}": a Redis Cluster has database 0 only (use redis://host:port/?cluster=true or …/0?cluster=true)`);
  }
  return on;
}
