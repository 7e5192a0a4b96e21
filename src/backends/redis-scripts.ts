import type { RedisOptions } from 'ioredis';
import { parseQueueUrl, redactUrl } from '../config.js';
import { ConfigError } from '../errors.js';
import type { FailedMessage, QueueMessage } from './base.js';

/**
 * How a queue looks on the Redis server: the key layout of one queue, the
 * Lua scripts that change it, how arguments and replies are encoded, and how
 * a queue URL becomes connection options. RedisQueue (redis.ts) is the
 * connection handling and the BaseQueue methods on top of this.
 *
 * Every multi-step change is one script, so it is atomic on the server, and
 * every script receives ALL of the queue's keys in KEYS. The keys share one
 * hash tag (`{name}`), so they live in one Cluster slot and the scripts are
 * Cluster-safe. Time is the Redis server's clock (`TIME`), so consumers with
 * skewed clocks agree on lease deadlines; Redis ≥ 5 replicates script
 * effects, which makes the non-deterministic TIME safe to use before writes.
 *
 * Message ids are the values of a per-queue counter (`seq`), and the score of
 * a message in `ready` is its id: "oldest first" is ZPOPMIN, and a message
 * that comes back (released, lease expired, re-queued) goes back to its place
 * in age order. `seq` survives flush() so ids are never reused.
 */

export const KEY_ROLES = [
  'ready', //    zset id → id: waiting messages
  'leases', //   zset id → lease deadline (server ms)
  'msg', //      hash id → data
  'attempt', //  hash id → deliveries so far
  'owner', //    hash id → owner token of the current lease
  'failed', //   zset id → failure order
  'failinfo', // hash id → "<failedAt ms>:<error>"
  'slots', //    zset slot key → claim expiry (server ms)
  'seq', //      string: the id counter (kept by flush)
  'wake', //     list with at most one token: "a message may be ready"
] as const;

export type KeyRole = (typeof KEY_ROLES)[number];

/** The keys of queue `name` under `prefix`, in KEY_ROLES order; all share the hash tag `{name}`. */
export function queueKeys(prefix: string, name: string): string[] {
  return KEY_ROLES.map((role) => `${prefix}:{${name}}:${role}`);
}

export function keyOf(keys: readonly string[], role: KeyRole): string {
  return keys[KEY_ROLES.indexOf(role)]!;
}

/** The keys flush() deletes: everything but the id counter. */
export function flushedKeys(keys: readonly string[]): string[] {
  return keys.filter((_, i) => KEY_ROLES[i] !== 'seq');
}

const PRELUDE = `
if redis.replicate_commands then redis.replicate_commands() end
local READY, LEASES, MSG, ATTEMPT, OWNER = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local FAILED, FAILINFO, SLOTS, SEQ, WAKE = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function wake()
  redis.call('LPUSH', WAKE, '1')
  redis.call('LTRIM', WAKE, 0, 0)
end

-- The fence: id is leased by owner and its deadline has not passed.
local function holds(id, owner)
  if redis.call('HGET', OWNER, id) ~= owner then return false end
  local deadline = redis.call('ZSCORE', LEASES, id)
  return deadline ~= false and tonumber(deadline) > now
end

local function requeue_expired(limit)
  local expired
  if limit then
    expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)
  else
    expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now)
  end
  for _, id in ipairs(expired) do
    redis.call('ZREM', LEASES, id)
    redis.call('HDEL', OWNER, id)
    redis.call('ZADD', READY, id, id)
  end
  return #expired
end

local function append(data)
  local id = string.format('%d', redis.call('INCR', SEQ))
  redis.call('HSET', MSG, id, data)
  redis.call('ZADD', READY, id, id)
  return id
end
`;

/** Expired leases moved back per read; the rest follow on the next reads (bounds a script's run time). */
const REQUEUE_PER_READ = 1000;

