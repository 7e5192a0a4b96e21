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
local ids = {}
for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
-- A command per key for the whole batch, not per message (call_many).
local datas = hmget_many(MSG, ids)
local attempts = hmget_many(ATTEMPT, ids)
local leases, owners, counts = {}, {}, {}
for i, id in ipairs(ids) do
  local data = datas[i]
  if data then
    local attempt = (tonumber(attempts[i]) or 0) + 1
    leases[#leases + 1] = deadline
    leases[#leases + 1] = id
    owners[#owners + 1] = id
    owners[#owners + 1] = held_by
    counts[#counts + 1] = id
    counts[#counts + 1] = attempt
    out[#out + 1] = id
    out[#out + 1] = data
    out[#out + 1] = attempt
  else
    -- The message is gone: there is nothing to deliver, so skip the id and
    -- leave nothing of it behind.
    forget(id)
  end
end
call_many('ZADD', LEASES, leases)
call_many('HSET', OWNER, owners)
call_many('HSET', ATTEMPT, counts)
-- Pass the wake-up on: another blocked consumer may take what is left.
if #out > 0 and redis.call('ZCARD', READY) > 0 then wake() end
return out
