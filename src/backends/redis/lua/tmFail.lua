-- ARGV: owner, id, error, delivery token ('' for any of owner's) → 1 when moved to the failed store, 0 when refused
-- The message and its attempt stay, so failed() can show them and
-- requeueFailed can run the message again.

local id = ARGV[2]
if not holds(id, ARGV[1], ARGV[4]) then return 0 end
redis.call('ZREM', LEASES, id)
redis.call('HDEL', OWNER, id)
free_slot(id)
free_key(id)
-- Ordered by a counter, not by time: failures within one millisecond keep their order.
redis.call('ZADD', FAILED, redis.call('INCR', SEQ), id)
redis.call('HSET', FAILINFO, id, string.format('%d', now) .. ':' .. ARGV[3])
return 1