const BODIES = {
  /** ARGV: data… → ids */
  tmWrite: `
local ids = {}
for i = 1, #ARGV do ids[i] = append(ARGV[i]) end
if #ids > 0 then wake() end
return ids`,

  /** ARGV: slot key, ttl ms, data → id, or nil when the slot is claimed */
  tmWriteUnique: `
redis.call('ZREMRANGEBYSCORE', SLOTS, '-inf', now)
if redis.call('ZSCORE', SLOTS, ARGV[1]) then return false end
redis.call('ZADD', SLOTS, now + tonumber(ARGV[2]), ARGV[1])
local id = append(ARGV[3])
wake()
return id`,

  /** ARGV: owner, max, lease ms → flat {id, data, attempt, …} */
  tmRead: `
requeue_expired(${REQUEUE_PER_READ})
local max = tonumber(ARGV[2])
local out = {}
if max < 1 then return out end
local deadline = now + tonumber(ARGV[3])
local popped = redis.call('ZPOPMIN', READY, max)
for i = 1, #popped, 2 do
  local id = popped[i]
  local data = redis.call('HGET', MSG, id)
  if data then
    redis.call('ZADD', LEASES, deadline, id)
    redis.call('HSET', OWNER, id, ARGV[1])
    out[#out + 1] = id
    out[#out + 1] = data
    out[#out + 1] = redis.call('HINCRBY', ATTEMPT, id, 1)
  else
    redis.call('HDEL', ATTEMPT, id)
  end
end
-- Pass the wake-up on: another blocked consumer may take what is left.
if #out > 0 and redis.call('ZCARD', READY) > 0 then wake() end
return out`,

  /** ARGV: owner, id… → refused ids */
  tmAck: `
local refused = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  if holds(id, ARGV[1]) then
    redis.call('ZREM', LEASES, id)
    redis.call('HDEL', OWNER, id)
    redis.call('HDEL', MSG, id)
    redis.call('HDEL', ATTEMPT, id)
  else
    refused[#refused + 1] = id
  end
end
return refused`,

  /** ARGV: owner, id… → how many released */
  tmRelease: `
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if holds(id, ARGV[1]) then
    redis.call('ZREM', LEASES, id)
    redis.call('HDEL', OWNER, id)
    if redis.call('HINCRBY', ATTEMPT, id, -1) < 0 then redis.call('HSET', ATTEMPT, id, 0) end
    redis.call('ZADD', READY, id, id)
    n = n + 1
  end
end
if n > 0 then wake() end
return n`,

  /** ARGV: owner, lease ms, id… → refused ids */
  tmExtend: `
local deadline = now + tonumber(ARGV[2])
local refused = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  if holds(id, ARGV[1]) then
    redis.call('ZADD', LEASES, 'XX', deadline, id)
  else
    refused[#refused + 1] = id
  end
end
return refused`,

  /** ARGV: owner, id, error → 1 when moved to the failed store, 0 when refused */
  tmFail: `
local id = ARGV[2]
if not holds(id, ARGV[1]) then return 0 end
redis.call('ZREM', LEASES, id)
redis.call('HDEL', OWNER, id)
-- Ordered by a counter, not by time: failures within one millisecond keep their order.
redis.call('ZADD', FAILED, redis.call('INCR', SEQ), id)
redis.call('HSET', FAILINFO, id, string.format('%d', now) .. ':' .. ARGV[3])
return 1`,

  /** → how many expired leases were made ready */
  tmReclaim: `
local n = requeue_expired(nil)
if n > 0 then wake() end
return n`,

  /** ARGV: limit (≥ 1) → flat {id, data, attempt, "<failedAt>:<error>", …} */
  tmFailed: `
local ids = redis.call('ZRANGE', FAILED, 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', MSG, id) or ''
  out[#out + 1] = tonumber(redis.call('HGET', ATTEMPT, id) or '0')
  out[#out + 1] = redis.call('HGET', FAILINFO, id) or '0:'
end
return out`,

  /** ARGV: "all" | "ids", id… → how many re-queued (attempt reset to 0) */
  tmRequeueFailed: `
local ids = ARGV
local first = 2
if ARGV[1] == 'all' then ids = redis.call('ZRANGE', FAILED, 0, -1); first = 1 end
local n = 0
for i = first, #ids do
  local id = ids[i]
  if redis.call('ZREM', FAILED, id) == 1 then
    redis.call('HDEL', FAILINFO, id)
    redis.call('HSET', ATTEMPT, id, 0)
    redis.call('ZADD', READY, id, id)
    n = n + 1
  end
end
if n > 0 then wake() end
return n`,

  /** ARGV: "all" | "ids", id… → how many deleted */
  tmPurgeFailed: `
local ids = ARGV
local first = 2
if ARGV[1] == 'all' then ids = redis.call('ZRANGE', FAILED, 0, -1); first = 1 end
local n = 0
for i = first, #ids do
  local id = ids[i]
  if redis.call('ZREM', FAILED, id) == 1 then
    redis.call('HDEL', FAILINFO, id)
    redis.call('HDEL', MSG, id)
    redis.call('HDEL', ATTEMPT, id)
    n = n + 1
  end
end
return n`,

  /** → {ready, leased, failed} */
  tmStats: `
return { redis.call('ZCARD', READY), redis.call('ZCARD', LEASES), redis.call('ZCARD', FAILED) }`,
} as const;

