-- ARGV: id → 1 when deleted (it was ready, delayed, parked, or its lease had expired), else 0
-- Revoke takes only what has not started: a live lease means a consumer is
-- running the job, so it is refused. An expired lease counts as waiting (the
-- next read would take it back).

local id = ARGV[1]

-- A parked message leaves PARKED: false when it was not parked.
local function unpark()
  local member = redis.call('HGET', PARKEDON, id)
  if not member then return false end
  redis.call('HDEL', PARKEDON, id)
  redis.call('ZREM', PARKED, member)
  return true
end

local gone = redis.call('ZREM', READY, id) == 1 or redis.call('ZREM', DELAYED, id) == 1 or unpark()
if not gone then
  local deadline = redis.call('ZSCORE', LEASES, id)
  if deadline == false or tonumber(deadline) > now then return 0 end
  redis.call('ZREM', LEASES, id)
  redis.call('HDEL', OWNER, id)
  -- A lapsed holder: its slot frees as it would have when requeued.
  free_slot(id)
end
forget(id)
return 1
