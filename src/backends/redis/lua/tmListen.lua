-- KEYS after the queue's: listeners, evseq. ARGV: listener id, ttl ms → the log's last sequence number

local LISTENERS, EVSEQ = KEYS[{{KEY_ROLE_COUNT}} + 1], KEYS[{{KEY_ROLE_COUNT}} + 2]
redis.call('ZREMRANGEBYSCORE', LISTENERS, '-inf', now)
redis.call('ZADD', LISTENERS, now + tonumber(ARGV[2]), ARGV[1])
return tonumber(redis.call('GET', EVSEQ) or '0')
