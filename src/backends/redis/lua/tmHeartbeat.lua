-- KEYS after the queue's: consumers, consumerseen. ARGV: consumer id, state (JSON text) → 1

local CONSUMERS, SEEN = KEYS[{{KEY_ROLE_COUNT}} + 1], KEYS[{{KEY_ROLE_COUNT}} + 2]
redis.call('HSET', CONSUMERS, ARGV[1], ARGV[2])
redis.call('ZADD', SEEN, now, ARGV[1])
return 1
