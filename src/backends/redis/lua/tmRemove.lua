-- ARGV: id → 1 when deleted (it was ready, delayed, or its lease had expired), else 0
-- Revoke takes only what has not started: a live lease means a consumer is
-- running the job, so it is refused. An expired lease counts as waiting (the
-- next read would take it back).

local id = ARGV[1]
local gone = redis.call('ZREM', READY, id) == 1 or redis.call('ZREM', DELAYED, id) == 1
if not gone then
  local deadline = redis.call('ZSCORE', LEASES, id)
  if deadline == false or tonumber(deadline) > now then return 0 end
  redis.call('ZREM', LEASES, id)
  redis.call('HDEL', OWNER, id)
end
forget(id)
return 1
