/**
 * How a queue looks on the Redis server: the key layout of one queue and the
 * Lua scripts that change it. RedisQueue (redis.ts) is the connection
 * handling and the BaseQueue methods on top of this; redis-wire.ts encodes
 * the scripts' arguments and decodes their replies.
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
