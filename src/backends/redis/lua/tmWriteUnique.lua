-- ARGV: slot key, ttl ms, data → id, or nil when the slot is claimed
-- The claim and the write are one script, so two producers racing for the
-- same slot (a periodic job on many hosts) write it once.

-- Expired claims go first: a slot is free again once its ttl has passed.
redis.call('ZREMRANGEBYSCORE', SLOTS, '-inf', now)
if redis.call('ZSCORE', SLOTS, ARGV[1]) then return false end
redis.call('ZADD', SLOTS, now + tonumber(ARGV[2]), ARGV[1])
local id = append(ARGV[3], 0)
wake()
return id
