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
 *
 * A delayed message (written or retried with a future runAt) waits in
 * `delayed`, scored by its runAt, and only promoteDue makes it ready — reads
 * never look at `delayed`, so a read stays one ZPOPMIN however many delayed
 * messages there are. Result records live in `results`, each with its expiry
 * in `resexp`; expired ones are ignored on read and purged a bounded number
 * at a time by later setResults calls.
 *
 * Full server (maxmemory, noeviction): Redis refuses a script's first
 * memory-growing command only while the script has changed nothing yet. So
 * scripts that take something away (a lease, a delayed entry) do that first:
 * once they have begun they run to the end, and they are never cut in half.
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
  'delayed', //  zset id → runAt (server ms): not ready before then
  'results', //  hash job id → result record
  'resexp', //   zset job id → result expiry (server ms)
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
local DELAYED, RESULTS, RESEXP = KEYS[11], KEYS[12], KEYS[13]
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

-- Ready at once, or delayed until run_at when that is still ahead (by the server clock).
local function enqueue(id, run_at)
  if run_at > now then
    redis.call('ZADD', DELAYED, run_at, id)
    return false
  end
  redis.call('ZADD', READY, id, id)
  return true
end

local function append(data, run_at)
  local id = string.format('%d', redis.call('INCR', SEQ))
  redis.call('HSET', MSG, id, data)
  return id, enqueue(id, run_at)
end
`;

/** Expired leases moved back per read; the rest follow on the next reads (bounds a script's run time). */
const REQUEUE_PER_READ = 1000;

const BODIES = {
  /** ARGV: runAt (ms, 0 = now), data… → ids */
  tmWrite: `
local run_at = tonumber(ARGV[1])
local ids = {}
local any_ready = false
for i = 2, #ARGV do
  local id, ready = append(ARGV[i], run_at)
  ids[#ids + 1] = id
  any_ready = any_ready or ready
end
if any_ready then wake() end
return ids`,

  /** ARGV: slot key, ttl ms, data → id, or nil when the slot is claimed */
  tmWriteUnique: `
redis.call('ZREMRANGEBYSCORE', SLOTS, '-inf', now)
if redis.call('ZSCORE', SLOTS, ARGV[1]) then return false end
redis.call('ZADD', SLOTS, now + tonumber(ARGV[2]), ARGV[1])
local id = append(ARGV[3], 0)
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

  /** → {ready, leased, failed, delayed} */
  tmStats: `
return { redis.call('ZCARD', READY), redis.call('ZCARD', LEASES), redis.call('ZCARD', FAILED), redis.call('ZCARD', DELAYED) }`,

  /** ARGV: owner, id, runAt, data → 1 when re-queued (ready or delayed) with attempt 0, 0 when refused */
  tmRetry: `
local id = ARGV[2]
if not holds(id, ARGV[1]) then return 0 end
redis.call('ZREM', LEASES, id)
redis.call('HDEL', OWNER, id)
redis.call('HDEL', ATTEMPT, id)
redis.call('HSET', MSG, id, ARGV[4])
if enqueue(id, tonumber(ARGV[3])) then wake() end
return 1`,

  /** ARGV: max → how many due delayed messages were made ready (≤ max; the caller repeats while = max) */
  tmPromote: `
local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(due) do
  redis.call('ZREM', DELAYED, id)
  redis.call('ZADD', READY, id, id)
end
if #due > 0 then wake() end
return #due`,

  /** ARGV: id → 1 when deleted (it was ready, delayed, or its lease had expired), else 0 */
  tmRemove: `
local id = ARGV[1]
local gone = redis.call('ZREM', READY, id) == 1 or redis.call('ZREM', DELAYED, id) == 1
if not gone then
  local deadline = redis.call('ZSCORE', LEASES, id)
  if deadline == false or tonumber(deadline) > now then return 0 end
  redis.call('ZREM', LEASES, id)
  redis.call('HDEL', OWNER, id)
end
redis.call('HDEL', MSG, id)
redis.call('HDEL', ATTEMPT, id)
return 1`,

  /** ARGV: purge limit, then {job id, ttl ms, record}… → how many expired records were purged */
  tmSetResults: `
local expired = redis.call('ZRANGEBYSCORE', RESEXP, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, job in ipairs(expired) do
  redis.call('ZREM', RESEXP, job)
  redis.call('HDEL', RESULTS, job)
end
for i = 2, #ARGV, 3 do
  redis.call('HSET', RESULTS, ARGV[i], ARGV[i + 2])
  redis.call('ZADD', RESEXP, now + tonumber(ARGV[i + 1]), ARGV[i])
end
return #expired`,

  /** ARGV: job id → the record, or nil when there is none or it expired */
  tmGetResult: `
local expires = redis.call('ZSCORE', RESEXP, ARGV[1])
if expires == false or tonumber(expires) <= now then return false end
return redis.call('HGET', RESULTS, ARGV[1])`,
} as const;

export type ScriptName = keyof typeof BODIES;

/** Script name → full Lua source, for ioredis `defineCommand` (EVALSHA, EVAL on NOSCRIPT). */
export const SCRIPTS: Record<ScriptName, string> = Object.fromEntries(Object.entries(BODIES).map(([name, body]) => [name, `${PRELUDE}\n${body}\n`])) as Record<
  ScriptName,
  string
>;

export const SCRIPT_KEY_COUNT = KEY_ROLES.length;

/** Due messages one promoteDue script call moves (bounds its run time); promoteDue calls again while a call fills it. */
export const PROMOTE_PER_CALL = 1000;

/** Expired result records each setResults call purges (well above what one call adds, so the store shrinks). */
export const RESULTS_PURGED_PER_SET = 200;
