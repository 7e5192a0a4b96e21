-- ARGV: owner, id, runAt, data, delivery token ('' for any of owner's) → 1 when re-queued (ready or delayed) with attempt 0, 0 when refused
-- The same id with the next attempt's envelope, not a new message: once ready
-- it regains its place in age order.

local id = ARGV[2]
if not holds(id, ARGV[1], ARGV[5]) then return 0 end
redis.call('ZREM', LEASES, id)
redis.call('HDEL', OWNER, id)
free_slot(id)
redis.call('HDEL', ATTEMPT, id)
redis.call('HSET', MSG, id, ARGV[4])
if enqueue(id, tonumber(ARGV[3])) then wake() end
return 1
