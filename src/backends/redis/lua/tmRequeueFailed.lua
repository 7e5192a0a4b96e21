-- ARGV: "all" | "ids", id… → how many re-queued (attempt reset to 0)
-- A re-queued message starts over: its old attempts were spent on a failure
-- someone has decided to retry. Ids that are not failed are skipped.

local ids = ARGV
local first = 2
if ARGV[1] == 'all' then ids = redis.call('ZRANGE', FAILED, 0, -1); first = 1 end
local n = 0
for i = first, #ids do
  local id = ids[i]
  if redis.call('ZREM', FAILED, id) == 1 then
    redis.call('HDEL', FAILINFO, id)
    redis.call('HSET', ATTEMPT, id, 0)
    make_ready(id)
    n = n + 1
  end
end
if n > 0 then wake() end
return n
