-- KEYS after the queue's: consumers, consumerseen. ARGV: ttl ms → { id, state, seen at, … }, by id
-- The ones not seen within the ttl are dropped first (their consumer died or was cut off).

local CONSUMERS, SEEN = KEYS[{{KEY_ROLE_COUNT}} + 1], KEYS[{{KEY_ROLE_COUNT}} + 2]
local gone = redis.call('ZRANGEBYSCORE', SEEN, '-inf', now - tonumber(ARGV[1]))
for _, id in ipairs(gone) do
  redis.call('ZREM', SEEN, id)
  redis.call('HDEL', CONSUMERS, id)
end
local live = redis.call('ZRANGE', SEEN, 0, -1, 'WITHSCORES')
local ids = {}
for i = 1, #live, 2 do ids[#ids + 1] = { live[i], live[i + 1] } end
table.sort(ids, function(a, b) return a[1] < b[1] end)
local reply = {}
for _, entry in ipairs(ids) do
  reply[#reply + 1] = entry[1]
  reply[#reply + 1] = redis.call('HGET', CONSUMERS, entry[1]) or ''
  reply[#reply + 1] = entry[2]
end
return reply