export type ScriptName = keyof typeof BODIES;

/** Script name → full Lua source, for ioredis `defineCommand` (EVALSHA, EVAL on NOSCRIPT). */
export const SCRIPTS: Record<ScriptName, string> = Object.fromEntries(
  Object.entries(BODIES).map(([name, body]) => [name, `${PRELUDE}\n${body}\n`]),
) as Record<ScriptName, string>;

export const SCRIPT_KEY_COUNT = KEY_ROLES.length;

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

function encodedLength(value: string | Buffer): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

// ── arguments and replies ─────────────────────────────────────────────────

export type Arg = string | Buffer | number;

/** Messages (and bytes) per write script call: keeps each request and each script run small. */
const WRITE_CHUNK_COUNT = 1000;
const WRITE_CHUNK_BYTES = 8 * 1024 * 1024;

/** Cuts encoded payloads into the argument lists of successive tmWrite calls. */
export function writeChunks(encoded: readonly (string | Buffer)[]): Arg[][] {
  const chunks: Arg[][] = [];
  let chunk: Arg[] = [];
  let bytes = 0;
  for (const value of encoded) {
    const size = encodedLength(value);
    if (chunk.length > 0 && (chunk.length >= WRITE_CHUNK_COUNT || bytes + size > WRITE_CHUNK_BYTES)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(value);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

export function replyText(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/** tmRead's flat {id, data, attempt, …} (as Buffers) → messages. */
export function decodeMessages(flat: readonly unknown[]): QueueMessage[] {
  const out: QueueMessage[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) {
    out.push({ id: replyText(flat[i]), data: decodeText(flat[i + 1] as Buffer), attempt: Number(flat[i + 2]) });
  }
  return out;
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
  options: RedisOptions;
  /** The URL with its password replaced by ***. */
  shown: string;
  /** Strings to scrub from any driver text. */
  secrets: string[];
  /** `?prefix=` (options.prefix wins). */
  prefix: string | undefined;
}

/** Turns `redis://[user][:password@]host[:port][/db][?prefix=…]` (or rediss://, or `host:port:db`) into ioredis options. */
export function redisTarget(url: string): RedisTarget {
  const parsed = parseQueueUrl(url);
  if (parsed.kind !== 'redis') {
    throw new ConfigError(`queue URL "${redactUrl(url)}" is not a Redis URL: use redis://host:port/db, rediss://… or host:port:db`);
  }
  const shown = redactUrl(parsed.url);
  const u = new URL(parsed.url);
  const unknown = [...u.searchParams.keys()].filter((key) => key !== 'blocking' && key !== 'prefix');
  if (unknown.length > 0) {
    throw new ConfigError(`queue URL "${shown}": unsupported parameter(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: blocking, prefix)`);
  }
  const prefix = u.searchParams.get('prefix') ?? undefined;
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = u.port === '' ? 6379 : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`queue URL "${shown}": invalid port`);
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
  return { options, shown, secrets, prefix };
}
