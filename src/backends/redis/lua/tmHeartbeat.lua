-- KEYS after the queue's: consumers, consumerseen, throughput, throughputminutes.
-- ARGV: consumer id, state (JSON text), the oldest minute kept, then { minute, completed, failed } per count → 1
-- The state and the counts land in one script: one write per heartbeat.

local CONSUMERS, SEEN = KEYS[{{KEY_ROLE_COUNT}} + 1], KEYS[{{KEY_ROLE_COUNT}} + 2]
local SETTLED, MINUTES = KEYS[{{KEY_ROLE_COUNT}} + 3], KEYS[{{KEY_ROLE_COUNT}} + 4]
redis.call('HSET', CONSUMERS, ARGV[1], ARGV[2])
redis.call('ZADD', SEEN, now, ARGV[1])
if #ARGV > 3 then
  for i = 4, #ARGV, 3 do
    local minute = ARGV[i]
    redis.call('HINCRBY', SETTLED, minute .. ':c', ARGV[i + 1])
    redis.call('HINCRBY', SETTLED, minute .. ':f', ARGV[i + 2])
    redis.call('ZADD', MINUTES, minute, minute)
  end
  local before = '(' .. ARGV[3]
  local old = redis.call('ZRANGEBYSCORE', MINUTES, '-inf', before)
  for _, minute in ipairs(old) do redis.call('HDEL', SETTLED, minute .. ':c', minute .. ':f') end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', MINUTES, '-inf', before) end
end
return 1
