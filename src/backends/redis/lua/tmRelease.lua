-- ARGV: owner, id… → how many released
-- A release gives back a message that was read but never started, so its
-- delivery does not count: attempt is taken back down, never below 0.

local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if holds(id, ARGV[1]) then
    redis.call('ZREM', LEASES, id)
    redis.call('HDEL', OWNER, id)
    if redis.call('HINCRBY', ATTEMPT, id, -1) < 0 then redis.call('HSET', ATTEMPT, id, 0) end
    make_ready(id)
    n = n + 1
  end
end
if n > 0 then wake() end
return n
