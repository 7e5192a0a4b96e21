-- Runs ahead of every script's own file (scripts.ts joins them): each script
-- gets the same names for its KEYS, the same clock and the same helpers, and
-- no script can drift from the others on what "holds a lease" means.

-- Before Redis 5 a script is replicated verbatim, and may not write after a
-- non-deterministic command such as TIME below; effect replication lifts that
-- (it is the default from Redis 5, where this call changes nothing).
if redis.replicate_commands then redis.replicate_commands() end
-- KEYS arrive in KEY_ROLES order (scripts.ts): these names must follow that list.
local READY, LEASES, MSG, ATTEMPT, OWNER = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local FAILED, FAILINFO, SLOTS, SEQ, WAKE = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local DELAYED, RESULTS, RESEXP, PRIO = KEYS[11], KEYS[12], KEYS[13], KEYS[14]
local UKEYS, UKEYOF, UKUNTIL = KEYS[15], KEYS[16], KEYS[17]
-- The server's clock, not the caller's: consumers with skewed clocks still
-- agree on every lease deadline and runAt.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- At most one token: the wake list is a hint for blocked consumers, not a
-- count, so it must not grow with every write.
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

-- A message's score in READY: its id, less its priority times 2^42. Ids stay
-- below 2^42 and priorities within ±1000, so every score is an integer below
-- 2^53 (exact in a double): a higher priority sorts first, and within one
-- priority the id keeps age order. Formatted with %d: a Lua number passed to
-- redis.call is printed with %.14g, which would round 16-digit scores.
local PRIORITY_STEP = 4398046511104
local function ready_score(id)
  local priority = redis.call('HGET', PRIO, id)
  if not priority then return id end
  return string.format('%d', tonumber(id) - tonumber(priority) * PRIORITY_STEP)
end
local function make_ready(id)
  redis.call('ZADD', READY, ready_score(id), id)
end

-- Back in READY by ready_score, a message regains its place. ATTEMPT is left
-- alone: the delivery whose lease expired counts. limit bounds a read's run
-- time; reclaim passes nil and takes them all.
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
    make_ready(id)
  end
  return #expired
end

-- Ready at once, or delayed until run_at when that is still ahead (by the server clock).
local function enqueue(id, run_at)
  if run_at > now then
    redis.call('ZADD', DELAYED, run_at, id)
    return false
  end
  make_ready(id)
  return true
end

-- %d, not tostring: tostring prints with %.14g, which turns an id of 15 or
-- more digits into exponent notation.
local function append(data, run_at, priority)
  local id = string.format('%d', redis.call('INCR', SEQ))
  redis.call('HSET', MSG, id, data)
  if priority and priority ~= 0 then redis.call('HSET', PRIO, id, priority) end
  return id, enqueue(id, run_at)
end

-- The message is done (acked, failed, removed): the unique key it holds is free.
local function free_key(id)
  local key = redis.call('HGET', UKEYOF, id)
  if not key then return end
  redis.call('HDEL', UKEYOF, id)
  if redis.call('HGET', UKEYS, key) == id then
    redis.call('HDEL', UKEYS, key)
    redis.call('HDEL', UKUNTIL, key)
  end
end

-- A message leaves for good (acked, removed, purged): nothing of it stays.
local function forget(id)
  redis.call('HDEL', MSG, id)
  redis.call('HDEL', ATTEMPT, id)
  redis.call('HDEL', PRIO, id)
  free_key(id)
end
