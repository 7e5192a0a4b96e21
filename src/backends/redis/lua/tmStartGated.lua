-- ARGV: owner, id, rate limit (0: no rate gate), rate window ms, concurrency key, concurrency limit (0: none),
--   delivery token ('' for any of owner's)
--   → 'started' | 'deferred' | 'deferred:<booked ms>' (a rate deferral) | 'lost'
-- KEYS after the queue's: the rate key's log, when there is a rate gate.
-- The whole decision is this one script, so it is atomic across every
-- consumer of the queue (BaseQueue.startGated states the rules).

local owner, id = ARGV[1], ARGV[2]
local rate_limit, per = tonumber(ARGV[3]), tonumber(ARGV[4])
local conc_key, conc_limit = ARGV[5], tonumber(ARGV[6])
local LOG = KEYS[{{KEY_ROLE_COUNT}} + 1]
local rate, conc = rate_limit > 0, conc_limit > 0
if not holds(id, owner, ARGV[7]) then return 'lost' end

-- Its member in PARKED (see the prelude): every ready score lies within
-- ±1001 × 2^42, so shifted by 1000 × 2^42 it is positive, has at most 16
-- digits and stays below 2^53.
local function parked_member()
  local shifted = tonumber(ready_score(id)) + 1000 * PRIORITY_STEP
  return conc_key .. '\0' .. string.format('%0' .. PARKED_SCORE_WIDTH .. 'd', shifted) .. '\0' .. id
end

-- The log expires when its last entry leaves the window, so a key that goes
-- idle leaves nothing behind; RATELOGS keeps the name until then, for flush().
-- (A key used with two windows at once expires by the later call's.)
local function touch_log()
  local last = redis.call('ZRANGE', LOG, -1, -1, 'WITHSCORES')
  if last[2] == nil then
    redis.call('ZREM', RATELOGS, LOG)
    return
  end
  local expires = string.format('%d', tonumber(last[2]) + per)
  redis.call('PEXPIREAT', LOG, expires)
  redis.call('ZADD', RATELOGS, expires, LOG)
end

-- The slots of conc_key held by others. A holder counts while its lease is
-- live; one whose lease lapsed stops counting at once and leaves HOLDERS, but
-- keeps its SLOTOF entry, so that requeueing it (requeue_expired) still wakes
-- a parked message. A holder whose message is gone (acked by an instance that
-- did not start it, so by a plain tmAck) is forgotten altogether. Under the
-- limit even if every entry is live, the count is enough: each holder's lease
-- is only looked at when the answer depends on it.
local function holders()
  local from, to = '[' .. conc_key .. '\0', '(' .. conc_key .. '\1'
  local n = redis.call('ZLEXCOUNT', HOLDERS, from, to)
  if redis.call('ZSCORE', HOLDERS, conc_key .. '\0' .. id) then n = n - 1 end
  if n < conc_limit then return n end
  n = 0
  for _, member in ipairs(redis.call('ZRANGEBYLEX', HOLDERS, from, to)) do
    local holder = string.sub(member, #conc_key + 2)
    local deadline = redis.call('ZSCORE', LEASES, holder)
    if deadline and tonumber(deadline) > now then
      if holder ~= id then n = n + 1 end
    else
      redis.call('ZREM', HOLDERS, member)
      if redis.call('HEXISTS', MSG, holder) == 0 then redis.call('HDEL', SLOTOF, holder) end
    end
  end
  return n
end

local rebooking = false
-- Takings-away come first (see "Full server" in scripts.ts): starts that have
-- left the window, this message's own reservation (it must not count against
-- itself), a few names of logs that have expired, lapsed holders.
if rate then
  redis.call('ZREMRANGEBYSCORE', LOG, '-inf', now - per)
  rebooking = redis.call('ZREM', LOG, 'r:' .. id) == 1
  local stale = redis.call('ZCOUNT', RATELOGS, '-inf', '(' .. now)
  if stale > 0 then redis.call('ZREMRANGEBYRANK', RATELOGS, 0, math.min(stale, 100) - 1) end
end
local held = 0
if conc then
  held = holders()
  if held >= conc_limit then
    -- Parked: out of the queue until a slot of the key frees. It took no rate
    -- start, and its reservation, if any, stays given back.
    give_back(id)
    local member = parked_member()
    redis.call('ZADD', PARKED, 0, member)
    redis.call('HSET', PARKEDON, id, member)
    if rate then touch_log() end
    return 'deferred'
  end
end

if rate then
  if redis.call('ZCOUNT', LOG, '-inf', now) >= rate_limit then
    -- Booked for the time reserveAt (base.ts) gives. A message whose own
    -- booking came due into a full window: the earliest time the due entries
    -- allow. Else behind every other entry (FIFO), and where the window ending
    -- at it holds fewer than the limit. The log is sorted by time, so its
    -- entries by rank are reserveAt's list.
    local at
    if rebooking then
      local kth = redis.call('ZREVRANGEBYSCORE', LOG, now, '-inf', 'WITHSCORES', 'LIMIT', rate_limit - 1, 1)
      at = math.max(now, tonumber(kth[2]) + per)
    else
      local n = redis.call('ZCARD', LOG)
      local last = tonumber(redis.call('ZRANGE', LOG, -1, -1, 'WITHSCORES')[2])
      local kth = tonumber(redis.call('ZRANGE', LOG, n - rate_limit, n - rate_limit, 'WITHSCORES')[2])
      at = math.max(now, last)
      if kth + per > at then at = kth + per end
    end
    at = string.format('%d', at)
    give_back(id)
    redis.call('ZADD', LOG, at, 'r:' .. id)
    -- Delayed like a write with a runAt: promoteDue makes it ready when due.
    redis.call('ZADD', DELAYED, at, id)
    touch_log()
    return 'deferred:' .. at
  end
  redis.call('ZADD', LOG, now, string.format('s:%d', redis.call('INCR', RATESEQ)))
  touch_log()
end

if conc then
  -- Started twice on one lease with another key: the old slot goes first.
  local old = redis.call('HGET', SLOTOF, id)
  if old and old ~= conc_key then free_slot(id) end
  redis.call('HSET', SLOTOF, id, conc_key)
  redis.call('ZADD', HOLDERS, 0, conc_key .. '\0' .. id)
  -- Slots to spare while messages are parked (the limit was raised since
  -- they parked): wake that many now, not at the next holder's end.
  local spare = conc_limit - (held + 1)
  if spare > 0 then wake_parked(conc_key, spare) end
end
return 'started'
