-- KEYS after the queue's: throughput, throughputminutes. ARGV: the oldest minute shown → { minute, completed, failed, … }, oldest first

local SETTLED, MINUTES = KEYS[{{KEY_ROLE_COUNT}} + 1], KEYS[{{KEY_ROLE_COUNT}} + 2]
local reply = {}
for _, minute in ipairs(redis.call('ZRANGEBYSCORE', MINUTES, ARGV[1], '+inf')) do
  reply[#reply + 1] = minute
  reply[#reply + 1] = redis.call('HGET', SETTLED, minute .. ':c') or '0'
  reply[#reply + 1] = redis.call('HGET', SETTLED, minute .. ':f') or '0'
end
return reply
