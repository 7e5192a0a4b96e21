-- ARGV: "all" | "ids", id… → how many deleted
-- Only ids in the failed store are deleted: an id that was re-queued or is
-- running meanwhile is left alone.

local ids = ARGV
local first = 2
if ARGV[1] == 'all' then ids = redis.call('ZRANGE', FAILED, 0, -1); first = 1 end
local n = 0
for i = first, #ids do
  local id = ids[i]
  if redis.call('ZREM', FAILED, id) == 1 then
    redis.call('HDEL', FAILINFO, id)
    forget(id)
    n = n + 1
  end
end
return n
