-- ARGV: owner, max, lease ms, delivery token → flat {id, data, attempt, …}
-- Leasing, not popping: a reply lost with the connection loses no message,
-- it comes back when its lease expires.

-- Expired leases go back first, so they are read in age order with the rest;
-- a bounded number per read, so that one read never holds the server long.
-- The limit is a placeholder that scripts.ts fills in (REQUEUE_PER_READ).
requeue_expired({{REQUEUE_PER_READ}})
local max = tonumber(ARGV[2])
local out = {}
if max < 1 then return out end
local deadline = now + tonumber(ARGV[3])
local held_by = ARGV[4] .. ':' .. ARGV[1]
local popped = redis.call('ZPOPMIN', READY, max)
for i = 1, #popped, 2 do
  local id = popped[i]
  local data = redis.call('HGET', MSG, id)
  if data then
    redis.call('ZADD', LEASES, deadline, id)
    redis.call('HSET', OWNER, id, held_by)
    out[#out + 1] = id
    out[#out + 1] = data
    out[#out + 1] = redis.call('HINCRBY', ATTEMPT, id, 1)
  else
    -- The message is gone: there is nothing to deliver, so skip the id and
    -- leave nothing of it behind.
    forget(id)
  end
end
-- Pass the wake-up on: another blocked consumer may take what is left.
if #out > 0 and redis.call('ZCARD', READY) > 0 then wake() end
return out
